import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import type { IssuerConfig } from '../config/schema.js';
import { watchForChanges } from '../tls/file-watch.js';

/** What a JWKS reports: a changed key set (a file re-read, a URL refetched), or a file that could not be read (the previous keys stay). */
export interface KeySetEvents {
  /** The keys changed: tokens verified with a key no longer there must go. */
  onChange?: () => void;
  onError?: (reason: string) => void;
}

/**
 * The key source for one issuer. A URL JWKS is cached and refetched when a
 * token names an unknown kid, at most once per cooldown, and after
 * `cacheMaxAgeMs` (jose does all three), so a key withdrawn there stops
 * verifying within that age; when a refetch brings a changed set, `onChange`
 * lets the token cache forget what it verified before. A file JWKS is re-read on an unknown kid under
 * the same kind of limit, so a key rotation on disk needs no restart, and it
 * is watched (`watchIntervalMs`): a key taken out of the file, a compromised
 * one, stops verifying within about a second, and `onChange` lets the token
 * cache forget what it verified before. The watch keeps no process alive.
 */
export function jwksFor(jwks: NonNullable<IssuerConfig['jwks']>, events: KeySetEvents = {}, watchIntervalMs = 1_000): JWTVerifyGetKey {
  if ('url' in jwks) {
    const dispatcher = jwks.ca ? new Agent({ connect: { ca: readFileSync(jwks.ca) } }) : undefined;
    const remote = createRemoteJWKSet(new URL(jwks.url), {
      cacheMaxAge: jwks.cacheMaxAgeMs,
      cooldownDuration: jwks.cooldownMs,
      timeoutDuration: 5_000,
      [customFetch]: (url, options) => undiciFetch(url, { ...(options as object), ...(dispatcher ? { dispatcher } : {}) }) as unknown as Promise<Response>,
    });
    // jose refetches inside a call; a refetch starts its cooldown, so a call that starts it is one that refetched. Only
    // then is the set compared with the one before: a key withdrawn there drops the tokens verified before (onChange).
    let seen: string | undefined;
    const compare = () => {
      const now = JSON.stringify(remote.jwks() ?? null);
      if (seen !== undefined && now !== seen) events.onChange?.();
      seen = now;
    };
    return async (header, token) => {
      const couldRefetch = !remote.coolingDown;
      try {
        return await remote(header, token);
      } finally {
        if (couldRefetch && remote.coolingDown) compare();
      }
    };
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
