import { createHash, createPrivateKey, createPublicKey, hash, sign, verify, type KeyObject } from 'node:crypto';

/**
 * The audit log is JSON Lines. Each line's hash is SHA-256 over the line's
 * exact bytes (no re-serialisation, so nothing is lost to key ordering), and
 * each record carries the hash of the line before it in `prev`; the first
 * record of a log (genesis) has sixty-four zeros. Checkpoint records carry an
 * Ed25519 signature over (seq, prev), so a rewritten chain — which anyone can
 * rehash — cannot be re-signed without the gateway's key.
 */
export const GENESIS_PREV = '0'.repeat(64);

// crypto.hash, one call with no Hash object: half the time of createHash().update().digest() for a record-sized line.
export const lineHash = (line: string): string => hash('sha256', line, 'hex');

export const checkpointMessage = (seq: number, prev: string): Buffer => Buffer.from(`cdsgate-audit-checkpoint-v1\n${seq}\n${prev}`);

export function loadSigningKey(pem: string | Buffer): KeyObject {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error('the audit signing key must be Ed25519');
  return key;
}

export function loadVerifyKey(pem: string | Buffer): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error('the audit verification key must be Ed25519');
  return key;
}

/** A short, stable id for a signing key: SHA-256 of its public key (SPKI DER), first 16 hex. */
export const keyIdOf = (key: KeyObject): string =>
  createHash('sha256').update((key.type === 'public' ? key : createPublicKey(key)).export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);

export const signCheckpoint = (key: KeyObject, seq: number, prev: string): string => sign(null, checkpointMessage(seq, prev), key).toString('base64');

export const checkpointValid = (key: KeyObject, seq: number, prev: string, signature: string): boolean =>
  verify(null, checkpointMessage(seq, prev), key, Buffer.from(signature, 'base64'));
