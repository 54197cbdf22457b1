/**
 * What durable audit costs: two gateways in front of the same two nodes, one
 * with fdatasync per audit batch (the default) and one without, measured in
 * alternating runs so both see the same machine.
 *
 * First, the audit log alone: the latency of one append at a time (what a
 * request on an otherwise idle gateway waits for), with and without fsync.
 *
 *   npm run bench:audit [-- --runs 3 --seconds 8 --connections 16]
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../src/audit/log.js';
import type { AuditEntry } from '../src/audit/record.js';
import type { Logger } from '../src/phi/logger.js';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { startCluster, startProcess, stopProcess } from '../test/helpers/cluster.js';
import { alternatingRuns, median, summarise, writeReport, type Target } from './lib/measure.js';
import { NEWS2_REST_BODY } from './lib/news2-request.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, seconds: { type: 'string', default: '8' }, connections: { type: 'string', default: '16' } } });
const runs = Number(values.runs), seconds = Number(values.seconds), connections = Number(values.connections);

/** Voluntary context switches of this thread so far (Linux); undefined where /proc does not say. */
function sleepsSoFar(): number | undefined {
  try {
    const m = /\nvoluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync('/proc/thread-self/status', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One append at a time (what a request on an otherwise idle gateway waits for), median of `runs` runs of 500:
 * wall µs, CPU µs of this process, and how often the thread slept (voluntary context switches). A sync costs more
 * than its own CPU: each sleep is a wake-up later, with the thread's caches cold (docs/PERFORMANCE.md).
 */
async function appendCost(fsync: boolean): Promise<{ wallUs: number; cpuUs: number; sleeps: number | undefined }> {
  const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child() { return quiet; } } as unknown as Logger;
  const wall: number[] = [], cpu: number[] = [], sleeps: number[] = [];
  const appends = 500;
  for (let run = 0; run < runs; run++) {
    const log = await AuditLog.open({ dir: mkdtempSync(join(tmpdir(), 'cdsgate-audit-bench-')), signingKey: generateKeyPairSync('ed25519').privateKey, gateway: 'bench', checkpointIntervalMs: 60_000, rotateBytes: 1 << 30, rotateDaily: false, fsync, log: quiet });
    const entry = { type: 'request', requestId: randomUUID(), door: 'rest', route: 'infer', status: 'ok', request: { view: 'x'.repeat(600) } } as unknown as AuditEntry;
    const sleeps0 = sleepsSoFar(), cpu0 = process.cpuUsage(), started = process.hrtime.bigint();
    for (let i = 0; i < appends; i++) await log.append(entry);
    wall.push(Number(process.hrtime.bigint() - started) / 1000 / appends);
    const used = process.cpuUsage(cpu0), sleeps1 = sleepsSoFar();
    cpu.push((used.user + used.system) / appends);
    if (sleeps0 !== undefined && sleeps1 !== undefined) sleeps.push((sleeps1 - sleeps0) / appends);
    await log.close();
  }
  return { wallUs: Math.round(median(wall)), cpuUs: Math.round(median(cpu)), sleeps: sleeps.length ? Number(median(sleeps).toFixed(2)) : undefined };
}
const appendCosts = { fsync: await appendCost(true), noFsync: await appendCost(false) };
const sleepText = (c: { sleeps: number | undefined }) => (c.sleeps === undefined ? '' : `, ${c.sleeps} sleeps`);
console.log(`one append at a time: ${appendCosts.fsync.wallUs} µs (CPU ${appendCosts.fsync.cpuUs} µs${sleepText(appendCosts.fsync)}) with fdatasync, ${appendCosts.noFsync.wallUs} µs (CPU ${appendCosts.noFsync.cpuUs} µs${sleepText(appendCosts.noFsync)}) without`);

const cluster = await startCluster({ nodes: 2 });
const config = JSON.parse(readFileSync(join(cluster.dir, 'gateway.json'), 'utf8'));
config.audit = { ...config.audit, dir: join(cluster.dir, 'audit-nofsync'), fsync: false };
const noFsync = await startProcess('gateway', config, cluster.dir, 'gateway-nofsync');
try {
  const token = await cluster.token(['clinician'], { ttlSeconds: 3600 });
  const body = NEWS2_REST_BODY;
  const target = (port: number): Target => ({ port, path: '/v2/models/news2/infer', identity: cluster.pki.apps.ehr, ca: cluster.pki.ca, token, body });
  const durable = target(cluster.gateway.ports.rest!), volatile = target(noFsync.ports.rest!);
  const { figures, ratios } = await alternatingRuns({ name: 'fsync-on', target: durable }, { name: 'fsync-off', target: volatile }, runs, seconds, connections,
    (run, on, off) => console.log(`run ${run}: durable ${on.rps} req/s (p99 ${on.p99} ms) | no fsync ${off.rps} req/s (p99 ${off.p99} ms)`));
  const on = summarise(figures, 'fsync-on'), off = summarise(figures, 'fsync-off');
  const report = { benchmark: 'audit-cost', date: new Date().toISOString(), runs, seconds, connections, machine: { cpus: cpus().length, node: process.version }, medians: { durable: on, noFsync: off, durableToNoFsyncRatio: Number(median(ratios).toFixed(3)) }, appendCosts, runsDetail: figures };
  writeReport('audit-cost', report, [
    '# Audit durability cost (news2 over REST)', '',
    `${report.date}; ${runs} alternating runs × ${seconds} s, ${connections} connections; two gateways over the same two nodes, one machine, 127.0.0.1.`, '',
    '| audit | req/s (median) | p50 ms | p99 ms | non-2xx | errors |', '| --- | --- | --- | --- | --- | --- |',
    `| durable: fdatasync per batch before answering | ${on.rps} | ${on.p50} | ${on.p99} | ${on.non2xx} | ${on.errors} |`,
    `| written, not fsynced | ${off.rps} | ${off.p50} | ${off.p99} | ${off.non2xx} | ${off.errors} |`, '',
    `Durable/no-fsync throughput ratio (median of per-run ratios): ${report.medians.durableToNoFsyncRatio}`, '',
    `The audit log alone, one append at a time (median of ${runs} × 500): what durability adds to a request on an otherwise idle gateway; under load one fdatasync covers the whole batch. `
      + "Sleeps are the thread's voluntary context switches per append: a sync waits for the disk more than once (on ext4 here: the data, the journal commit for a file that grew, the cache flush), and the thread resumes each time with its caches cold.", '',
    '| audit | wall µs per append | CPU µs per append | sleeps per append |', '| --- | --- | --- | --- |',
    `| fdatasync | ${appendCosts.fsync.wallUs} | ${appendCosts.fsync.cpuUs} | ${appendCosts.fsync.sleeps ?? '–'} |`,
    `| no fsync | ${appendCosts.noFsync.wallUs} | ${appendCosts.noFsync.cpuUs} | ${appendCosts.noFsync.sleeps ?? '–'} |`, '',
  ].join('\n'));
} finally {
  await stopProcess(noFsync);
  await cluster.stop();
}
