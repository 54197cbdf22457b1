import { afterEach, describe, expect, it, vi } from 'vitest';
import { NodeHandle, type BreakerState } from '../../src/routing/node-handle.js';
import { SwitchableNode, emptyRequest as request } from '../helpers/switchable-node.js';

const breaker = { timeoutMs: 2_000, errorThresholdPercentage: 50, volumeThreshold: 5, resetTimeoutMs: 5_000, rollingCountTimeoutMs: 10_000 };

describe('a node\'s circuit breaker', () => {
  let handle: NodeHandle | undefined;
  afterEach(() => {
    handle?.shutdown();
    vi.restoreAllMocks();
  });

  it('decides from counts: failures after a long healthy window never sort the window\'s latencies, and it still opens', async () => {
    const client = new SwitchableNode();
    const states: BreakerState[] = [];
    handle = new NodeHandle(client, breaker, (s) => states.push(s));
    const healthy = 2_000;
    for (let i = 0; i < healthy; i++) await handle.infer(request, Date.now() + 1_000, `r${i}`);
    // opossum with rolling percentiles sorted every latency of the window on each failed call (to read its stats),
    // a cost that grows with the node's traffic and is paid on the event loop while the node fails.
    const sorted: number[] = [];
    const sort = Array.prototype.sort;
    vi.spyOn(Array.prototype, 'sort').mockImplementation(function (this: unknown[], compare?: (a: unknown, b: unknown) => number) {
      sorted.push(this.length);
      return sort.call(this, compare);
    });
    client.failing = true;
    let failures = 0;
    while (handle.breakerState === 'closed' && failures < 2 * healthy) {
      await expect(handle.infer(request, Date.now() + 1_000, `f${failures}`)).rejects.toThrow(/unavailable/);
      failures++;
    }
    expect(sorted.filter((n) => n >= 100)).toEqual([]);
    // The counts still decide: more than 50% of the window's calls failed, so the breaker opened then and not before.
    expect(handle.breakerState).toBe('open');
    expect(states).toEqual(['open']);
    expect(failures).toBe(healthy + 1);
    await expect(handle.infer(request, Date.now() + 1_000, 'refused')).rejects.toThrow('node node-0 circuit breaker is open');
  });
});
