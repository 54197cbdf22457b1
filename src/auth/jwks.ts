import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import type { IssuerConfig } from '../config/schema.js';

/**
 * The key source for one issuer. A URL JWKS is cached and refetched when a
 * token names an unknown kid, at most once per cooldown (jose does both). A
 * file JWKS is re-read on an unknown kid under the same kind of limit, so a
 * key rotation on disk needs no restart.
 */
export function jwksFor(jwks: NonNullable<IssuerConfig['jwks']>): JWTVerifyGetKey {
  if ('url' in jwks) {
    const dispatcher = jwks.ca ? new Agent({ connect: { ca: readFileSync(jwks.ca) } }) : undefined;
    return createRemoteJWKSet(new URL(jwks.url), {
      cacheMaxAge: jwks.cacheMaxAgeMs,
      cooldownDuration: jwks.cooldownMs,
      timeoutDuration: 5_000,
      [customFetch]: (url, options) => undiciFetch(url, { ...(options as object), ...(dispatcher ? { dispatcher } : {}) }) as unknown as Promise<Response>,
    });
  }
  const read = (): JWTVerifyGetKey => createLocalJWKSet(JSON.parse(readFileSync(jwks.file, 'utf8')) as JSONWebKeySet);
  let current = read();
  let lastReload = Number.NEGATIVE_INFINITY; // the first unknown kid may reload at once
  return async (header, token) => {
    try {
      return await current(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || Date.now() - lastReload < jwks.cooldownMs) throw err;
      lastReload = Date.now();
      current = read();
      return current(header, token);
    }
  };
}
