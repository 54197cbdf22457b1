import { describe, expect, it } from 'vitest';
import { TokenCache } from '../../src/auth/token-cache.js';

describe('verified-token cache', () => {
  const payload = (expSeconds: number) => ({ sub: 's', exp: expSeconds });
  const header = { alg: 'ES256' };
  const key = { the: 'key object the signature was checked with' };
  const put = (cache: TokenCache, token: string, issuer: string, expSeconds: number, now?: number) => cache.set(token, issuer, payload(expSeconds), header, key, now);

  it('keeps an entry until the token expires, its key due to be looked up again after each maximum age', () => {
    const cache = new TokenCache(10, 60_000);
    const t0 = 1_000_000_000_000;
    put(cache, 'a', 'iss', t0 / 1000 + 3600, t0);
    const a = cache.get('a', t0 + 59_999)!;
    expect(a).toMatchObject({ issuer: 'iss', header, key });
    expect(cache.keyCheckDue(a, t0 + 59_999)).toBe(false);
    expect(cache.keyCheckDue(cache.get('a', t0 + 60_000)!, t0 + 60_000)).toBe(true);
    // Its key still the issuer's: another maximum age as it is.
    cache.keyChecked(a, t0 + 61_000);
    expect(cache.keyCheckDue(a, t0 + 121_000 - 1)).toBe(false);
    expect(cache.keyCheckDue(a, t0 + 121_000)).toBe(true);
    expect(cache.get('a', t0 + 3_600_000)).toBeUndefined();
    expect(cache.size).toBe(0);
    // Never past the token's expiry, whatever the maximum age.
    put(cache, 'b', 'iss', t0 / 1000 + 5, t0);
    expect(cache.get('b', t0 + 4_999)).toBeDefined();
    expect(cache.get('b', t0 + 5_000)).toBeUndefined();
  });

  it('forgets a token whose key is no longer the issuer\'s', () => {
    const cache = new TokenCache();
    put(cache, 'a', 'iss', Date.now() / 1000 + 600);
    cache.delete('a');
    expect(cache.get('a')).toBeUndefined();
  });

  it('never caches an already expired token', () => {
    const cache = new TokenCache();
    put(cache, 'old', 'iss', 1, Date.now());
    expect(cache.size).toBe(0);
  });

  it('is bounded, dropping the oldest entry', () => {
    const cache = new TokenCache(3);
    const exp = Date.now() / 1000 + 600;
    for (const t of ['a', 'b', 'c', 'd']) put(cache, t, 'iss', exp);
    expect(cache.size).toBe(3);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('d')).toBeDefined();
  });

  it('with no entries configured, keeps nothing: every call is verified', () => {
    const cache = new TokenCache(0);
    put(cache, 'a', 'iss', Date.now() / 1000 + 600);
    expect(cache.size).toBe(0);
    expect(cache.get('a')).toBeUndefined();
  });

  it('forgets one issuer\'s tokens when asked, keeping the others', () => {
    const cache = new TokenCache();
    const exp = Date.now() / 1000 + 600;
    put(cache, 'a', 'iss-1', exp);
    put(cache, 'b', 'iss-2', exp);
    put(cache, 'c', 'iss-1', exp);
    cache.dropIssuer('iss-1');
    expect([cache.get('a'), cache.get('c')]).toEqual([undefined, undefined]);
    expect(cache.get('b')).toBeDefined();
  });
});
