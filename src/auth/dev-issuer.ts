import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';

/**
 * A development token issuer: an ES256 key pair on disk and the JWKS the dev
 * gateway config trusts. Production deployments point the gateway at their
 * real identity provider's JWKS instead.
 */
export const DEV_ISSUER = 'https://issuer.dev.cdsgate.local';
export const DEV_AUDIENCE = 'cdsgate';
export const DEV_ALG = 'ES256';

export interface DevIssuerFiles { privateJwk: string; jwks: string }

export const devIssuerFiles = (dir: string): DevIssuerFiles => ({ privateJwk: join(dir, 'issuer-private.jwk.json'), jwks: join(dir, 'issuer-jwks.json') });

/** The development EHR (a CDS Hooks client): its own ES384 key, as the spec recommends. */
export const DEV_EHR_ISSUER = 'https://ehr.dev.cdsgate.local';
export const DEV_EHR_ALG = 'ES384';
export const devEhrFiles = (dir: string): DevIssuerFiles => ({ privateJwk: join(dir, 'ehr-private.jwk.json'), jwks: join(dir, 'ehr-jwks.json') });

export async function generateDevIssuer(dir: string, files = devIssuerFiles(dir), alg: string = DEV_ALG): Promise<DevIssuerFiles> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  writeFileSync(files.privateJwk, JSON.stringify(privateJwk), { mode: 0o600 });
  chmodSync(files.privateJwk, 0o600);
  writeFileSync(files.jwks, JSON.stringify({ keys: [{ ...publicJwk, kid, alg, use: 'sig' }] }, null, 2));
  return files;
}

export interface MintOptions {
  subject: string;
  roles: string[];
  ttlSeconds: number;
  audience?: string;
  issuer?: string;
  /** Bind the token to a client certificate (RFC 8705 cnf.x5t#S256). */
  certificateThumbprint?: string;
  claims?: Record<string, unknown>;
  /** Issue time (epoch seconds); now when omitted. Tests use it to mint already-expired tokens. */
  issuedAt?: number;
}

export async function mintDevToken(privateJwkFile: string, options: MintOptions): Promise<string> {
  const jwk = JSON.parse(readFileSync(privateJwkFile, 'utf8')) as JWK;
  const key = await importJWK(jwk, DEV_ALG);
  const iat = options.issuedAt ?? Math.floor(Date.now() / 1000);
  return new SignJWT({
    ...options.claims,
    roles: options.roles,
    ...(options.certificateThumbprint ? { cnf: { 'x5t#S256': options.certificateThumbprint } } : {}),
  })
    .setProtectedHeader({ alg: DEV_ALG, kid: jwk.kid!, typ: 'JWT' })
    .setSubject(options.subject)
    .setIssuer(options.issuer ?? DEV_ISSUER)
    .setAudience(options.audience ?? DEV_AUDIENCE)
    .setIssuedAt(iat)
    .setJti(crypto.randomUUID())
    .setExpirationTime(iat + options.ttlSeconds)
    .sign(key);
}

/**
 * A CDS Hooks client JWT as an EHR signs it (CDS Hooks 2.0 §security): typ
 * JWT and kid in the header; iss, aud (the exact service URL), iat, exp (five
 * minutes) and a fresh jti; no sub.
 */
export async function mintCdsClientToken(privateJwkFile: string, options: { audience: string; issuer?: string; ttlSeconds?: number; tenant?: string; claims?: Record<string, unknown>; header?: Record<string, unknown> }): Promise<string> {
  const jwk = JSON.parse(readFileSync(privateJwkFile, 'utf8')) as JWK;
  const alg = jwk.alg ?? DEV_EHR_ALG;
  const key = await importJWK(jwk, alg);
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({ ...(options.tenant ? { tenant: options.tenant } : {}), ...options.claims })
    .setProtectedHeader({ alg, kid: jwk.kid!, typ: 'JWT', ...options.header })
    .setIssuer(options.issuer ?? DEV_EHR_ISSUER)
    .setAudience(options.audience)
    .setIssuedAt(iat)
    .setJti(crypto.randomUUID())
    .setExpirationTime(iat + (options.ttlSeconds ?? 300))
    .sign(key);
}
