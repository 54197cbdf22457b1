import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { unverifiedHeaderAndIssuer } from '../auth/jws-signature.js';
import { Agent, fetch as undiciFetch } from 'undici';
import type { CdsClientConfig } from '../config/schema.js';
import { CdsError } from '../errors.js';
import { jwksFor } from '../auth/jwks.js';
import { ReplayCache, type ReplayStore } from '../auth/replay-cache.js';

const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/;

/** Who called, as far as the CDS client's JWT says. */
export interface CdsCaller {
  issuer: string;
  tenant?: string;
  tokenId: string;
}

const refuse = (description: string): CdsError => new CdsError('unauthenticated', description, {
  'www-authenticate': `Bearer realm="cdsgate-cds-hooks", error="invalid_token", error_description="${description.replace(/["\\]/g, "'")}"`,
});

interface TrustedClient { config: CdsClientConfig; keys: JWTVerifyGetKey; jku: Map<string, JWTVerifyGetKey> }

/**
 * The CDS client's JWT, by the CDS Hooks 2.0 security rules: alg, kid and
 * typ "JWT" in the header; iss, aud, exp, iat and jti required; aud equal to
 * the exact URL called; the key from the client's configured JWKS, or from the
 * header's jku only when that URL is on the issuer's allow-list; never none or
 * HMAC (only the configured asymmetric algorithms); each jti used once.
 */
export class CdsClientAuthenticator {
  private readonly clients = new Map<string, TrustedClient>();
  constructor(configs: CdsClientConfig[], private readonly replays: ReplayStore = new ReplayCache()) {
    for (const config of configs) {
      const dispatcher = config.jkuCa ? new Agent({ connect: { ca: readFileSync(config.jkuCa) } }) : undefined;
      const jku = new Map(config.jkuAllowList.map((url) => [url, createRemoteJWKSet(new URL(url), {
        timeoutDuration: 5_000, cooldownDuration: 30_000, cacheMaxAge: 600_000,
        [customFetch]: (u, options) => undiciFetch(u, { ...(options as object), ...(dispatcher ? { dispatcher } : {}) }) as unknown as Promise<Response>,
      })]));
      this.clients.set(config.issuer, { config, keys: jwksFor(config.jwks), jku });
    }
  }

  async verify(authorization: string | string[] | undefined, audience: string): Promise<CdsCaller> {
    if (Array.isArray(authorization)) throw refuse('more than one Authorization header; send exactly one');
    const token = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1];
    if (!token) throw refuse('CDS Hooks calls need Authorization: Bearer <JWT> signed by the CDS client');
    const peeked = unverifiedHeaderAndIssuer(token);
    if (!peeked) throw refuse('token is not a well-formed JWT');
    const { header, issuer: iss } = peeked;
    const client = typeof iss === 'string' ? this.clients.get(iss) : undefined;
    if (!client) throw refuse('token issuer is not a configured CDS client');
    const { config } = client;
    if (typeof header.alg !== 'string' || !(config.algorithms as readonly string[]).includes(header.alg)) throw refuse('token signing algorithm is not allowed (none and HMAC never are)');
    if (typeof header.kid !== 'string' || header.kid.length === 0) throw refuse('token header has no "kid"');
    if (header.typ !== 'JWT') throw refuse('token header "typ" must be "JWT"');
    if (header.crit !== undefined) throw refuse('token uses a JWS extension this gateway does not support');
    let keys = client.keys;
    if (header.jku !== undefined) {
      const listed = typeof header.jku === 'string' ? client.jku.get(header.jku) : undefined;
      if (!listed) throw refuse('token "jku" is not on this issuer\'s allow-list');
      keys = listed;
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        algorithms: config.algorithms,
        issuer: config.issuer,
        audience,
        typ: 'JWT',
        clockTolerance: config.clockSkewSeconds,
        requiredClaims: ['iss', 'aud', 'exp', 'iat', 'jti'],
      }));
    } catch (err) {
      throw refuse(describe(err, audience));
    }
    if (payload.exp! - payload.iat! > config.maxTokenLifetimeSeconds) {
      throw refuse(`token lifetime (exp - iat) is over ${config.maxTokenLifetimeSeconds} s`);
    }
    if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 256) throw refuse('token "jti" must be a string of 1 to 256 characters');
    const tenant = typeof payload.tenant === 'string' ? payload.tenant : undefined;
    if (config.tenant !== undefined && tenant !== config.tenant) throw refuse('token "tenant" is not the one configured for this CDS client');
    await this.replays.claim(config.issuer, payload.jti, (payload.exp! + config.clockSkewSeconds) * 1000);
    return { issuer: config.issuer, ...(tenant ? { tenant } : {}), tokenId: payload.jti };
  }
}

function describe(err: unknown, audience: string): string {
  if (err instanceof errors.JWTExpired) return 'token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return `token has no "${err.claim}" claim, which CDS Hooks requires`;
    if (err.claim === 'aud') return `token "aud" must be the exact URL called (${audience})`;
    if (err.claim === 'iat') return 'token issue time is in the future';
    if (err.claim === 'typ') return 'token header "typ" must be "JWT"';
    return `token claim "${err.claim}" is invalid`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'token signing algorithm is not allowed';
  if (err instanceof errors.JWKSNoMatchingKey) return 'token key id is not in the CDS client\'s key set';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'token signature is invalid';
  if (err instanceof errors.JWKSTimeout || (err instanceof errors.JOSEError && err.code === 'ERR_JWKS_INVALID')) return 'the CDS client\'s key set is unavailable';
  return 'token is invalid';
}
