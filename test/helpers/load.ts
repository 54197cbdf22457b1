import { httpsCall, type Cluster } from './cluster.js';

export interface LoadResult { sent: number; ok: number; failed: Array<{ status: number | string; body: string }>; latencies: number[] }

/**
 * A steady, bounded REST load: `workers` loops of sequential requests until
 * stop() is called or `maxRequests` is reached. Counts every non-2xx and
 * every transport error as a failure.
 */
export function startLoad(cluster: Cluster, token: string, o: { workers?: number; maxRequests?: number; port?: number } = {}) {
  const result: LoadResult = { sent: 0, ok: 0, failed: [], latencies: [] };
  let stopped = false;
  const body = { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24, 93, 1, 105, 115, 0, 38.5] }] };
  const worker = async () => {
    while (!stopped && result.sent < (o.maxRequests ?? 20_000)) {
      result.sent++;
      const started = performance.now();
      try {
        const res = await httpsCall(o.port ?? cluster.gateway.ports.rest!, '/v2/models/news2/infer', { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token, body });
        if (res.status === 200) result.ok++;
        else result.failed.push({ status: res.status, body: res.body });
      } catch (err) {
        result.failed.push({ status: 'error', body: (err as Error).message });
      }
      result.latencies.push(performance.now() - started);
    }
  };
  const running = Promise.all(Array.from({ length: o.workers ?? 4 }, worker));
  return {
    result,
    async stop(): Promise<LoadResult> {
      stopped = true;
      await running;
      return result;
    },
  };
}
