import { generateKeyPairSync, sign, constants } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { verifyJwsSignature } from '../../src/auth/jws-signature.js';

const input = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0';

describe('JWS signatures with node:crypto', () => {
  const ec256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');

  it('verifies each family it allows', () => {
    expect(verifyJwsSignature('ES256', input, sign('sha256', Buffer.from(input), { key: ec256.privateKey, dsaEncoding: 'ieee-p1363' }), ec256.publicKey)).toBe(true);
    expect(verifyJwsSignature('ES384', input, sign('sha384', Buffer.from(input), { key: ec384.privateKey, dsaEncoding: 'ieee-p1363' }), ec384.publicKey)).toBe(true);
    expect(verifyJwsSignature('RS256', input, sign('sha256', Buffer.from(input), rsa.privateKey), rsa.publicKey)).toBe(true);
    expect(verifyJwsSignature('PS256', input, sign('sha256', Buffer.from(input), { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }), rsa.publicKey)).toBe(true);
    expect(verifyJwsSignature('EdDSA', input, sign(null, Buffer.from(input), ed.privateKey), ed.publicKey)).toBe(true);
  });

  it('refuses algorithm and key confusion, unknown algorithms, private keys and DER-encoded ECDSA', () => {
    const es256 = sign('sha256', Buffer.from(input), { key: ec256.privateKey, dsaEncoding: 'ieee-p1363' });
    expect(verifyJwsSignature('ES384', input, es256, ec256.publicKey)).toBe(false); // wrong curve for the algorithm
    expect(verifyJwsSignature('RS256', input, es256, ec256.publicKey)).toBe(false); // wrong key type
    expect(verifyJwsSignature('HS256', input, es256, ec256.publicKey)).toBe(false);
    expect(verifyJwsSignature('none', input, Buffer.alloc(0), ec256.publicKey)).toBe(false);
    expect(verifyJwsSignature('ES256', input, es256, ec256.privateKey)).toBe(false);
    expect(verifyJwsSignature('ES256', input, sign('sha256', Buffer.from(input), ec256.privateKey), ec256.publicKey)).toBe(false); // DER, not JOSE
    expect(verifyJwsSignature('RS256', input, sign('sha256', Buffer.from(input), { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING }), rsa.publicKey)).toBe(false);
  });

  it('no altered input or signature verifies (seeded)', () => {
    const good = sign('sha256', Buffer.from(input), { key: ec256.privateKey, dsaEncoding: 'ieee-p1363' });
    fc.assert(fc.property(fc.nat({ max: good.length - 1 }), fc.integer({ min: 1, max: 255 }), fc.nat({ max: input.length - 1 }), (at, flip, textAt) => {
      const bad = Buffer.from(good);
      bad[at] = bad[at]! ^ flip;
      expect(verifyJwsSignature('ES256', input, bad, ec256.publicKey)).toBe(false);
      const altered = input.slice(0, textAt) + (input[textAt] === 'A' ? 'B' : 'A') + input.slice(textAt + 1);
      expect(verifyJwsSignature('ES256', altered, good, ec256.publicKey)).toBe(false);
    }), { seed: 42, numRuns: 200 });
  });
});
