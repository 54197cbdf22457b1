/**
 * REST inference throughput and latency through the gateway, compared with
 * the same request sent straight to a node's own REST port (what the gateway
 * costs: mTLS termination, JWT verification, policy, audit, a gRPC hop).
 *
 *   npm run bench:rest [-- --runs 3 --seconds 10 --connections 16 --model news2]
 *
 * Runs alternate gateway/direct so each ratio comes from neighbouring runs on
 * the same noisy machine; the report gives every run and the medians.
 * Everything stays on 127.0.0.1 and stops by itself.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { startCluster } from '../test/helpers/cluster.js';
import { alternatingRuns, median, summarise, writeReport, type Target } from './lib/measure.js';

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

const cluster = await startCluster({ nodes: 2 });
try {
  const token = await cluster.token(spec.roles, { ttlSeconds: 3600 });
  const path = `/v2/models/${model}/infer`;
  const viaGateway: Target = { port: cluster.gateway.ports.rest!, path, identity: cluster.pki.apps.ehr, ca: cluster.pki.ca, token, body: spec.body };
  const direct: Target = { port: cluster.nodes[0]!.ports.rest!, path, identity: cluster.pki.gatewayClient, ca: cluster.pki.ca, body: spec.body };
  const { figures, ratios } = await alternatingRuns({ name: 'gateway', target: viaGateway }, { name: 'node-direct', target: direct }, runs, seconds, connections,
    (run, g, d) => console.log(`run ${run}: gateway ${g.rps} req/s (p50 ${g.p50} ms, p99 ${g.p99} ms) | node direct ${d.rps} req/s (p50 ${d.p50} ms, p99 ${d.p99} ms)`));
  const setup = 'gateway (durable audit) + 2 nodes (1 worker, 1 intra-op thread each) + autocannon on one machine, 127.0.0.1, mTLS everywhere';
  const report = {
    benchmark: 'rest-infer', model, date: new Date().toISOString(), runs, seconds, connections,
    machine: { cpus: cpus().length, node: process.version }, setup,
    medians: { gateway: summarise(figures, 'gateway'), nodeDirect: summarise(figures, 'node-direct'), gatewayToDirectThroughputRatio: Number(median(ratios).toFixed(3)) },
    runsDetail: figures,
  };
  const g = report.medians.gateway, d = report.medians.nodeDirect;
  writeReport(`rest-infer-${model}`, report, [
    `# REST inference benchmark — ${model}`, '',
    `${report.date}; ${runs} runs × ${seconds} s, ${connections} connections; ${setup}.`, '',
    '| target | req/s (median) | p50 ms | p99 ms | non-2xx | errors |', '| --- | --- | --- | --- | --- | --- |',
    `| through the gateway | ${g.rps} | ${g.p50} | ${g.p99} | ${g.non2xx} | ${g.errors} |`,
    `| node REST directly | ${d.rps} | ${d.p50} | ${d.p99} | ${d.non2xx} | ${d.errors} |`, '',
    `Gateway/direct throughput ratio (median of per-run ratios): ${report.medians.gatewayToDirectThroughputRatio}`, '',
    'autocannon latencies have 1 ms resolution.', '',
  ].join('\n'));
} finally {
  await cluster.stop();
}
