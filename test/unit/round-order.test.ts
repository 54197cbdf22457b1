import { describe, expect, it } from 'vitest';
import { roundOrder, type Placed } from '../../load-tests/lib/round-order.js';

interface Row extends Placed { name: string }
const rows: Row[] = [
  { name: 'node', place: 'first' }, { name: 'haproxy' }, { name: 'haproxy-log' }, { name: 'floor' },
  { name: 'cdsgate' }, { name: 'uncoalesced' }, { name: 'nofsync' }, { name: 'paced', place: 'last' }, { name: 'workers' },
];
const names = (round: number) => roundOrder(rows, round).map((r) => r.name);

describe('roundOrder (bench:peers\' order of rows in a round)', () => {
  it('keeps the listed order for the warm-up and the first round, with first and last rows moved to their ends', () => {
    const listed = ['node', 'haproxy', 'haproxy-log', 'floor', 'cdsgate', 'uncoalesced', 'nofsync', 'workers', 'paced'];
    expect(names(0)).toEqual(listed);
    expect(names(1)).toEqual(listed);
  });

  it('runs every row once per round, the compared-with row first and the paced row last', () => {
    for (let round = 0; round < 50; round++) {
      const order = names(round);
      expect([...order].sort()).toEqual(rows.map((r) => r.name).sort());
      expect(order[0]).toBe('node');
      expect(order.at(-1)).toBe('paced');
    }
  });

  it('changes the order from round to round, and a rerun repeats it', () => {
    const orders = Array.from({ length: 6 }, (_, i) => names(i + 2).join());
    expect(new Set(orders).size).toBeGreaterThan(1);
    expect(Array.from({ length: 6 }, (_, i) => names(i + 2).join())).toEqual(orders);
    // What ran just before the main cdsgate row is not always the same row.
    const before = new Set(Array.from({ length: 6 }, (_, i) => { const o = names(i + 2); return o[o.indexOf('cdsgate') - 1]; }));
    expect(before.size).toBeGreaterThan(1);
  });
});
