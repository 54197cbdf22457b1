import { KeyObject, constants, verify as cryptoVerify, type webcrypto } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, type ProtectedHeaderParameters } from 'jose';

type Alg = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';

/** Per JWS algorithm (RFC 7518): the digest, the key types that may verify it, and the signature encoding. */
const ALGORITHMS: Record<Alg, { hash: string | null; keyTypes: readonly string[]; curve?: string; pss?: boolean; p1363?: boolean }> = {
  RS256: { hash: 'sha256', keyTypes: ['rsa'] },
  RS384: { hash: 'sha384', keyTypes: ['rsa'] },
  RS512: { hash: 'sha512', keyTypes: ['rsa'] },
  PS256: { hash: 'sha256', keyTypes: ['rsa', 'rsa-pss'], pss: true },
  PS384: { hash: 'sha384', keyTypes: ['rsa', 'rsa-pss'], pss: true },
  PS512: { hash: 'sha512', keyTypes: ['rsa', 'rsa-pss'], pss: true },
  ES256: { hash: 'sha256', keyTypes: ['ec'], curve: 'prime256v1', p1363: true },
  ES384: { hash: 'sha384', keyTypes: ['ec'], curve: 'secp384r1', p1363: true },
  ES512: { hash: 'sha512', keyTypes: ['ec'], curve: 'secp521r1', p1363: true },
  EdDSA: { hash: null, keyTypes: ['ed25519', 'ed448'] },
};

const keyObjects = new WeakMap<object, KeyObject>();

/** The node:crypto KeyObject of a JWKS key (jose hands out WebCrypto keys), converted once per key. */
function keyObjectOf(key: webcrypto.CryptoKey | KeyObject): KeyObject {
  if (key instanceof KeyObject) return key;
  let k = keyObjects.get(key);
  if (!k) keyObjects.set(key, (k = KeyObject.from(key)));
  return k;
}

type VerifyKey = KeyObject | { key: KeyObject; padding: number; saltLength: number } | { key: KeyObject; dsaEncoding: 'ieee-p1363' };

/** What node:crypto's verify takes for this algorithm and key; undefined when the key may not verify it (wrong type or curve, private, unknown algorithm). */
function verifyArguments(alg: string, key: webcrypto.CryptoKey | KeyObject): { hash: string | null; key: VerifyKey } | undefined {
  const spec = ALGORITHMS[alg as Alg];
  if (!spec) return undefined;
  const k = keyObjectOf(key);
  if (k.type !== 'public' || !spec.keyTypes.includes(k.asymmetricKeyType ?? '')) return undefined;
  if (spec.curve && k.asymmetricKeyDetails?.namedCurve !== spec.curve) return undefined;
  if (spec.pss) return { hash: spec.hash, key: { key: k, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } };
  if (spec.p1363) return { hash: spec.hash, key: { key: k, dsaEncoding: 'ieee-p1363' } };
  return { hash: spec.hash, key: k };
}

/**
 * Verifies a JWS signature with node:crypto, synchronously. The same check
 * jose makes through WebCrypto, without its asynchronous job per token
 * (measured: 144 µs against 503 µs per ES256 token on the development
 * machine), for the path where every request brings a new token. A key of
 * the wrong type or curve for the algorithm verifies nothing.
 */
export function verifyJwsSignature(alg: string, signingInput: string, signature: Buffer, key: webcrypto.CryptoKey | KeyObject): boolean {
  const args = verifyArguments(alg, key);
  if (!args) return false;
  try {
    return cryptoVerify(args.hash, Buffer.from(signingInput), args.key, signature);
  } catch {
    return false;
  }
}

/**
 * The same check on libuv's thread pool (node:crypto's verify with a
 * callback), for a gateway serving other requests meanwhile: the signature
 * (about 85–120 µs of CPU for ES256 on the development machine, the same
 * OpenSSL call HAProxy makes) then takes a pool thread's time instead of the
 * event loop's, which under load is what limits the gateway. One check alone
 * waits about 60 µs longer for the hand-offs, so a quiet gateway checks on
 * its own thread (Authenticator).
 */
export function verifyJwsSignatureOnPool(alg: string, signingInput: string, signature: Buffer, key: webcrypto.CryptoKey | KeyObject): Promise<boolean> {
  const args = verifyArguments(alg, key);
  if (!args) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    try {
      cryptoVerify(args.hash, Buffer.from(signingInput), args.key, signature, (err, valid) => resolve(!err && valid));
    } catch {
      resolve(false);
    }
  });
}

/**
 * A compact JWT's header and claimed issuer, read without verifying anything:
 * what picks the issuer (and so the keys) a token is then verified with.
 * Undefined when the token is not a well-formed JWT.
 */
export function unverifiedHeaderAndIssuer(token: string): { header: ProtectedHeaderParameters; issuer: unknown } | undefined {
  try {
    return { header: decodeProtectedHeader(token), issuer: decodeJwt(token).iss };
  } catch {
    return undefined;
  }
}
