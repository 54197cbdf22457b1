/**
 * REST inference throughput and latency through the gateway, compared with
 * the same request sent straight to a node's own REST port (what the gateway
 * costs: mTLS termination, JWT verification, policy, a gRPC hop).
 *
 *   npm run bench:rest [-- --runs 3 --seconds 10 --connections 16 --model news2]
 *
 * Runs alternate gateway/direct so each ratio comes from neighbouring runs on
 * the same noisy machine; the report gives every run and the medians.
 * Everything stays on 127.0.0.1 and stops by itself.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { startCluster, ROOT } from '../test/helpers/cluster.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' }, seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' }, model: { type: 'string', default: 'news2' },
  },
});
const runs = Number(values.runs), seconds = Number(values.seconds), connections = Number(values.connections);
const model = values.model!;

const BODIES: Record<string, { roles: string[]; body: unknown }> = {
  news2: { roles: ['clinician'], body: { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24, 93, 1, 105, 115, 0, 38.5] }] } },
  'cxr-loadtest': { roles: ['loadtest'], body: { inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 1, 224, 224], data: new Array(224 * 224).fill(0.5) }] } },
};
const spec = BODIES[model];
if (!spec) throw new Error(`no benchmark body for model ${model}`);

interface Figures { target: string; run: number; requests: number; rps: number; p50: number; p99: number; non2xx: number; errors: number }

async function measure(target: string, run: number, port: number, identity: { cert: string; key: string }, ca: string, token?: string): Promise<Figures> {
  const result = await autocannon({
    url: `https://127.0.0.1:${port}/v2/models/${model}/infer`,
    method: 'POST',
    connections,
    duration: seconds,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(spec!.body),
    tlsOptions: { cert: readFileSync(identity.cert), key: readFileSync(identity.key), ca: readFileSync(ca) },
    servername: 'localhost',
  } as autocannon.Options);
  return {
    target, run,
    requests: result.requests.total,
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };

const cluster = await startCluster({ nodes: 2 });
try {
  const token = await cluster.token(spec.roles, { ttlSeconds: 3600 });
  const figures: Figures[] = [];
  const ratios: number[] = [];
  // Discarded warm-up: the first seconds measure the JIT, not the gateway.
  await measure('warm-up', 0, cluster.gateway.ports.rest!, cluster.pki.apps.ehr, cluster.pki.ca, token);
  await measure('warm-up', 0, cluster.nodes[0]!.ports.rest!, cluster.pki.gatewayClient, cluster.pki.ca);
  for (let run = 1; run <= runs; run++) {
    const viaGateway = await measure('gateway', run, cluster.gateway.ports.rest!, cluster.pki.apps.ehr, cluster.pki.ca, token);
    const direct = await measure('node-direct', run, cluster.nodes[0]!.ports.rest!, cluster.pki.gatewayClient, cluster.pki.ca);
    figures.push(viaGateway, direct);
    ratios.push(viaGateway.rps / direct.rps);
    console.log(`run ${run}: gateway ${viaGateway.rps} req/s (p50 ${viaGateway.p50} ms, p99 ${viaGateway.p99} ms) | node direct ${direct.rps} req/s (p50 ${direct.p50} ms, p99 ${direct.p99} ms)`);
  }
  const summary = (target: string) => {
    const rows = figures.filter((f) => f.target === target);
    return { rps: median(rows.map((r) => r.rps)), p50: median(rows.map((r) => r.p50)), p99: median(rows.map((r) => r.p99)), non2xx: rows.reduce((s, r) => s + r.non2xx, 0), errors: rows.reduce((s, r) => s + r.errors, 0) };
  };
  const report = {
    benchmark: 'rest-infer', model, date: new Date().toISOString(), runs, seconds, connections,
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
    setup: 'gateway + 2 nodes (1 worker, 1 intra-op thread each) + autocannon on one machine, 127.0.0.1, mTLS everywhere',
    medians: { gateway: summary('gateway'), nodeDirect: summary('node-direct'), gatewayToDirectThroughputRatio: Number(median(ratios).toFixed(3)) },
    runsDetail: figures,
  };
  const dir = join(ROOT, 'load-tests', 'reports');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `rest-infer-${model}.json`), JSON.stringify(report, null, 2));
  const g = report.medians.gateway, d = report.medians.nodeDirect;
  const table = [
    `# REST inference benchmark — ${model}`, '',
    `${report.date}; ${runs} runs × ${seconds} s, ${connections} connections; ${report.setup}.`, '',
    '| target | req/s (median) | p50 ms | p99 ms | non-2xx | errors |', '| --- | --- | --- | --- | --- | --- |',
    `| through the gateway | ${g.rps} | ${g.p50} | ${g.p99} | ${g.non2xx} | ${g.errors} |`,
    `| node REST directly | ${d.rps} | ${d.p50} | ${d.p99} | ${d.non2xx} | ${d.errors} |`, '',
    `Gateway/direct throughput ratio (median of per-run ratios): ${report.medians.gatewayToDirectThroughputRatio}`, '',
    'autocannon latencies have 1 ms resolution.', '',
  ].join('\n');
  writeFileSync(join(dir, `rest-infer-${model}.md`), table);
  console.log(`\n${table}`);
} finally {
  await cluster.stop();
}
