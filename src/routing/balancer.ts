import type { NodeHandle } from './node-handle.js';
import type { Pool } from './pool.js';

/** How fast a node's latency record fades without new samples. */
export const LATENCY_HALF_LIFE_MS = 2_000;

/**
 * least-request: the lowest (requests in flight + 1) × latency, where
 * latency is the recent record or the age of the oldest call still in
 * flight, whichever is larger, so a slow or hung node gets less, and ties
 * (common at low load) rotate so no node idles; round-robin: the next ready
 * node in turn. Nodes in `exclude` (already tried) are skipped.
 */
export function pickNode(pool: Pool, model: string, exclude: ReadonlySet<string>): NodeHandle | undefined {
  const n = pool.members.length;
  const start = pool.nextStart++ % n;
  const roundRobin = pool.config.balancing === 'round-robin';
  let best: NodeHandle | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const node = pool.members[(start + i) % n]!;
    if (exclude.has(node.id) || !node.canServe(model)) continue;
    if (roundRobin) return node;
    // A node still owing an old answer is at least that slow, whatever its record says.
    const latency = Math.max(1, node.recentLatency(LATENCY_HALF_LIFE_MS), node.oldestInFlightMs());
    const score = (node.inFlight + 1) * latency;
    if (score < bestScore) {
      best = node;
      bestScore = score;
    }
  }
  return best;
}
