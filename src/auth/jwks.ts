import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import type { IssuerConfig } from '../config/schema.js';
import { watchForChanges } from '../tls/file-watch.js';

/** What a file JWKS reports as it is watched: a changed file re-read, or one that could not be (the previous keys stay). */
export interface KeyFileEvents {
  /** The file changed and its keys replaced the previous ones: tokens verified with a key no longer there must go. */
  onChange?: () => void;
  onError?: (reason: string) => void;
}

/**
 * The key source for one issuer. A URL JWKS is cached and refetched when a
 * token names an unknown kid, at most once per cooldown, and after
 * `cacheMaxAgeMs` (jose does all three), so a key withdrawn there stops
 * verifying within that age. A file JWKS is re-read on an unknown kid under
 * the same kind of limit, so a key rotation on disk needs no restart, and it
 * is watched (`watchIntervalMs`): a key taken out of the file, a compromised
 * one, stops verifying within about a second, and `onChange` lets the token
 * cache forget what it verified before. The watch keeps no process alive.
 */
export function jwksFor(jwks: NonNullable<IssuerConfig['jwks']>, events: KeyFileEvents = {}, watchIntervalMs = 1_000): JWTVerifyGetKey {
  if ('url' in jwks) {
    const dispatcher = jwks.ca ? new Agent({ connect: { ca: readFileSync(jwks.ca) } }) : undefined;
    return createRemoteJWKSet(new URL(jwks.url), {
      cacheMaxAge: jwks.cacheMaxAgeMs,
      cooldownDuration: jwks.cooldownMs,
      timeoutDuration: 5_000,
      [customFetch]: (url, options) => undiciFetch(url, { ...(options as object), ...(dispatcher ? { dispatcher } : {}) }) as unknown as Promise<Response>,
    });
  }
  let text = readFileSync(jwks.file, 'utf8');
  let current = createLocalJWKSet(JSON.parse(text) as JSONWebKeySet);
  /** Reads the file again; replaces the keys (and says so) only if its text changed. Throws if it cannot be read or parsed. */
  const reread = (): void => {
    const fresh = readFileSync(jwks.file, 'utf8');
    if (fresh === text) return;
    current = createLocalJWKSet(JSON.parse(fresh) as JSONWebKeySet);
    text = fresh;
    events.onChange?.();
  };
  watchForChanges([jwks.file], () => {
    try {
      reread();
    } catch (err) {
      events.onError?.((err as Error).message);
    }
  }, watchIntervalMs);
  let lastReload = Number.NEGATIVE_INFINITY; // the first unknown kid may reload at once
  return async (header, token) => {
    try {
      return await current(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || Date.now() - lastReload < jwks.cooldownMs) throw err;
      lastReload = Date.now();
      reread();
      return current(header, token);
    }
  };
}
