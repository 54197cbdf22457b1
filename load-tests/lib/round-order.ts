import { mulberry32 } from '../../src/seeded-random.js';

/**
 * The order in which a benchmark's rows run in one round of interleaved
 * rounds. Rows that every other row is compared with (the node called
 * directly) run first and rows that take their pace from another row's
 * figures in the same round run last; the rows in between run in a different
 * order every round, shuffled with a generator seeded by the round number, so
 * a rerun repeats it.
 *
 * Why: on a shared 2-core machine a run carries something of the run before
 * it (a process that just went idle, the node's state after another proxy's
 * load), and in a fixed order a row follows the same row in every round, so
 * whatever that one leaves behind becomes a bias of the row that more rounds
 * do not remove. (It was suspected of the main cdsgate row's gap to the
 * uncoalescing one at one connection; with the order shuffled the gap
 * stayed, docs/PERFORMANCE.md.)
 */
export interface Placed { place?: 'first' | 'last' }

export function roundOrder<T extends Placed>(rows: readonly T[], round: number): T[] {
  const first = rows.filter((r) => r.place === 'first'), last = rows.filter((r) => r.place === 'last');
  const middle = rows.filter((r) => r.place === undefined);
  // Round 0 (the warm-up) and round 1 keep the listed order.
  if (round > 1) {
    const random = mulberry32(round);
    for (let i = middle.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [middle[i], middle[j]] = [middle[j]!, middle[i]!];
    }
  }
  return [...first, ...middle, ...last];
}
