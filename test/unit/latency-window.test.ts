import { describe, expect, it } from 'vitest';
import { LatencyWindow } from '../../src/routing/latency-window.js';

describe('latency window (the hedge delay)', () => {
  it('gives no percentile until enough samples are held', () => {
    const w = new LatencyWindow();
    for (let i = 0; i < 19; i++) w.record(5);
    expect(w.percentile(95, 20)).toBeUndefined();
    w.record(5);
    expect(w.percentile(95, 20)).toBe(5);
  });

  it('nearest-rank percentile over the samples held', () => {
    const w = new LatencyWindow();
    for (let i = 1; i <= 100; i++) w.record(i); // shuffled order would give the same
    expect(w.percentile(95, 1)).toBe(95);
    expect(w.percentile(50, 1)).toBe(50);
    expect(w.percentile(99.9, 1)).toBe(100);
  });

  it('forgets old samples: a node pool that got slower moves the p95 up within one window', () => {
    const w = new LatencyWindow();
    for (let i = 0; i < 512; i++) w.record(2);
    expect(w.percentile(95, 1)).toBe(2);
    for (let i = 0; i < 512; i++) w.record(40);
    expect(w.size).toBe(512);
    expect(w.percentile(50, 1)).toBe(40);
  });

  it('a cached percentile is refreshed as samples arrive, not on every read', () => {
    const w = new LatencyWindow();
    for (let i = 0; i < 64; i++) w.record(1);
    expect(w.percentile(95, 1)).toBe(1);
    for (let i = 0; i < 31; i++) w.record(100);
    // 31 new samples: still within one refresh period of the cached value
    expect(w.percentile(95, 1)).toBe(1);
    w.record(100);
    expect(w.percentile(95, 1)).toBe(100);
  });
});
