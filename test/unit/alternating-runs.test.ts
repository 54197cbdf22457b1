import { describe, expect, it } from 'vitest';
import { alternatingRuns, type Figures } from '../../load-tests/lib/measure.js';

/** A run's figures whose req/s says which target and round it was. */
const figures = (name: string, run: number, rps: number): Figures => ({ target: name, run, requests: rps, rps, p50: 1, p99: 2, non2xx: 0, errors: 0 });

describe('alternatingRuns (the A/B benchmarks\' rounds)', () => {
  it('alternates which target goes first, round by round, after one warm-up of each', async () => {
    const order: string[] = [];
    await alternatingRuns({ name: 'a', target: 'A' }, { name: 'b', target: 'B' }, 4, 1, 1, () => undefined, undefined,
      async (name, run, target) => {
        order.push(`${name}${run}:${target}`);
        return figures(name, run, 100);
      });
    expect(order).toEqual(['warm-up0:A', 'warm-up0:B', 'a1:A', 'b1:B', 'b2:B', 'a2:A', 'a3:A', 'b3:B', 'b4:B', 'a4:A']);
  });

  it('pairs each round\'s figures as (a, b) whichever ran first, and gives a ÷ b per round', async () => {
    const rounds: Array<[number, string, string]> = [];
    const { figures: all, ratios } = await alternatingRuns({ name: 'a', target: 'A' }, { name: 'b', target: 'B' }, 3, 1, 1,
      (run, fa, fb) => rounds.push([run, fa.target, fb.target]), undefined,
      async (name, run) => figures(name, run, name === 'a' ? 200 * run : 100 * run));
    expect(rounds).toEqual([[1, 'a', 'b'], [2, 'a', 'b'], [3, 'a', 'b']]);
    expect(ratios).toEqual([2, 2, 2]);
    expect(all.map((f) => `${f.target}${f.run}`)).toEqual(['a1', 'b1', 'a2', 'b2', 'a3', 'b3']);
  });
});
