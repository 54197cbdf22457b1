/**
 * What durable audit costs: two gateways in front of the same two nodes, one
 * with fdatasync per audit batch (the default) and one without, measured in
 * alternating runs so both see the same machine.
 *
 *   npm run bench:audit [-- --runs 3 --seconds 8 --connections 16]
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { startCluster, startProcess, stopProcess } from '../test/helpers/cluster.js';
import { alternatingRuns, median, summarise, writeReport, type Target } from './lib/measure.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, seconds: { type: 'string', default: '8' }, connections: { type: 'string', default: '16' } } });
const runs = Number(values.runs), seconds = Number(values.seconds), connections = Number(values.connections);

const cluster = await startCluster({ nodes: 2 });
const config = JSON.parse(readFileSync(join(cluster.dir, 'gateway.json'), 'utf8'));
config.audit = { ...config.audit, dir: join(cluster.dir, 'audit-nofsync'), fsync: false };
const noFsync = await startProcess('gateway', config, cluster.dir, 'gateway-nofsync');
try {
  const token = await cluster.token(['clinician'], { ttlSeconds: 3600 });
  const body = { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24, 93, 1, 105, 115, 0, 38.5] }] };
  const target = (port: number): Target => ({ port, path: '/v2/models/news2/infer', identity: cluster.pki.apps.ehr, ca: cluster.pki.ca, token, body });
  const durable = target(cluster.gateway.ports.rest!), volatile = target(noFsync.ports.rest!);
  const { figures, ratios } = await alternatingRuns({ name: 'fsync-on', target: durable }, { name: 'fsync-off', target: volatile }, runs, seconds, connections,
    (run, on, off) => console.log(`run ${run}: durable ${on.rps} req/s (p99 ${on.p99} ms) | no fsync ${off.rps} req/s (p99 ${off.p99} ms)`));
  const on = summarise(figures, 'fsync-on'), off = summarise(figures, 'fsync-off');
  const report = { benchmark: 'audit-cost', date: new Date().toISOString(), runs, seconds, connections, machine: { cpus: cpus().length, node: process.version }, medians: { durable: on, noFsync: off, durableToNoFsyncRatio: Number(median(ratios).toFixed(3)) }, runsDetail: figures };
  writeReport('audit-cost', report, [
    '# Audit durability cost (news2 over REST)', '',
    `${report.date}; ${runs} alternating runs × ${seconds} s, ${connections} connections; two gateways over the same two nodes, one machine, 127.0.0.1.`, '',
    '| audit | req/s (median) | p50 ms | p99 ms | non-2xx | errors |', '| --- | --- | --- | --- | --- | --- |',
    `| durable: fdatasync per batch before answering | ${on.rps} | ${on.p50} | ${on.p99} | ${on.non2xx} | ${on.errors} |`,
    `| written, not fsynced | ${off.rps} | ${off.p50} | ${off.p99} | ${off.non2xx} | ${off.errors} |`, '',
    `Durable/no-fsync throughput ratio (median of per-run ratios): ${report.medians.durableToNoFsyncRatio}`, '',
  ].join('\n'));
} finally {
  await stopProcess(noFsync);
  await cluster.stop();
}
