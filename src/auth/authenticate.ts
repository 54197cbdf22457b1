import { UnsecuredJWT, errors, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { unverifiedHeaderAndIssuer, verifyJwsSignature, verifyJwsSignatureOnPool } from './jws-signature.js';

/** base64url('{"alg":"none"}'): the header UnsecuredJWT.decode expects. */
const UNSECURED_HEADER = Buffer.from('{"alg":"none"}').toString('base64url');
import { CdsError } from '../errors.js';
import type { IssuerConfig } from '../config/schema.js';
import { peerName, thumbprintsEqual, type PeerIdentity } from '../tls/peer.js';
import { jwksFor } from './jwks.js';
import { TokenCache, type CachedToken } from './token-cache.js';
import { ReplayCache, type ReplayStore } from './replay-cache.js';
import { Introspector } from './introspection.js';
import type { Principal } from './principal.js';

const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/;
/** RFC 6750 b64token: what an opaque access token may look like. */
const OPAQUE = /^Bearer ([A-Za-z0-9\-._~+/]{16,4096}=*)$/;

function unauthenticated(description: string, error: 'invalid_request' | 'invalid_token' = 'invalid_token'): CdsError {
  const safe = description.replace(/["\\]/g, "'");
  return new CdsError('unauthenticated', description, {
    'www-authenticate': `Bearer realm="cdsgate", error="${error}", error_description="${safe}"`,
  });
}

interface TrustedIssuer { config: IssuerConfig; keys?: JWTVerifyGetKey }

/**
 * What the authenticator tells its owner (the metrics and the log): an
 * issuer's key set changed (a JWKS file re-read, a URL refetched), a changed
 * file could not be read (its previous keys stay), a token's signature was
 * checked in full.
 */
export interface KeySetReports {
  reloaded?: (issuer: string) => void;
  notReloaded?: (issuer: string, reason: string) => void;
  /** Told of each token signature checked (one not served from the verified-token cache), and where: the event loop or the thread pool. */
  signatureChecked?: (where: 'loop' | 'pool') => void;
  /** How often key files are checked for a change (tests shorten it). */
  watchIntervalMs?: number;
}

/** A token's holder as its claims describe them, and the certificate thumbprint it is bound to (RFC 8705), if any. */
interface TokenIdentity {
  identity: Omit<Principal, 'certificate' | 'certificateBound'>;
  bound: string | undefined;
}

/**
 * Verifies the bearer token against the issuer it names (which must be
 * configured), with that issuer's JWKS, audience, algorithm allow-list and
 * clock skew; then checks an RFC 8705 certificate binding, and builds the
 * principal. It never reads the request payload.
 */
export class Authenticator {
  private readonly issuers = new Map<string, TrustedIssuer>();
  private readonly cache: TokenCache;
  private readonly replays: ReplayStore;
  /** Each verified payload's reading (claimsOf); entries go with their payload when the token cache drops it. */
  private readonly identities = new WeakMap<JWTPayload, TokenIdentity>();

  private readonly signatureChecked: KeySetReports['signatureChecked'];

  /** The one issuer of opaque tokens, when one is configured. */
  private readonly introspection?: { config: IssuerConfig; introspector: Introspector };

  constructor(
    configs: IssuerConfig[], replays: ReplayStore = new ReplayCache(), tokenCacheEntries = 16_384, keySets: KeySetReports = {},
    /**
     * How many requests are in progress, this one included. More than one: a
     * token's signature is checked on the thread pool (verifyJwsSignatureOnPool),
     * so the event loop serves the others meanwhile; one: on the loop's own
     * thread, which answers it sooner.
     */
    private readonly inProgress: () => number = () => 1,
  ) {
    this.replays = replays;
    this.signatureChecked = keySets.signatureChecked;
    this.cache = new TokenCache(tokenCacheEntries);
    for (const config of configs) {
      // A changed key file may have withdrawn a key: the tokens verified with this issuer's keys are verified again.
      const events = {
        onChange: () => { this.cache.dropIssuer(config.issuer); keySets.reloaded?.(config.issuer); },
        onError: (reason: string) => keySets.notReloaded?.(config.issuer, reason),
      };
      this.issuers.set(config.issuer, { config, ...(config.jwks ? { keys: jwksFor(config.jwks, events, keySets.watchIntervalMs) } : {}) });
      if (config.introspection) this.introspection = { config, introspector: new Introspector(config, config.introspection) };
    }
  }

  async authenticate(authorization: string | string[] | undefined, peer: PeerIdentity | undefined): Promise<Principal> {
    if (!peer) throw unauthenticated('a verified client certificate is required', 'invalid_request');
    if (Array.isArray(authorization)) throw unauthenticated('more than one Authorization header; send exactly one', 'invalid_request');
    if (!authorization) throw unauthenticated('missing Authorization: Bearer token', 'invalid_request');
    // A token verified before skips the format check too: it matched BEARER when it was verified.
    const bearer = authorization.startsWith('Bearer ') ? authorization.slice(7) : undefined;
    let cached = bearer !== undefined ? this.cachedClaims(bearer) : undefined;
    if (cached?.keyCheckDue && !(await this.keyUnchanged(bearer!, cached.entry))) cached = undefined;
    const token = cached ? undefined : BEARER.exec(authorization)?.[1];
    const opaque = cached || token !== undefined || !this.introspection ? undefined : OPAQUE.exec(authorization)?.[1];
    if (!cached && !token && !opaque) throw unauthenticated(this.introspection ? 'Authorization must be "Bearer <token>"' : 'Authorization must be "Bearer <JWT>"', 'invalid_request');

    const { config, payload } = cached
      ?? (opaque !== undefined ? { config: this.introspection!.config, payload: await this.introspection!.introspector.claims(opaque) } : await this.verify(token!));
    if (config.replayProtection && opaque === undefined) {
      // Every use counts, whether or not the signature check was cached.
      await this.replays.claim(config.issuer, payload.jti!, (payload.exp! + config.clockSkewSeconds) * 1000);
    }

    const claims = this.claimsOf(config, payload);
    if (claims.bound !== undefined && !thumbprintsEqual(claims.bound, peer.thumbprint)) {
      throw unauthenticated('token is bound to a different client certificate');
    }
    if (claims.bound === undefined && config.requireCertificateBinding) {
      throw unauthenticated('token must be bound to the client certificate (cnf.x5t#S256)');
    }
    const { identity } = claims;
    return {
      subject: identity.subject,
      issuer: identity.issuer,
      clientId: identity.clientId,
      roles: identity.roles,
      scopes: identity.scopes,
      purposeOfUse: identity.purposeOfUse,
      tokenId: identity.tokenId,
      ...(identity.patient !== undefined ? { patient: identity.patient } : {}),
      certificate: { name: peerName(peer), thumbprint: peer.thumbprint },
      certificateBound: claims.bound !== undefined,
    };
  }

  /**
   * What a token's claims say about its holder, read once per verified
   * payload: a cached token's payload object is the same on every use, so
   * repeated calls skip re-reading roles, scopes and purposes. The arrays are
   * shared between the principals of one token and nothing writes to them.
   */
  private claimsOf(config: IssuerConfig, payload: JWTPayload): TokenIdentity {
    let claims = this.identities.get(payload);
    if (claims) return claims;
    claims = {
      bound: boundThumbprint(payload),
      identity: {
        subject: payload.sub!,
        issuer: config.issuer,
        clientId: stringClaim(payload.azp) ?? stringClaim(payload.client_id),
        roles: rolesFrom(claimAt(payload, config.rolesClaim), config.rolesClaimFormat),
        scopes: stringList(payload.scope ?? payload.scp),
        purposeOfUse: purposeCodes(claimAt(payload, 'extensions.ihe_iua.purpose_of_use') ?? claimAt(payload, config.purposeOfUseClaim)),
        tokenId: stringClaim(payload.jti),
        patient: stringClaim(payload.patient),
      },
    };
    this.identities.set(payload, claims);
    return claims;
  }

  /**
   * Full verification: issuer pinning, the algorithm allow-list, the key from
   * the issuer's JWKS (jose selects it by kid and algorithm), the signature
   * (node:crypto, synchronously: jws-signature.ts), then every claim check by
   * jose itself — audience, issuer, exp/nbf/iat with the clock skew, maximum
   * age, required claims — run over the very payload that was signed.
   * Under load the signature is checked on the thread pool (see inProgress).
   */
  private async verify(token: string): Promise<{ config: IssuerConfig; payload: JWTPayload }> {
    const peeked = unverifiedHeaderAndIssuer(token);
    if (!peeked) throw unauthenticated('token is not a well-formed JWT');
    const { header, issuer: claimedIssuer } = peeked;
    const trusted = typeof claimedIssuer === 'string' ? this.issuers.get(claimedIssuer) : undefined;
    if (!trusted) throw unauthenticated('token issuer is not trusted');
    const { config } = trusted;
    if (!trusted.keys) throw unauthenticated('this issuer\'s tokens are opaque and introspected; a JWT from it is not accepted');
    const keys = trusted.keys;
    const [protectedPart, payloadPart, signaturePart] = token.split('.') as [string, string, string];
    if (typeof header.alg !== 'string' || !(config.algorithms as readonly string[]).includes(header.alg)) throw unauthenticated('token signing algorithm is not allowed');
    // No JWS extension is understood here, so any critical one makes the token unusable (RFC 7515 §4.1.11), as does b64=false.
    if (header.crit !== undefined || (header as { b64?: unknown }).b64 !== undefined) throw unauthenticated('token uses a JWS extension this gateway does not support');
    try {
      const keyHeader = { ...header, alg: header.alg };
      const key = await keys(keyHeader, { protected: protectedPart, payload: payloadPart, signature: signaturePart });
      const signingInput = `${protectedPart}.${payloadPart}`, signature = Buffer.from(signaturePart, 'base64url');
      const onPool = this.inProgress() > 1;
      this.signatureChecked?.(onPool ? 'pool' : 'loop');
      const valid = onPool
        ? await verifyJwsSignatureOnPool(header.alg, signingInput, signature, key as never)
        : verifyJwsSignature(header.alg, signingInput, signature, key as never);
      if (!valid) {
        throw new errors.JWSSignatureVerificationFailed();
      }
      // jose's own claim checks, on the signed payload: re-framed as an unsecured JWT, which is what UnsecuredJWT.decode validates.
      const { payload } = UnsecuredJWT.decode(`${UNSECURED_HEADER}.${payloadPart}.`, {
        issuer: config.issuer,
        audience: config.audience,
        clockTolerance: config.clockSkewSeconds,
        maxTokenAge: config.maxTokenAgeSeconds,
        requiredClaims: ['exp', 'iat', 'sub', ...(config.replayProtection ? ['jti'] : [])],
      });
      const lifetime = payload.exp! - payload.iat!;
      if (lifetime > config.maxTokenLifetimeSeconds) {
        throw unauthenticated(`token lifetime (exp - iat) is ${lifetime} s; this gateway accepts at most ${config.maxTokenLifetimeSeconds} s`);
      }
      if (config.replayProtection && (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 256)) {
        throw unauthenticated('token "jti" must be a string of 1 to 256 characters');
      }
      this.cache.set(token, config.issuer, payload, keyHeader, key);
      return { config, payload };
    } catch (err) {
      if (err instanceof CdsError) throw err;
      throw unauthenticated(describeJoseError(err));
    }
  }

  /**
   * A token verified before, still within its time claims; undefined sends it to full verification.
   * `keyCheckDue`: its key must be looked up again first (keyUnchanged).
   */
  private cachedClaims(token: string): { config: IssuerConfig; payload: JWTPayload; entry: CachedToken; keyCheckDue: boolean } | undefined {
    const nowMs = Date.now();
    const hit = this.cache.get(token, nowMs);
    const trusted = hit && this.issuers.get(hit.issuer);
    if (!hit || !trusted) return undefined;
    const now = nowMs / 1000, skew = trusted.config.clockSkewSeconds;
    const { exp, nbf, iat } = hit.payload;
    if (typeof exp !== 'number' || exp + skew <= now) return undefined;
    if (typeof nbf === 'number' && nbf - skew > now) return undefined;
    if (typeof iat === 'number' && now - iat > trusted.config.maxTokenAgeSeconds + skew) return undefined;
    return { config: trusted.config, payload: hit.payload, entry: hit, keyCheckDue: this.cache.keyCheckDue(hit, nowMs) };
  }

  /**
   * Whether the issuer's key set still gives the very key a cached token's
   * signature was checked with. The lookup is the one verify() makes, so a URL
   * key set past its cacheMaxAge is refetched here as it would be there. The
   * same key object means the same key, and the same signature checked with it
   * again could only pass again; every other check is on claims fixed in the
   * signed token or on time, which cachedClaims checks on every hit. Anything
   * else (a withdrawn key, a changed set, a failed lookup) drops the entry and
   * sends the token to full verification, which reports what is wrong.
   */
  private async keyUnchanged(token: string, entry: CachedToken): Promise<boolean> {
    const keys = this.issuers.get(entry.issuer)?.keys;
    const [protectedPart, payloadPart, signaturePart] = token.split('.') as [string, string, string];
    let same = false;
    try {
      same = keys !== undefined && (await keys(entry.header, { protected: protectedPart, payload: payloadPart, signature: signaturePart })) === entry.key;
    } catch {
      // The key set no longer gives a key for this header (or could not be read): the full check says which.
    }
    if (same) this.cache.keyChecked(entry);
    else this.cache.delete(token);
    return same;
  }
}

function describeJoseError(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return `token has no "${err.claim}" claim, which this gateway requires`;
    if (err.claim === 'nbf') return 'token is not yet valid';
    if (err.claim === 'iat') return 'token issue time is in the future';
    if (err.claim === 'aud') return 'token audience is not this gateway';
    if (err.claim === 'iss') return 'token issuer is not trusted';
    return `token claim "${err.claim}" is missing or invalid`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'token signing algorithm is not allowed';
  if (err instanceof errors.JWKSNoMatchingKey) return 'token key id is not in the issuer key set';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'token signature is invalid';
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JOSEError && err.code === 'ERR_JWKS_INVALID') return 'issuer key set is unavailable';
  return 'token is invalid';
}

function boundThumbprint(payload: JWTPayload): string | undefined {
  const cnf = payload.cnf as Record<string, unknown> | undefined;
  const value = cnf?.['x5t#S256'];
  return typeof value === 'string' ? value : undefined;
}

const stringClaim = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

function claimAt(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/**
 * Purpose of use as codes: IHE IUA sends a FHIR Coding or a list of them
 * (system v3-ActReason); other issuers send plain codes. Anything that is not
 * a plausible code is dropped rather than trusted.
 */
function purposeCodes(value: unknown): string[] {
  const items = Array.isArray(value) ? value : value === undefined ? [] : [value];
  const codes = items.flatMap((item): unknown[] => {
    if (typeof item === 'string') return item.split(' ');
    if (item && typeof item === 'object') {
      const o = item as { code?: unknown; coding?: unknown[] };
      if (Array.isArray(o.coding)) return o.coding.map((c) => (c as { code?: unknown }).code);
      return [o.code];
    }
    return [];
  });
  return [...new Set(codes.filter((c): c is string => typeof c === 'string' && /^[A-Za-z][A-Za-z0-9]{1,15}$/.test(c)).map((c) => c.toUpperCase()))];
}

/**
 * Roles as the issuer's configured format says: a JSON array of strings, or
 * (only when configured) one space-delimited string. A string where an array
 * is expected is refused, never split: "guest clinician" is not two roles
 * unless the operator said so.
 */
function rolesFrom(value: unknown, format: IssuerConfig['rolesClaimFormat']): string[] {
  if (value === undefined) return [];
  if (format === 'space-delimited') {
    if (typeof value !== 'string') throw unauthenticated('roles claim must be a space-delimited string for this issuer');
    return value.split(' ').filter(Boolean);
  }
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw unauthenticated('roles claim must be a JSON array of strings');
  return value as string[];
}

/** A claim that is an array of strings or a space-delimited string (OAuth scope). */
function stringList(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter(Boolean);
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}
