import { describe, expect, it } from 'vitest';
import { TokenCache } from '../../src/auth/token-cache.js';

describe('verified-token cache', () => {
  const payload = (expSeconds: number) => ({ sub: 's', exp: expSeconds });

  it('keeps an entry no longer than its maximum age or the token expiry', () => {
    const cache = new TokenCache(10, 60_000);
    const t0 = 1_000_000_000_000;
    cache.set('a', 'iss', payload(t0 / 1000 + 3600), t0);
    expect(cache.get('a', t0 + 59_999)).toBeDefined();
    expect(cache.get('a', t0 + 60_000)).toBeUndefined();
    cache.set('b', 'iss', payload(t0 / 1000 + 5), t0);
    expect(cache.get('b', t0 + 4_999)).toBeDefined();
    expect(cache.get('b', t0 + 5_000)).toBeUndefined();
  });

  it('never caches an already expired token', () => {
    const cache = new TokenCache();
    cache.set('old', 'iss', payload(1), Date.now());
    expect(cache.size).toBe(0);
  });

  it('is bounded, dropping the oldest entry', () => {
    const cache = new TokenCache(3);
    const exp = Date.now() / 1000 + 600;
    for (const t of ['a', 'b', 'c', 'd']) cache.set(t, 'iss', payload(exp));
    expect(cache.size).toBe(3);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('d')).toBeDefined();
  });

  it('with no entries configured, keeps nothing: every call is verified', () => {
    const cache = new TokenCache(0);
    cache.set('a', 'iss', payload(Date.now() / 1000 + 600));
    expect(cache.size).toBe(0);
    expect(cache.get('a')).toBeUndefined();
  });

  it('forgets one issuer\'s tokens when asked, keeping the others', () => {
    const cache = new TokenCache();
    const exp = Date.now() / 1000 + 600;
    cache.set('a', 'iss-1', payload(exp));
    cache.set('b', 'iss-2', payload(exp));
    cache.set('c', 'iss-1', payload(exp));
    cache.dropIssuer('iss-1');
    expect([cache.get('a'), cache.get('c')]).toEqual([undefined, undefined]);
    expect(cache.get('b')).toBeDefined();
  });
});
