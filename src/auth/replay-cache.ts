import { CdsError } from '../errors.js';

/**
 * The jti values seen per issuer, each kept until its token expires (plus the
 * clock skew), so a token can be used once. Bounded: when full of unexpired
 * entries it refuses new tokens (503) rather than forget one and let a replay
 * through. One per gateway process; see the README for running several.
 */
/** Where jti values are claimed: this process's cache, or (several gateway workers) the primary's, over IPC. */
export interface ReplayStore {
  /** Records (issuer, jti) until `expiresAtMs`; throws (or rejects) if it was already there. */
  claim(issuer: string, jti: string, expiresAtMs: number): void | Promise<void>;
}

export class ReplayCache implements ReplayStore {
  private readonly seen = new Map<string, number>();
  private nextSweep = 0;

  constructor(private readonly maxEntries = 1_000_000) {}

  /** Records (issuer, jti) until `expiresAtMs`; throws if it was already there. */
  claim(issuer: string, jti: string, expiresAtMs: number, now = Date.now()): void {
    this.sweep(now);
    const key = `${issuer}\0${jti}`;
    const until = this.seen.get(key);
    if (until !== undefined && until > now) {
      throw new CdsError('unauthenticated', 'token was already used (its jti was seen before)', {
        'www-authenticate': 'Bearer realm="cdsgate", error="invalid_token", error_description="token was already used"',
      });
    }
    if (this.seen.size >= this.maxEntries) throw new CdsError('unavailable', 'the token replay cache is full; try again later');
    this.seen.set(key, expiresAtMs);
  }

  get size(): number {
    return this.seen.size;
  }

  /** Drops expired entries, at most once a second (entries are in insertion order, not expiry order). */
  private sweep(now: number): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + 1_000;
    for (const [key, until] of this.seen) if (until <= now) this.seen.delete(key);
  }
}
