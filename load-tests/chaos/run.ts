/**
 * Chaos suite: a gateway with three nodes under a steady, bounded REST load
 * (autocannon, client certificates and a token), and one fault at a time:
 *   kill   SIGKILL a node, restart it
 *   hang   SIGSTOP a node (a hung GPU), SIGCONT it
 *   slow   inject a delay on a node (fault-injection endpoint), remove it
 *   drain  SIGTERM a node, restart it
 *   down   SIGKILL every node: every request must still be answered (503) within its deadline
 * For each: requests, non-2xx, errors, p50/p99 before/during/after the fault,
 * time to eject and to rejoin. Writes load-tests/reports/chaos.{json,md,svg}.
 *
 *   npm run chaos [-- --phase-seconds 5 --connections 8 --only kill,hang --hedging --report chaos-hedging]
 *
 * Traffic stays on 127.0.0.1; every phase is bounded in time.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { startCluster, startProcess, stopProcess, type Cluster, type Proc } from '../../test/helpers/cluster.js';
import { median, writeReport } from '../lib/measure.js';
import { latencySvg } from './plot.js';

const { values } = parseArgs({ options: { 'phase-seconds': { type: 'string', default: '5' }, connections: { type: 'string', default: '8' }, only: { type: 'string' }, balancing: { type: 'string', default: 'least-request' }, report: { type: 'string', default: 'chaos' }, hedging: { type: 'boolean', default: false } } });
const phase = Number(values['phase-seconds']) * 1000;
const connections = Number(values.connections);
const only = values.only?.split(',');

interface Sample { t: number; ms: number; status: number | 'error' }
interface ScenarioReport {
  scenario: string; description: string; sent: number; non2xx: number; errors: number;
  before: Window; during: Window; after: Window; ejectMs: number | null; rejoinMs: number | null;
  maxFailureLatencyMs?: number;
  nonOkStatuses?: Array<number | 'error'>;
  failureTimesMs?: number[];
}
interface Window { requests: number; p50: number; p99: number; max: number; over250ms: number; failed: number }

const pct = (xs: number[], p: number) => { if (!xs.length) return 0; const s = [...xs].sort((a, b) => a - b); return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 10) / 10; };
const windowOf = (samples: Sample[], from: number, to: number): Window => {
  const w = samples.filter((s) => s.t >= from && s.t < to);
  return { requests: w.length, p50: pct(w.map((s) => s.ms), 50), p99: pct(w.map((s) => s.ms), 99), max: pct(w.map((s) => s.ms), 100), over250ms: w.filter((s) => s.ms > 250).length, failed: w.filter((s) => s.status !== 200).length };
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function nodeState(cluster: Cluster, node: string): Promise<string> {
  const status = (await fetch(`http://127.0.0.1:${cluster.gateway.ports.admin}/status`).then((r) => r.json())) as { nodes: Array<{ node: string; state: string }> };
  return status.nodes.find((n) => n.node === node)?.state ?? 'unknown';
}

/** Polls the gateway's view of a node and reports how long after `since` it reached `state`. */
function watch(cluster: Cluster, node: string, state: string, since: () => number, limitMs: number): Promise<number | null> {
  return (async () => {
    const end = Date.now() + limitMs;
    while (Date.now() < end) {
      if ((await nodeState(cluster, node)) === state) return Date.now() - since();
      await sleep(25);
    }
    return null;
  })();
}

async function restart(cluster: Cluster, index: number, old: Proc): Promise<void> {
  const config = JSON.parse(readFileSync(join(cluster.dir, `node-${index}.json`), 'utf8'));
  // Same ports: the gateway's connections reconnect.
  config.node.grpc.port = old.ports.grpc;
  config.node.rest.port = old.ports.rest;
  config.node.admin.port = old.ports.admin;
  cluster.nodes[index] = await startProcess('node', config, cluster.dir, `node-${index}-r${Date.now()}`);
}

async function runScenario(cluster: Cluster, token: string, name: string, description: string,
  fault: (marks: { faultAt: number }) => Promise<{ eject?: Promise<number | null> }>,
  heal: () => Promise<{ rejoin?: Promise<number | null> }>): Promise<{ report: ScenarioReport; samples: Sample[] }> {
  const samples: Sample[] = [];
  const t0 = Date.now();
  const instance = (autocannon as unknown as (o: autocannon.Options) => NodeJS.EventEmitter)({
    url: `https://127.0.0.1:${cluster.gateway.ports.rest}/v2/models/news2/infer`,
    method: 'POST', connections, duration: (3 * phase) / 1000,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24, 93, 1, 105, 115, 0, 38.5] }] }),
    tlsOptions: { cert: readFileSync(cluster.pki.apps.ehr.cert), key: readFileSync(cluster.pki.apps.ehr.key), ca: readFileSync(cluster.pki.ca) },
    servername: 'localhost',
  } as autocannon.Options);
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => samples.push({ t: Date.now() - t0, ms: responseTime, status: statusCode }));
  instance.on('reqError', () => samples.push({ t: Date.now() - t0, ms: 0, status: 'error' }));
  const done = new Promise<autocannon.Result>((resolve) => instance.on('done', resolve));

  await sleep(phase);
  const faultAt = Date.now() - t0;
  const { eject } = await fault({ faultAt });
  await sleep(phase - (Date.now() - t0 - faultAt));
  const healAt = Date.now() - t0;
  const { rejoin } = await heal();
  const result = await done;
  const [ejectMs, rejoinMs] = await Promise.all([eject ?? null, rejoin ?? null]);
  const failures = samples.filter((s) => s.status !== 200);
  return {
    samples,
    report: {
      scenario: name, description, sent: result.requests.sent ?? samples.length, non2xx: result.non2xx, errors: result.errors + result.timeouts,
      before: windowOf(samples, 0, faultAt), during: windowOf(samples, faultAt, healAt), after: windowOf(samples, healAt, Infinity),
      ejectMs, rejoinMs,
      nonOkStatuses: [...new Set(failures.map((s) => s.status))],
      failureTimesMs: failures.slice(0, 20).map((s) => s.t),
      ...(name === 'down' ? { maxFailureLatencyMs: Math.max(0, ...failures.map((s) => s.ms)) } : {}),
    },
  };
}

const cluster = await startCluster({
  nodes: 3,
  gatewayPatch: (c) => {
    c.pools.default.healthCheck = { intervalMs: 500, timeoutMs: 400, healthyThreshold: 2 };
    c.pools.default.breaker = { timeoutMs: 1000 };
    c.pools.default.balancing = values.balancing;
    if (values.hedging) c.models.news2.hedging = {};
  },
  nodeConfigPatch: (c) => { c.node.faultInjection = true; },
});
const reports: ScenarioReport[] = [];
const series: Record<string, Sample[]> = {};
try {
  const token = await cluster.token(['clinician'], { ttlSeconds: 3600 });
  const scenarios: Array<[string, string, Parameters<typeof runScenario>[4], Parameters<typeof runScenario>[5]]> = [];
  let faultWall = 0;
  const since = () => faultWall;
  let healWall = 0;
  const sinceHeal = () => healWall;
  /** Heals kill and drain alike: node-0 back on its old ports, timed until it is in rotation again. */
  const restartNode0 = async () => {
    const old = cluster.nodes[0]!;
    healWall = Date.now();
    await restart(cluster, 0, old);
    return { rejoin: watch(cluster, 'node-0', 'ready', sinceHeal, 2 * phase) };
  };
  scenarios.push(['kill', 'node-0 killed with SIGKILL, restarted', async () => {
    faultWall = Date.now();
    await stopProcess(cluster.nodes[0]!, 'SIGKILL');
    return { eject: watch(cluster, 'node-0', 'ejected', since, phase) };
  }, restartNode0]);
  scenarios.push(['hang', 'node-1 stopped with SIGSTOP (hung GPU), resumed with SIGCONT', async () => {
    faultWall = Date.now();
    cluster.nodes[1]!.child.kill('SIGSTOP');
    return { eject: watch(cluster, 'node-1', 'ejected', since, phase) };
  }, async () => {
    healWall = Date.now();
    cluster.nodes[1]!.child.kill('SIGCONT');
    return { rejoin: watch(cluster, 'node-1', 'ready', sinceHeal, 2 * phase) };
  }]);
  scenarios.push(['slow', 'node-2 slowed by 300 ms per inference (fault injection), then restored', async () => {
    faultWall = Date.now();
    await fetch(`http://127.0.0.1:${cluster.nodes[2]!.ports.admin}/fault?delayMs=300`, { method: 'POST' });
    return {};
  }, async () => {
    await fetch(`http://127.0.0.1:${cluster.nodes[2]!.ports.admin}/fault?delayMs=0`, { method: 'POST' });
    return {};
  }]);
  let drained: Promise<void> = Promise.resolve();
  scenarios.push(['drain', 'node-0 drained with SIGTERM, restarted', async () => {
    faultWall = Date.now();
    drained = stopProcess(cluster.nodes[0]!, 'SIGTERM'); // the watch starts now, not when the process has exited
    return { eject: watch(cluster, 'node-0', 'ejected', since, phase) };
  }, async () => {
    await drained;
    return restartNode0();
  }]);
  scenarios.push(['down', 'all three nodes killed: every request must be answered 503 within its deadline', async () => {
    faultWall = Date.now();
    await Promise.all(cluster.nodes.map((n) => stopProcess(n, 'SIGKILL')));
    return {};
  }, async () => {
    const olds = [...cluster.nodes];
    healWall = Date.now();
    for (const [i, old] of olds.entries()) await restart(cluster, i, old);
    return { rejoin: watch(cluster, 'node-2', 'ready', sinceHeal, 2 * phase) };
  }]);

  for (const [name, description, fault, heal] of scenarios) {
    if (only && !only.includes(name)) continue;
    const { report, samples } = await runScenario(cluster, token, name, description, fault, heal);
    reports.push(report);
    series[name] = samples;
    console.log(`${name}: failures ${JSON.stringify(report.nonOkStatuses)} at ${JSON.stringify(report.failureTimesMs)} ms; sent ${report.sent}, non-2xx ${report.non2xx}, errors ${report.errors}, p99 before/during/after ${report.before.p99}/${report.during.p99}/${report.after.p99} ms, eject ${report.ejectMs ?? '–'} ms, rejoin ${report.rejoinMs ?? '–'} ms`);
    await sleep(1500); // let the pool settle between scenarios
  }
} finally {
  await cluster.stop();
}

const targets = reports.map((r) => {
  const checks: string[] = [];
  if (['kill', 'drain'].includes(r.scenario)) checks.push(r.non2xx + r.errors === 0 ? '0 failed ✓' : `${r.non2xx + r.errors} failed ✗`);
  if (r.scenario === 'hang') checks.push(r.ejectMs !== null && r.ejectMs < 2000 ? `ejected in ${r.ejectMs} ms ✓` : `ejected in ${r.ejectMs ?? 'never'} ms ✗`, r.non2xx + r.errors === 0 ? '0 failed ✓' : `${r.non2xx + r.errors} failed`);
  if (r.scenario !== 'down') checks.push(r.during.p99 <= 3 * Math.max(r.before.p99, 1) ? `p99 during ≤ 3× before ✓` : `p99 during ${r.during.p99} > 3× ${r.before.p99} ✗`);
  if (r.scenario === 'down') {
    const ok = r.errors === 0 && (r.nonOkStatuses ?? []).every((s) => s === 503) && (r.maxFailureLatencyMs ?? 0) < 10_000;
    checks.push(ok ? `every failure a 503, slowest ${r.maxFailureLatencyMs} ms (deadline 10 s), no transport errors ✓` : `statuses ${JSON.stringify(r.nonOkStatuses)}, slowest ${r.maxFailureLatencyMs} ms, errors ${r.errors} ✗`);
  }
  return { scenario: r.scenario, checks };
});
const md = [
  '# Chaos suite', '',
  `${new Date().toISOString()}; balancing ${values.balancing}; hedging ${values.hedging ? 'on (news2, p95)' : 'off'}; gateway + 3 nodes on 127.0.0.1, autocannon ${connections} connections, phases of ${phase / 1000} s (before / during the fault / after healing). Latencies in ms (autocannon, 1 ms resolution).`, '',
  '| scenario | sent | non-2xx | errors | p50 before | p99 before | p50 during | p99 during | max during | > 250 ms during | p50 after | p99 after | eject ms | rejoin ms |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...reports.map((r) => `| ${r.scenario} | ${r.sent} | ${r.non2xx} | ${r.errors} | ${r.before.p50} | ${r.before.p99} | ${r.during.p50} | ${r.during.p99} | ${r.during.max} | ${r.during.over250ms} | ${r.after.p50} | ${r.after.p99} | ${r.ejectMs ?? '–'} | ${r.rejoinMs ?? '–'} |`),
  '', '## Targets', '', ...targets.map((t) => `- **${t.scenario}**: ${t.checks.join('; ')}`), '',
  ...reports.map((r) => `- ${r.scenario}: ${r.description}`), '',
  `Plot: ${values.report}.svg (latency of every request over time, failures in red).`, '',
];
writeReport(values.report!, { date: new Date().toISOString(), balancing: values.balancing, phaseMs: phase, connections, reports, targets, medianP99Before: median(reports.map((r) => r.before.p99)) }, md.join('\n'));
const { writeFileSync } = await import('node:fs');
writeFileSync(join(import.meta.dirname, '..', 'reports', `${values.report}.svg`), latencySvg(series, phase));
