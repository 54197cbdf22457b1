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
 * load), and in a fixed order a row always follows the same row and carries
 * the same thing in every round: the medians over rounds keep it as a bias of
 * that row. In six full runs of bench:peers in a fixed order, the main
 * cdsgate row (always right after the Node floor's) was slower at one
 * connection than the same gateway without coalescing (which a lone request
 * bypasses) in every round of four of them, and no A/B of the two
 * configurations alone showed that gap (docs/PERFORMANCE.md).
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

/** A small seeded generator of numbers in [0, 1) (Mulberry32): reproducible orders, no cryptographic use. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
