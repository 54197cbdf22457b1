import { generateKeyPairSync, sign, constants } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { verifyJwsSignature, verifyJwsSignatureOnPool } from '../../src/auth/jws-signature.js';

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

  it('the thread-pool check gives the same answer as the synchronous one, valid, refused and malformed alike', async () => {
    const es256 = sign('sha256', Buffer.from(input), { key: ec256.privateKey, dsaEncoding: 'ieee-p1363' });
    const rs256 = sign('sha256', Buffer.from(input), rsa.privateKey);
    const ps256 = sign('sha256', Buffer.from(input), { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    const eddsa = sign(null, Buffer.from(input), ed.privateKey);
    const cases: Array<[string, string, Buffer, typeof ec256.publicKey]> = [
      ['ES256', input, es256, ec256.publicKey], ['RS256', input, rs256, rsa.publicKey], ['PS256', input, ps256, rsa.publicKey], ['EdDSA', input, eddsa, ed.publicKey],
      ['ES256', `${input}x`, es256, ec256.publicKey], // altered input
      ['ES384', input, es256, ec256.publicKey], ['RS256', input, es256, ec256.publicKey], ['HS256', input, es256, ec256.publicKey], // confusion
      ['ES256', input, es256, ec256.privateKey], // a private key
      ['ES256', input, es256.subarray(0, 10), ec256.publicKey], ['ES256', input, Buffer.alloc(0), ec256.publicKey], ['RS256', input, Buffer.alloc(3), rsa.publicKey], // malformed
      ['ES256', input, sign('sha256', Buffer.from(input), ec256.privateKey), ec256.publicKey], // DER, not JOSE
    ];
    const answers = await Promise.all(cases.map(([alg, text, signature, key]) => verifyJwsSignatureOnPool(alg, text, signature, key)));
    expect(answers).toEqual(cases.map(([alg, text, signature, key]) => verifyJwsSignature(alg, text, signature, key)));
    expect(answers.slice(0, 4)).toEqual([true, true, true, true]);
    expect(answers.slice(4).every((a) => a === false)).toBe(true);
  });
});
