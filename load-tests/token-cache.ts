/**
 * What the verified-token cache costs the event loop per token: a cached
 * hit; the re-check a cached token gets once its entry's minute has passed
 * (its key looked up again in the issuer's key set, kept only if it is the
 * very key its signature was checked with); and a full verification (the
 * signature checked again), which is what that re-check replaced and what
 * every call costs with the cache off. In-process, on the loop (a quiet
 * gateway's path), ES256 tokens of one issuer whose JWKS is a file; the
 * process's clock (Date.now, which the cache and jose's claim checks read)
 * is moved 61 s forward to make the entries due.
 *
 *   npm run bench:token-cache [-- --tokens 5000 --repeats 3]
 *
 * Writes load-tests/reports/token-cache.{json,md}.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { Authenticator } from '../src/auth/authenticate.js';
import type { IssuerConfig } from '../src/config/schema.js';
import type { PeerIdentity } from '../src/tls/peer.js';
import { median, writeReport } from './lib/measure.js';
import { wholeOption } from './lib/options.js';

const { values } = parseArgs({ options: { tokens: { type: 'string', default: '5000' }, repeats: { type: 'string', default: '3' } } });
const tokenCount = wholeOption('bench:token-cache', 'tokens', values.tokens!, 1), repeats = wholeOption('bench:token-cache', 'repeats', values.repeats!, 1);

const dir = mkdtempSync(join(tmpdir(), 'cdsgate-token-cache-'));
const { publicKey, privateKey } = await generateKeyPair('ES256');
const jwksFile = join(dir, 'jwks.json');
writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256', use: 'sig' }] }));
const issuer: IssuerConfig = {
  issuer: 'https://issuer.bench', audience: 'cdsgate', jwks: { file: jwksFile, cooldownMs: 30_000 }, algorithms: ['ES256'], rolesClaim: 'roles',
  rolesClaimFormat: 'array', clockSkewSeconds: 30, maxTokenAgeSeconds: 3600, maxTokenLifetimeSeconds: 3600, requireCertificateBinding: false,
  purposeOfUseClaim: 'purpose_of_use', replayProtection: false,
};
const peer: PeerIdentity = { altNames: ['spiffe://cdsgate.local/app/bench'], thumbprint: 'bench-certificate-thumbprint' };
const tokens = await Promise.all(Array.from({ length: tokenCount }, (_, i) => new SignJWT({ roles: ['clinician'] })
  .setProtectedHeader({ alg: 'ES256', kid: 'bench' }).setIssuer(issuer.issuer).setAudience('cdsgate').setSubject(`bench-user-${i}`)
  .setIssuedAt().setExpirationTime('50m').sign(privateKey)));

const realNow = Date.now;
let clockShiftMs = 0;
Date.now = () => realNow() + clockShiftMs;

/** CPU µs per token of authenticating every token once, one after another. */
async function perToken(auth: Authenticator): Promise<number> {
  const before = process.cpuUsage();
  for (const token of tokens) await auth.authenticate(`Bearer ${token}`, peer);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / tokens.length;
}

const figures = { hit: [] as number[], recheck: [] as number[], verify: [] as number[] };
// The first repeat is also the warm-up: V8 compiles the path while it runs, so it is measured but the medians decide.
for (let r = 0; r < repeats; r++) {
  clockShiftMs = 0;
  const cached = new Authenticator([issuer], undefined, 16_384, { watchIntervalMs: 3_600_000 });
  const uncached = new Authenticator([issuer], undefined, 0, { watchIntervalMs: 3_600_000 });
  await perToken(cached); // verified and cached
  figures.hit.push(await perToken(cached));
  clockShiftMs = 61_000;
  figures.recheck.push(await perToken(cached));
  figures.verify.push(await perToken(uncached));
}
Date.now = realNow;
rmSync(dir, { recursive: true, force: true });

const m = { hit: median(figures.hit), recheck: median(figures.recheck), verify: median(figures.verify) };
const md = [
  '# The verified-token cache: CPU per token on the event loop',
  '',
  `${new Date().toISOString()}; ${tokenCount} ES256 tokens of one issuer (JWKS file), each authenticated once per figure, ${repeats} repeats (medians); in-process, on the loop.`,
  '',
  '| path | µs per token |',
  '| --- | --- |',
  `| cached hit | ${m.hit.toFixed(1)} |`,
  `| cached, its entry's minute passed: key looked up again | ${m.recheck.toFixed(1)} |`,
  `| full verification (signature checked; the cache off, or before the re-check) | ${m.verify.toFixed(1)} |`,
  '',
  `A re-check costs ${(m.recheck / m.verify).toFixed(3)}× a full verification.`,
  '',
].join('\n');
writeReport('token-cache', { tokens: tokenCount, repeats, figures, medians: m }, md);
