import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Keyed pseudonyms: HMAC-SHA-256 under a secret key, so the same patient maps
 * to the same token in every record and file, and nobody without the key can
 * re-identify or even test a guess. The key id travels in the token so keys
 * can rotate. The key itself is never logged.
 */
export class Pseudonymizer {
  private constructor(private readonly key: Buffer, readonly keyId: string) {}

  static fromSecret(secret: Buffer, keyId: string): Pseudonymizer {
    if (secret.length < 32) throw new Error(`pseudonym key ${keyId} must be at least 32 bytes`);
    if (!/^[a-z0-9]{1,16}$/.test(keyId)) throw new Error('pseudonym key id must be 1-16 lowercase letters or digits');
    return new Pseudonymizer(secret, keyId);
  }

  /** From a file holding the key as base64, or an environment variable holding the same. */
  static load(source: { file?: string; env?: string }, keyId: string): Pseudonymizer {
    const text = source.file ? readFileSync(source.file, 'utf8') : source.env ? process.env[source.env] : undefined;
    if (!text) throw new Error(source.env ? `environment variable ${source.env} is not set` : 'no pseudonym key source configured');
    return Pseudonymizer.fromSecret(Buffer.from(text.trim(), 'base64'), keyId);
  }

  /** psn_<keyId>_<26 base32 chars>: 130 bits of the HMAC. */
  pseudonym(kind: string, value: string): string {
    const mac = createHmac('sha256', this.key).update(`cdsgate-pseudonym-v1\0${kind}\0${value.trim()}`).digest();
    return `psn_${this.keyId}_${base32(mac).slice(0, 26)}`;
  }

  /**
   * HMAC digest of an inference's inputs: proves later which input produced
   * which output without storing the input. Length-prefixed fields, so no two
   * different inputs share an encoding.
   */
  inputDigest(parts: Array<{ name: string; datatype: string; shape: number[]; bytes: Uint8Array }>): string {
    const mac = createHmac('sha256', this.key).update('cdsgate-input-digest-v1\0');
    for (const p of parts) {
      const header = Buffer.from(JSON.stringify([p.name, p.datatype, p.shape]));
      mac.update(lengthPrefix(header.length)).update(header).update(lengthPrefix(p.bytes.byteLength)).update(p.bytes);
    }
    return `hmac-sha256:${this.keyId}:${mac.digest('hex')}`;
  }

  /** Checks a digest recorded earlier against inputs presented now. */
  matchesDigest(digest: string, parts: Parameters<Pseudonymizer['inputDigest']>[0]): boolean {
    const a = Buffer.from(digest), b = Buffer.from(this.inputDigest(parts));
    return a.length === b.length && timingSafeEqual(a, b);
  }
}

function lengthPrefix(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
function base32(bytes: Buffer): string {
  let out = '', bits = 0, value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}
