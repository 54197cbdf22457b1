import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac, type webcrypto } from 'node:crypto';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair, calculateJwkThumbprint, type JWK } from 'jose';
import { Authenticator } from '../../src/auth/authenticate.js';
import { CdsError } from '../../src/errors.js';
import type { PeerIdentity } from '../../src/tls/peer.js';
import type { IssuerConfig } from '../../src/config/schema.js';

type CryptoKey = webcrypto.CryptoKey;

const ISS = 'https://issuer.test';
const AUD = 'cdsgate';
const peer: PeerIdentity = { altNames: ['spiffe://cdsgate.local/app/ehr-integration'], thumbprint: 'AAAAthumbprintOfTheAppCertificateAAAAAAAAAA' };

let auth: Authenticator;
let key: CryptoKey;
let kid: string;
let publicJwk: JWK;
let otherKey: CryptoKey;

function issuer(overrides: Partial<IssuerConfig> = {}, jwksFile: string): IssuerConfig {
  return {
    issuer: ISS, audience: AUD, jwks: { file: jwksFile, cooldownMs: 30_000 }, algorithms: ['ES256', 'RS256'], rolesClaim: 'roles',
    clockSkewSeconds: 30, maxTokenAgeSeconds: 3600, requireCertificateBinding: false, purposeOfUseClaim: 'purpose_of_use',
    rolesClaimFormat: 'array', maxTokenLifetimeSeconds: 3600, replayProtection: false, ...overrides,
  };
}

let jwksFile: string;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cdsgate-auth-'));
  const pair = await generateKeyPair('ES256', { extractable: true });
  key = pair.privateKey as CryptoKey;
  publicJwk = await exportJWK(pair.publicKey);
  kid = await calculateJwkThumbprint(publicJwk);
  otherKey = (await generateKeyPair('ES256')).privateKey as CryptoKey;
  jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...publicJwk, kid, alg: 'ES256', use: 'sig' }] }));
  auth = new Authenticator([issuer({}, jwksFile)]);
});

const now = () => Math.floor(Date.now() / 1000);

async function token(claims: Record<string, unknown> = {}, o: { signWith?: CryptoKey; kid?: string; iat?: number | null; exp?: number | null } = {}): Promise<string> {
  const jwt = new SignJWT({ roles: ['clinician'], ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: o.kid ?? kid, typ: 'JWT' })
    .setIssuer((claims.iss as string) ?? ISS)
    .setAudience((claims.aud as string) ?? AUD)
    .setSubject('user-1');
  if (o.iat !== null) jwt.setIssuedAt(o.iat ?? now());
  if (o.exp !== null) jwt.setExpirationTime(o.exp ?? now() + 300);
  return jwt.sign(o.signWith ?? key);
}

async function rejects(authorization: string | string[] | undefined, pattern: RegExp, who: PeerIdentity | null = peer, a = auth): Promise<CdsError> {
  try {
    await a.authenticate(authorization, who ?? undefined);
  } catch (err) {
    expect(err).toBeInstanceOf(CdsError);
    const e = err as CdsError;
    expect(e.kind).toBe('unauthenticated');
    expect(e.message).toMatch(pattern);
    expect(e.headers['www-authenticate']).toMatch(/^Bearer realm="cdsgate", error="invalid_(token|request)"/);
    return e;
  }
  throw new Error('expected the token to be rejected');
}

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('JWT verification', () => {
  it('accepts a valid token and builds the principal', async () => {
    const p = await auth.authenticate(`Bearer ${await token({ azp: 'ehr-app', scope: 'patient/Observation.rs launch' })}`, peer);
    expect(p).toMatchObject({ subject: 'user-1', issuer: ISS, roles: ['clinician'], clientId: 'ehr-app', scopes: ['patient/Observation.rs', 'launch'], certificateBound: false });
    expect(p.certificate.name).toBe('spiffe://cdsgate.local/app/ehr-integration');
  });

  it('rejects an expired token', async () => {
    await rejects(`Bearer ${await token({}, { iat: now() - 600, exp: now() - 120 })}`, /expired/);
  });

  it('rejects a token that is not yet valid (nbf)', async () => {
    await rejects(`Bearer ${await token({ nbf: now() + 600 })}`, /not yet valid/);
  });

  it('rejects a token issued in the future beyond the clock skew', async () => {
    await rejects(`Bearer ${await token({}, { iat: now() + 600, exp: now() + 900 })}`, /issue time is in the future/);
  });

  it('accepts issue times within the clock skew', async () => {
    await expect(auth.authenticate(`Bearer ${await token({}, { iat: now() + 20 })}`, peer)).resolves.toBeDefined();
  });

  it('rejects a token older than the maximum age', async () => {
    await rejects(`Bearer ${await token({}, { iat: now() - 7200, exp: now() + 300 })}`, /expired/);
  });

  it('rejects a token without exp', async () => {
    await rejects(`Bearer ${await token({}, { exp: null })}`, /"exp"/);
  });

  it('rejects the wrong audience', async () => {
    await rejects(`Bearer ${await token({ aud: 'another-service' })}`, /audience/);
  });

  it('rejects an untrusted issuer', async () => {
    await rejects(`Bearer ${await token({ iss: 'https://evil.example' })}`, /issuer is not trusted/);
  });

  it('rejects alg "none"', async () => {
    const unsigned = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ iss: ISS, aud: AUD, sub: 'x', roles: ['clinician'], iat: now(), exp: now() + 60 })}.`;
    await rejects(`Bearer ${unsigned}`, /algorithm is not allowed|invalid/);
  });

  it('rejects HS256 signed with the public key as the HMAC secret (key confusion)', async () => {
    const header = b64url({ alg: 'HS256', typ: 'JWT', kid });
    const payload = b64url({ iss: ISS, aud: AUD, sub: 'x', roles: ['admin'], iat: now(), exp: now() + 60 });
    for (const secret of [JSON.stringify(publicJwk), JSON.stringify({ keys: [publicJwk] }), publicJwk.x!]) {
      const sig = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      await rejects(`Bearer ${header}.${payload}.${sig}`, /algorithm is not allowed|invalid/);
    }
  });

  it('rejects an unknown kid', async () => {
    await rejects(`Bearer ${await token({}, { kid: 'not-a-known-key' })}`, /key id is not in the issuer key set/);
  });

  it('rejects a tampered payload', async () => {
    const [h, , s] = (await token()).split('.');
    const forged = b64url({ iss: ISS, aud: AUD, sub: 'user-1', roles: ['admin'], iat: now(), exp: now() + 300 });
    await rejects(`Bearer ${h}.${forged}.${s}`, /signature is invalid/);
  });

  it('rejects a token signed by the wrong key under a trusted kid', async () => {
    await rejects(`Bearer ${await token({}, { signWith: otherKey })}`, /signature is invalid/);
  });

  it('rejects a missing or malformed Authorization header and a missing certificate', async () => {
    await rejects(undefined, /missing Authorization/);
    await rejects('Basic dXNlcjpwYXNz', /Bearer <JWT>/);
    await rejects('Bearer not-a-jwt', /Bearer <JWT>/);
    await rejects('Bearer a.b.c', /not a well-formed JWT/);
    await rejects(`Bearer ${await token()}`, /client certificate is required/, null);
  });

  it('reads purpose of use from the IHE IUA claim (Codings) or a plain claim', async () => {
    const iua = await token({ extensions: { ihe_iua: { purpose_of_use: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }, { code: 'etreat' }] } } });
    expect((await auth.authenticate(`Bearer ${iua}`, peer)).purposeOfUse).toEqual(['TREAT', 'ETREAT']);
    const plain = await token({ purpose_of_use: 'HRESCH' });
    expect((await auth.authenticate(`Bearer ${plain}`, peer)).purposeOfUse).toEqual(['HRESCH']);
    const junk = await token({ purpose_of_use: [{ code: '<script>' }, 42, 'BTG'] });
    expect((await auth.authenticate(`Bearer ${junk}`, peer)).purposeOfUse).toEqual(['BTG']);
  });

  it('reads roles from a nested claim path', async () => {
    const nested = new Authenticator([issuer({ rolesClaim: 'realm_access.roles' }, jwksFile)]);
    const p = await nested.authenticate(`Bearer ${await token({ roles: undefined, realm_access: { roles: ['nurse'] } })}`, peer);
    expect(p.roles).toEqual(['nurse']);
  });

  it('a key taken out of the JWKS file stops its tokens at once, cached or not; a file that cannot be read keeps the keys', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-auth-revoke-'));
    const file = join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [{ ...publicJwk, kid, alg: 'ES256', use: 'sig' }] }));
    const reloaded: string[] = [], failed: string[] = [];
    const reports = { reloaded: (i: string) => reloaded.push(i), notReloaded: (i: string) => failed.push(i), watchIntervalMs: 20 };
    const cached = new Authenticator([issuer({}, file)], undefined, 16_384, reports);
    const uncached = new Authenticator([issuer({}, file)], undefined, 0, reports);
    const t = await token();
    for (const a of [cached, uncached]) await a.authenticate(`Bearer ${t}`, peer);
    await cached.authenticate(`Bearer ${t}`, peer); // now from the cache
    // A half-written or broken file changes nothing: the keys in force stay, and it is reported.
    writeFileSync(file, '{"keys": [');
    await vi.waitFor(() => expect(failed.length).toBeGreaterThanOrEqual(2), { timeout: 20_000, interval: 20 });
    for (const a of [cached, uncached]) await expect(a.authenticate(`Bearer ${t}`, peer)).resolves.toMatchObject({ subject: 'user-1' });
    // The issuer withdraws the key (compromised): neither the file's old keys nor the cache let the token through.
    writeFileSync(file, JSON.stringify({ keys: [] }));
    await vi.waitFor(() => expect(reloaded.length).toBeGreaterThanOrEqual(2), { timeout: 20_000, interval: 20 });
    for (const a of [cached, uncached]) await rejects(`Bearer ${t}`, /key/i, peer, a);
  });

  it('a cached token still has its certificate binding checked on every call', async () => {
    const fresh = new Authenticator([issuer({}, jwksFile)]);
    const bound = await token({ cnf: { 'x5t#S256': peer.thumbprint } });
    await fresh.authenticate(`Bearer ${bound}`, peer); // now cached
    const stolen: PeerIdentity = { altNames: ['spiffe://cdsgate.local/app/other'], thumbprint: 'CCCCyetAnotherCertificateThumbprintCCCCCCCCC' };
    await rejects(`Bearer ${bound}`, /bound to a different client certificate/, stolen, fresh);
  });

  it('a cached token gives the same principal, is still refused when malformed around it, and bad claims stay refused', async () => {
    const fresh = new Authenticator([issuer({}, jwksFile)]);
    const good = await token({ azp: 'ehr-app', scope: 'launch', purpose_of_use: 'TREAT', patient: 'p-1' });
    const first = await fresh.authenticate(`Bearer ${good}`, peer);
    const again = await fresh.authenticate(`Bearer ${good}`, peer); // from the cache
    expect(again).toEqual(first);
    expect(again).toMatchObject({ clientId: 'ehr-app', scopes: ['launch'], purposeOfUse: ['TREAT'], patient: 'p-1' });
    // The cache is keyed by the exact token: anything around it is a different credential and goes through the format check.
    await rejects(`Bearer ${good} `, /Bearer <JWT>/, peer, fresh);
    await rejects(`Bearer  ${good}`, /Bearer <JWT>/, peer, fresh);
    await rejects(`bearer ${good}`, /Bearer <JWT>/, peer, fresh);
    await rejects(`Bearer ${good}.x`, /Bearer <JWT>/, peer, fresh);
    // A signed token whose roles claim is malformed is refused on every use, cached signature or not.
    const badRoles = await token({ roles: 'guest clinician' });
    await rejects(`Bearer ${badRoles}`, /roles claim must be a JSON array of strings/, peer, fresh);
    await rejects(`Bearer ${badRoles}`, /roles claim must be a JSON array of strings/, peer, fresh);
  });

  it('a cached token stops working when it expires', async () => {
    const fresh = new Authenticator([issuer({ clockSkewSeconds: 0 }, jwksFile)]);
    const shortLived = await token({}, { exp: now() + 1 });
    await fresh.authenticate(`Bearer ${shortLived}`, peer);
    await new Promise((r) => setTimeout(r, 2100));
    await rejects(`Bearer ${shortLived}`, /expired/, peer, fresh);
  });

  it('enforces RFC 8705 certificate binding', async () => {
    const bound = await token({ cnf: { 'x5t#S256': peer.thumbprint } });
    expect((await auth.authenticate(`Bearer ${bound}`, peer)).certificateBound).toBe(true);
    const stolen: PeerIdentity = { altNames: ['spiffe://cdsgate.local/app/other'], thumbprint: 'BBBBdifferentCertificateThumbprintBBBBBBBBB' };
    await rejects(`Bearer ${bound}`, /bound to a different client certificate/, stolen);
    const strict = new Authenticator([issuer({ requireCertificateBinding: true }, jwksFile)]);
    await rejects(`Bearer ${await token()}`, /must be bound/, peer, strict);
  });
});

describe('signatures checked on the thread pool (other requests in progress)', () => {
  it('accepts what the loop accepts and refuses what it refuses', async () => {
    const checked: string[] = [];
    const busy = new Authenticator([issuer({}, jwksFile)], undefined, 0, { signatureChecked: (where) => checked.push(where) }, () => 32);
    const p = await busy.authenticate(`Bearer ${await token({ azp: 'ehr-app' })}`, peer);
    expect(checked).toEqual(['pool']);
    expect(p).toMatchObject({ subject: 'user-1', roles: ['clinician'], clientId: 'ehr-app' });
    const [h, , s] = (await token()).split('.');
    const forged = b64url({ iss: ISS, aud: AUD, sub: 'user-1', roles: ['admin'], iat: now(), exp: now() + 300 });
    await rejects(`Bearer ${h}.${forged}.${s}`, /signature is invalid/, peer, busy);
    await rejects(`Bearer ${await token({}, { signWith: otherKey })}`, /signature is invalid/, peer, busy);
    await rejects(`Bearer ${h}.${forged}.`, /signature is invalid|invalid/, peer, busy);
    await rejects(`Bearer ${await token({ aud: 'another-service' })}`, /audience/, peer, busy);
  });

  it('a quiet gateway checks on the loop, and a cached token is not checked again', async () => {
    const checked: string[] = [];
    const quiet = new Authenticator([issuer({}, jwksFile)], undefined, 16_384, { signatureChecked: (where) => checked.push(where) });
    const t = await token();
    await quiet.authenticate(`Bearer ${t}`, peer);
    await quiet.authenticate(`Bearer ${t}`, peer);
    expect(checked).toEqual(['loop']);
  });

  it('many distinct tokens at once each get their own answer', async () => {
    const busy = new Authenticator([issuer({}, jwksFile)], undefined, 0, {}, () => 32);
    const good = await Promise.all(Array.from({ length: 24 }, (_, i) => token({ azp: `app-${i}` })));
    const bad = await Promise.all(Array.from({ length: 24 }, () => token({}, { signWith: otherKey })));
    const outcomes = await Promise.allSettled([...good, ...bad].map((t) => busy.authenticate(`Bearer ${t}`, peer)));
    outcomes.slice(0, 24).forEach((o, i) => expect(o.status === 'fulfilled' && o.value.clientId).toBe(`app-${i}`));
    for (const o of outcomes.slice(24)) expect(o.status === 'rejected' && (o.reason as CdsError).message).toMatch(/signature is invalid/);
  });
});

describe('ambiguous and over-long credentials', () => {
  it('refuses two Authorization values instead of choosing one', async () => {
    const good = `Bearer ${await token()}`;
    await rejects([good, good], /more than one Authorization header/);
  });

  it('requires iat and says so, instead of calling it a future issue time', async () => {
    await rejects(`Bearer ${await token({}, { iat: null })}`, /token has no "iat" claim/);
  });

  it('refuses an exp years ahead: lifetime (exp - iat) is bounded', async () => {
    await rejects(`Bearer ${await token({}, { exp: now() + 10 * 365 * 86_400 })}`, /token lifetime \(exp - iat\) is \d+ s; this gateway accepts at most 3600 s/);
  });

  it('never splits a roles string: arrays by default, a space-delimited string only when configured', async () => {
    await rejects(`Bearer ${await token({ roles: 'guest clinician' })}`, /roles claim must be a JSON array of strings/);
    await rejects(`Bearer ${await token({ roles: ['clinician', 7] })}`, /roles claim must be a JSON array of strings/);
    const spaced = new Authenticator([issuer({ rolesClaimFormat: 'space-delimited' }, jwksFile)]);
    await expect(spaced.authenticate(`Bearer ${await token({ roles: 'guest clinician' })}`, peer)).resolves.toMatchObject({ roles: ['guest', 'clinician'] });
    await rejects(`Bearer ${await token({ roles: ['clinician'] })}`, /space-delimited string/, peer, spaced);
  });
});

describe('jti replay protection', () => {
  it('is off by default: an access token serves many calls', async () => {
    const t = `Bearer ${await token({ jti: 'reused-1' })}`;
    await auth.authenticate(t, peer);
    await expect(auth.authenticate(t, peer)).resolves.toBeDefined();
  });

  it('when on: a token is accepted once, its replay refused (cached signature or not), and jti is required', async () => {
    const once = new Authenticator([issuer({ replayProtection: true }, jwksFile)]);
    const t = `Bearer ${await token({ jti: 'one-time-1' })}`;
    await expect(once.authenticate(t, peer)).resolves.toBeDefined();
    await rejects(t, /already used/, peer, once);
    // Another token with the same jti (re-signed) is the same replay.
    await rejects(`Bearer ${await token({ jti: 'one-time-1', azp: 'x' })}`, /already used/, peer, once);
    await expect(once.authenticate(`Bearer ${await token({ jti: 'one-time-2' })}`, peer)).resolves.toBeDefined();
    await rejects(`Bearer ${await token()}`, /token has no "jti" claim/, peer, once);
  });
});

describe('JWS header extensions', () => {
  it('refuses a token with a critical extension or b64=false, even when signed by the trusted key', async () => {
    const withCrit = await new SignJWT({ roles: ['clinician'] }).setProtectedHeader({ alg: 'ES256', kid, crit: ['exp'] } as never).setIssuer(ISS).setAudience(AUD).setSubject('u').setIssuedAt().setExpirationTime('5m').sign(key).catch(() => undefined);
    if (withCrit) await rejects(`Bearer ${withCrit}`, /extension this gateway does not support/);
    const header = b64url({ alg: 'ES256', kid, b64: false });
    const payload = b64url({ iss: ISS, aud: AUD, sub: 'u', roles: ['clinician'], iat: now(), exp: now() + 60 });
    await rejects(`Bearer ${header}.${payload}.AAAA`, /extension this gateway does not support/);
  });
});
