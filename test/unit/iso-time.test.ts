import { afterEach, describe, expect, it, vi } from 'vitest';
import { isoNow } from '../../src/iso-time.js';

describe('isoNow', () => {
  afterEach(() => vi.useRealTimers());

  it('is the current time in ISO 8601, made again whenever the millisecond changes', () => {
    vi.useFakeTimers();
    const start = Date.UTC(2026, 11, 31, 23, 59, 59, 998);
    vi.setSystemTime(start);
    expect(isoNow()).toBe('2026-12-31T23:59:59.998Z');
    expect(isoNow()).toBe('2026-12-31T23:59:59.998Z');
    vi.setSystemTime(start + 1);
    expect(isoNow()).toBe('2026-12-31T23:59:59.999Z');
    vi.setSystemTime(start + 2);
    expect(isoNow()).toBe('2027-01-01T00:00:00.000Z');
    // A clock set back is followed too, not only one that moves forward.
    vi.setSystemTime(start);
    expect(isoNow()).toBe('2026-12-31T23:59:59.998Z');
  });

  it('agrees with Date over many real readings', () => {
    for (let i = 0; i < 2_000; i++) {
      const before = Date.now();
      const iso = Date.parse(isoNow());
      const after = Date.now();
      expect(iso).toBeGreaterThanOrEqual(before);
      expect(iso).toBeLessThanOrEqual(after);
    }
  });
});
