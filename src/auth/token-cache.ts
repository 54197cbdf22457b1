import type { JWTPayload } from 'jose';

export interface CachedToken { issuer: string; payload: JWTPayload; cachedUntil: number }

/**
 * Verified tokens, keyed by the exact token string (signature included), so
 * repeated calls with one token skip the signature check (about a third of a
 * millisecond of CPU for ES256). Entries live at most `maxAgeMs` (a revoked
 * signing key stops working within that time) and never past the token's own
 * expiry; time claims and certificate binding are still checked on every hit
 * by the caller. Bounded: the oldest entry goes first.
 */
export class TokenCache {
  private readonly entries = new Map<string, CachedToken>();

  constructor(private readonly maxEntries = 16_384, private readonly maxAgeMs = 60_000) {}

  get(token: string, now = Date.now()): CachedToken | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (entry.cachedUntil <= now) {
      this.entries.delete(token);
      return undefined;
    }
    return entry;
  }

  set(token: string, issuer: string, payload: JWTPayload, now = Date.now()): void {
    if (this.maxEntries === 0) return; // configured off: every call is verified
    const expiry = typeof payload.exp === 'number' ? payload.exp * 1000 : now;
    const cachedUntil = Math.min(now + this.maxAgeMs, expiry);
    if (cachedUntil <= now) return;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, { issuer, payload, cachedUntil });
  }

  /** Forgets every token of one issuer (its keys changed: some may have been verified with a key now withdrawn). */
  dropIssuer(issuer: string): void {
    for (const [token, entry] of this.entries) if (entry.issuer === issuer) this.entries.delete(token);
  }

  get size(): number {
    return this.entries.size;
  }
}
