import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Keyed pseudonyms: HMAC-SHA-256 under a secret key, so the same patient maps
 * to the same token in every record and file, and nobody without the key can
 * re-identify or even test a guess. The key id travels in the token so keys
 * can rotate. The key itself is never logged.
 */
export class Pseudonymizer {
  /** A KeyObject made once: createHmac with a raw Buffer imports the key again on every call. */
  private readonly key: KeyObject;

  private constructor(secret: Buffer, readonly keyId: string) {
    this.key = createSecretKey(secret);
  }

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
    // The encoding is assembled into one buffer and hashed with one update (each update crosses into C++).
    const pieces: Uint8Array[] = [DIGEST_PREFIX];
    for (const p of parts) {
      const header = Buffer.from(JSON.stringify([p.name, p.datatype, p.shape]));
      pieces.push(lengthPrefix(header.length), header, lengthPrefix(p.bytes.byteLength), p.bytes);
    }
    return `hmac-sha256:${this.keyId}:${createHmac('sha256', this.key).update(Buffer.concat(pieces)).digest('hex')}`;
  }

  /** Checks a digest recorded earlier against inputs presented now. */
  matchesDigest(digest: string, parts: Parameters<Pseudonymizer['inputDigest']>[0]): boolean {
    const a = Buffer.from(digest), b = Buffer.from(this.inputDigest(parts));
    return a.length === b.length && timingSafeEqual(a, b);
  }
}

const DIGEST_PREFIX = Buffer.from('cdsgate-input-digest-v1\0');

/** A length as 8 bytes, big-endian (lengths stay far below 2^53, so two 32-bit halves suffice). */
function lengthPrefix(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(Math.floor(n / 0x1_0000_0000), 0);
  b.writeUInt32BE(n >>> 0, 4);
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
