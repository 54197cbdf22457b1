import { scrapeMetrics } from '../../test/helpers/cluster.js';

/** The audit sync counters: syncs, their seconds, and how many ran on the thread pool. */
export interface AuditSyncTotals { count: number; seconds: number; pool: number }
/** The coalescing histogram (cdsgate_node_call_requests): node calls made and the requests they carried, all models. */
export interface NodeCallTotals { count: number; requests: number }

/**
 * The counters the benchmarks read from a gateway's admin port (summed over
 * its workers by the primary), before and after a measured run, to report
 * what the run cost in audit syncs and node calls: one scrape for both.
 */
export async function gatewayTotals(adminPort: number): Promise<{ auditSyncs: AuditSyncTotals; nodeCalls: NodeCallTotals }> {
  const auditSyncs = { count: 0, seconds: 0, pool: 0 }, nodeCalls = { count: 0, requests: 0 };
  for (const line of (await scrapeMetrics(adminPort)).split('\n')) {
    const sync = /^cdsgate_audit_fsync_seconds_(count|sum)\{placement="(loop|pool)"\} (\S+)$/.exec(line);
    if (sync) {
      const value = Number(sync[3]);
      if (sync[1] === 'sum') auditSyncs.seconds += value;
      else { auditSyncs.count += value; if (sync[2] === 'pool') auditSyncs.pool += value; }
      continue;
    }
    const call = /^cdsgate_node_call_requests_(count|sum)\{[^}]*\} (\S+)$/.exec(line);
    if (call) nodeCalls[call[1] === 'count' ? 'count' : 'requests'] += Number(call[2]);
  }
  return { auditSyncs, nodeCalls };
}
