import { scrapeMetrics } from '../../test/helpers/cluster.js';

/**
 * Counters read from a gateway's admin port (summed over its workers by the
 * primary), before and after a measured run, by the benchmarks that report
 * what the run cost in audit syncs or node calls.
 */

/** The gateway's audit sync counters: syncs, their seconds, and how many ran on the thread pool. */
export async function auditSyncTotals(adminPort: number): Promise<{ count: number; seconds: number; pool: number }> {
  const totals = { count: 0, seconds: 0, pool: 0 };
  for (const line of (await scrapeMetrics(adminPort)).split('\n')) {
    const m = /^cdsgate_audit_fsync_seconds_(count|sum)\{placement="(loop|pool)"\} (\S+)$/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (m[1] === 'sum') totals.seconds += value;
    else { totals.count += value; if (m[2] === 'pool') totals.pool += value; }
  }
  return totals;
}

/** The gateway's coalescing histogram (cdsgate_node_call_requests): node calls made and the requests they carried, all models. */
export async function nodeCallTotals(adminPort: number): Promise<{ count: number; requests: number }> {
  const totals = { count: 0, requests: 0 };
  for (const line of (await scrapeMetrics(adminPort)).split('\n')) {
    const m = /^cdsgate_node_call_requests_(count|sum)\{[^}]*\} (\S+)$/.exec(line);
    if (m) totals[m[1] === 'count' ? 'count' : 'requests'] += Number(m[2]);
  }
  return totals;
}
