import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { JWTPayload } from 'jose';
import { Agent, request } from 'undici';
import type { IssuerConfig } from '../config/schema.js';
import { CdsError } from '../errors.js';

type IntrospectionConfig = NonNullable<IssuerConfig['introspection']>;

const MAX_CACHED = 10_000;

const inactive = (description: string) => new CdsError('unauthenticated', description, {
  'www-authenticate': `Bearer realm="cdsgate", error="invalid_token", error_description="${description.replace(/["\\]/g, "'")}"`,
});

/**
 * RFC 7662 token introspection for an issuer of opaque access tokens. The
 * answer is checked as a JWT's claims would be — active, exp (required), iss
 * when given, aud containing the gateway's audience, lifetime — and reused
 * for at most cacheMaxSeconds and never past exp, keyed by a hash of the
 * token (the token itself is not kept).
 */
export class Introspector {
  private readonly cache = new Map<string, { payload: JWTPayload; until: number }>();
  private readonly dispatcher: Agent;
  private readonly authorization: string;

  constructor(private readonly issuer: IssuerConfig, private readonly config: IntrospectionConfig) {
    this.dispatcher = new Agent({ connect: config.ca ? { ca: readFileSync(config.ca) } : {} });
    const secret = 'file' in config.clientSecret ? readFileSync(config.clientSecret.file, 'utf8').trim() : process.env[config.clientSecret.env];
    if (!secret) throw new Error(`introspection client secret for ${issuer.issuer} is empty or unset`);
    // client_secret_basic: each part form-urlencoded, then base64 (RFC 6749 §2.3.1).
    this.authorization = `Basic ${Buffer.from(`${encodeURIComponent(config.clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  }

  async claims(token: string, now = Date.now()): Promise<JWTPayload> {
    const key = createHash('sha256').update(token).digest('base64url');
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return hit.payload;
    const payload = await this.ask(token);
    const skew = this.issuer.clockSkewSeconds;
    if (payload.active !== true) throw inactive('token is not active (introspection)');
    if (typeof payload.exp !== 'number') throw inactive('introspection gave the token no exp, which this gateway requires');
    if (payload.exp + skew <= now / 1000) throw inactive('token has expired');
    if (payload.iss !== undefined && payload.iss !== this.issuer.issuer) throw inactive('token issuer is not the one this introspection endpoint speaks for');
    const audiences = Array.isArray(payload.aud) ? payload.aud : payload.aud === undefined ? [] : [payload.aud];
    const wanted = Array.isArray(this.issuer.audience) ? this.issuer.audience : [this.issuer.audience];
    if (!audiences.some((a) => wanted.includes(a))) throw inactive('token audience is not this gateway');
    if (typeof payload.iat === 'number' && payload.exp - payload.iat > this.issuer.maxTokenLifetimeSeconds) {
      throw inactive(`token lifetime (exp - iat) is over ${this.issuer.maxTokenLifetimeSeconds} s`);
    }
    const claims: JWTPayload = { ...payload, sub: typeof payload.sub === 'string' ? payload.sub : String(payload.client_id ?? '') };
    if (!claims.sub) throw inactive('introspection named neither sub nor client_id');
    if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, { payload: claims, until: Math.min(now + this.config.cacheMaxSeconds * 1000, payload.exp * 1000) });
    return claims;
  }

  private async ask(token: string): Promise<JWTPayload & { active?: unknown; client_id?: unknown }> {
    let response;
    try {
      response = await request(this.config.endpoint, {
        method: 'POST', dispatcher: this.dispatcher, signal: AbortSignal.timeout(this.config.timeoutMs),
        headers: { authorization: this.authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
      });
    } catch (err) {
      throw new CdsError('unavailable', `token introspection at the issuer failed (${(err as Error).name}); try again later`);
    }
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw new CdsError('unavailable', `token introspection at the issuer answered ${response.statusCode}; try again later`);
    }
    const body = await response.body.json().catch(() => undefined);
    if (!body || typeof body !== 'object') throw new CdsError('unavailable', 'token introspection answered something that is not a JSON object');
    return body as JWTPayload & { active?: unknown };
  }
}
