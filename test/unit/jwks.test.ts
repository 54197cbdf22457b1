import { createServer, type Server } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { Authenticator } from '../../src/auth/authenticate.js';
import type { IssuerConfig } from '../../src/config/schema.js';
import type { PeerIdentity } from '../../src/tls/peer.js';
import { makeMaterial, type Material } from '../helpers/cluster.js';

const ISS = 'https://idp.test';
const peer: PeerIdentity = { altNames: ['spiffe://cdsgate.local/app/ehr-integration'], thumbprint: 't' };

interface Key { kid: string; jwk: JWK; sign: (roles: string[], lifetime?: string) => Promise<string> }
async function newKey(kid: string): Promise<Key> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const sign = (roles: string[], lifetime = '5m') => new SignJWT({ roles }).setProtectedHeader({ alg: 'ES256', kid }).setIssuer(ISS).setAudience('cdsgate')
    .setSubject('u').setIssuedAt().setExpirationTime(lifetime).sign(privateKey);
  return { kid, jwk, sign };
}

let material: Material;
let server: Server;
let served: JWK[] = [];
let fetches = 0;

const issuer = (jwks: IssuerConfig['jwks']): IssuerConfig => ({
  issuer: ISS, audience: 'cdsgate', jwks, algorithms: ['ES256'], rolesClaim: 'roles', clockSkewSeconds: 30, maxTokenAgeSeconds: 3600, requireCertificateBinding: false, purposeOfUseClaim: 'purpose_of_use',
  rolesClaimFormat: 'array', maxTokenLifetimeSeconds: 3600, replayProtection: false,
});

beforeAll(async () => {
  material = await makeMaterial(1);
  server = createServer({ cert: readFileSync(material.pki.gatewayServer.cert), key: readFileSync(material.pki.gatewayServer.key) }, (_req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: served }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
});
afterAll(() => { server?.close(); });

describe('JWKS from an HTTPS URL', () => {
  it('fetches over TLS with the configured CA, caches, refetches on an unknown kid at most once per cooldown', async () => {
    const k1 = await newKey('k1');
    const k2 = await newKey('k2');
    const k3 = await newKey('k3');
    served = [k1.jwk];
    const port = (server.address() as AddressInfo).port;
    const auth = new Authenticator([issuer({ url: `https://localhost:${port}/jwks`, ca: material.pki.ca, cacheMaxAgeMs: 600_000, cooldownMs: 1_000 })]);

    await auth.authenticate(`Bearer ${await k1.sign(['a'])}`, peer);
    await auth.authenticate(`Bearer ${await k1.sign(['b'])}`, peer);
    expect(fetches).toBe(1); // cached

    served = [k1.jwk, k2.jwk]; // the IdP rotates in k2
    await new Promise((r) => setTimeout(r, 1_100)); // past the cooldown
    await auth.authenticate(`Bearer ${await k2.sign(['c'])}`, peer);
    expect(fetches).toBe(2); // the unknown kid triggered one refetch

    served = [k1.jwk, k2.jwk, k3.jwk];
    await expect(auth.authenticate(`Bearer ${await k3.sign(['d'])}`, peer)).rejects.toThrow(/key id is not in the issuer key set/);
    await expect(auth.authenticate(`Bearer ${await k3.sign(['e'])}`, peer)).rejects.toThrow(/key id is not in the issuer key set/);
    expect(fetches).toBe(2); // within the cooldown: unknown kids do not hammer the IdP
  });

  it('a key withdrawn from the set stops its cached tokens once the set is refetched', async () => {
    const k1 = await newKey('w1');
    const k2 = await newKey('w2');
    served = [k1.jwk];
    const port = (server.address() as AddressInfo).port;
    const auth = new Authenticator([issuer({ url: `https://localhost:${port}/jwks`, ca: material.pki.ca, cacheMaxAgeMs: 600_000, cooldownMs: 1_000 })]);
    const old = await k1.sign(['a']);
    await auth.authenticate(`Bearer ${old}`, peer); // verified and cached
    served = [k2.jwk]; // the IdP withdraws k1 (compromised) and rotates in k2
    await expect(auth.authenticate(`Bearer ${old}`, peer)).resolves.toMatchObject({ subject: 'u' }); // the set is not refetched yet
    await new Promise((r) => setTimeout(r, 1_100)); // past the cooldown
    await auth.authenticate(`Bearer ${await k2.sign(['b'])}`, peer); // its unknown kid makes jose refetch: k1 is gone
    await expect(auth.authenticate(`Bearer ${old}`, peer)).rejects.toThrow(/key id is not in the issuer key set/);
  });

  /** An authenticator on the served set (holding only `kid`'s key, its age 10 minutes) that counts signature checks, and a 30-minute token. */
  async function countingSignatureChecks(kid: string) {
    const key = await newKey(kid);
    served = [key.jwk];
    const port = (server.address() as AddressInfo).port;
    const checked: string[] = [];
    const auth = new Authenticator([issuer({ url: `https://localhost:${port}/jwks`, ca: material.pki.ca, cacheMaxAgeMs: 600_000, cooldownMs: 1_000 })], undefined, 16_384, { signatureChecked: (where) => checked.push(where) });
    return { auth, checked, t: await key.sign(['a'], '30m') };
  }

  it('a cached token is kept past its entry\'s minute on a key lookup, and stops once a refetch of the set no longer gives its key', async () => {
    const { auth, checked, t } = await countingSignatureChecks('m1');
    const k2 = await newKey('m2');
    // Only Date is faked: the clock jumps, while the JWKS server, sockets and timers run as ever.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      await auth.authenticate(`Bearer ${t}`, peer);
      const fetched = fetches;
      expect(checked).toHaveLength(1);
      vi.setSystemTime(Date.now() + 61_000); // past the entry's minute, within the set's 10 minutes
      await expect(auth.authenticate(`Bearer ${t}`, peer)).resolves.toMatchObject({ subject: 'u' });
      expect(checked).toHaveLength(1); // the key lookup gave the same key: no second signature check
      expect(fetches).toBe(fetched);
      // The IdP withdraws k1. Once the set's own age passes, the next lookup refetches it, and the token is refused.
      served = [k2.jwk];
      vi.setSystemTime(Date.now() + 600_000);
      await expect(auth.authenticate(`Bearer ${t}`, peer)).rejects.toThrow(/key id is not in the issuer key set/);
      expect(fetches).toBe(fetched + 1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a refetched set that still holds the key gives a new key object: the cached token is checked in full once more', async () => {
    const { auth, checked, t } = await countingSignatureChecks('r1');
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      await auth.authenticate(`Bearer ${t}`, peer);
      vi.setSystemTime(Date.now() + 660_000); // past the set's age: the lookup refetches it
      await expect(auth.authenticate(`Bearer ${t}`, peer)).resolves.toMatchObject({ subject: 'u' });
      expect(checked).toHaveLength(2);
      await auth.authenticate(`Bearer ${t}`, peer);
      expect(checked).toHaveLength(2); // and is cached again
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a JWKS server whose certificate the configured CA does not vouch for', async () => {
    const k = await newKey('k1');
    served = [k.jwk];
    const port = (server.address() as AddressInfo).port;
    const auth = new Authenticator([issuer({ url: `https://localhost:${port}/jwks`, ca: material.pki.untrustedCa, cacheMaxAgeMs: 600_000, cooldownMs: 1_000 })]);
    await expect(auth.authenticate(`Bearer ${await k.sign(['a'])}`, peer)).rejects.toThrow(/issuer key set is unavailable|token is invalid/);
  });
});

describe('JWKS from a file', () => {
  it('picks up a key rotated into the file without a restart', async () => {
    const k1 = await newKey('f1');
    const k2 = await newKey('f2');
    const file = join(material.dir, 'rotating-jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [k1.jwk] }));
    const k3 = await newKey('f3');
    const auth = new Authenticator([issuer({ file, cooldownMs: 30_000 })]);
    await auth.authenticate(`Bearer ${await k1.sign(['a'])}`, peer);
    writeFileSync(file, JSON.stringify({ keys: [k1.jwk, k2.jwk] }));
    await expect(auth.authenticate(`Bearer ${await k2.sign(['a'])}`, peer)).resolves.toMatchObject({ roles: ['a'] });
    // Within the cooldown a further unknown kid does not re-read the file.
    writeFileSync(file, JSON.stringify({ keys: [k1.jwk, k2.jwk, k3.jwk] }));
    await expect(auth.authenticate(`Bearer ${await k3.sign(['a'])}`, peer)).rejects.toThrow(/key id is not in the issuer key set/);
  });
});
