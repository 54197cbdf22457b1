import type { CompactJWSHeaderParameters, JWTPayload } from 'jose';

export interface CachedToken {
  issuer: string;
  payload: JWTPayload;
  /** The protected header the key was chosen by, and the key: what is looked up again when the key check is due. */
  header: CompactJWSHeaderParameters;
  key: unknown;
  /** Until then (ms) the entry is used as it is; after it, only once the issuer's key set still gives `key`. */
  keyCheckedUntil: number;
  /** The token's own expiry (ms): the entry never outlives it. */
  expiresAt: number;
}

/**
 * Verified tokens, keyed by the exact token string (signature included), so
 * repeated calls with one token skip the signature check (about a third of a
 * millisecond of CPU for ES256). Entries last until the token expires; time
 * claims and certificate binding are still checked on every hit by the
 * caller. Every `maxAgeMs` an entry's key is due to be asked for again
 * (`keyCheckDue`): the caller looks the key up in the issuer's key set as a
 * full verification would (which lets a URL key set past its age be
 * refetched) and keeps the entry only when that gives the very key the
 * signature was checked with; checking the same signature with the same key
 * again could only give the same answer. So a withdrawn key stops verifying
 * within that time, at the cost of a key lookup, not a signature check.
 * Bounded: the oldest entry goes first.
 */
export class TokenCache {
  private readonly entries = new Map<string, CachedToken>();

  constructor(private readonly maxEntries = 16_384, private readonly maxAgeMs = 60_000) {}

  get(token: string, now = Date.now()): CachedToken | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(token);
      return undefined;
    }
    return entry;
  }

  /** True when the entry's key must be looked up again before the entry is used (see the class comment). */
  keyCheckDue(entry: CachedToken, now = Date.now()): boolean {
    return entry.keyCheckedUntil <= now;
  }

  /** The issuer's key set still gives the entry's key: used as it is for another `maxAgeMs`. */
  keyChecked(entry: CachedToken, now = Date.now()): void {
    entry.keyCheckedUntil = Math.min(now + this.maxAgeMs, entry.expiresAt);
  }

  set(token: string, issuer: string, payload: JWTPayload, header: CompactJWSHeaderParameters, key: unknown, now = Date.now()): void {
    if (this.maxEntries === 0) return; // configured off: every call is verified
    const expiresAt = typeof payload.exp === 'number' ? payload.exp * 1000 : now;
    if (expiresAt <= now) return;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, { issuer, payload, header, key, keyCheckedUntil: Math.min(now + this.maxAgeMs, expiresAt), expiresAt });
  }

  /** Forgets one token (its key is no longer the issuer's: it goes to full verification). */
  delete(token: string): void {
    this.entries.delete(token);
  }

  /** Forgets every token of one issuer (its keys changed: some may have been verified with a key now withdrawn). */
  dropIssuer(issuer: string): void {
    for (const [token, entry] of this.entries) if (entry.issuer === issuer) this.entries.delete(token);
  }

  get size(): number {
    return this.entries.size;
  }
}
