/**
 * What hedging buys and what it costs: two gateways in front of the same three
 * nodes, one without hedging (the default) and one with news2 hedged at the
 * pool's recent p95, measured in alternating runs under the same fault:
 *   none       no fault: the cost of hedging when nothing is wrong
 *   stalls     every node stalls now and then (3% of inferences wait 100 ms):
 *              the tail that balancing cannot predict, which hedging is for
 *   slow-node  one node slow on every inference (300 ms): balancing already
 *              avoids it; hedging must not make it worse
 * For each: req/s, p50, p99, node calls and model runs per request (the
 * extra load hedging adds), hedges won and lost. Writes
 * load-tests/reports/hedging.{json,md}.
 *
 *   npm run bench:hedging [-- --runs 3 --seconds 6 --connections 8 --only stalls]
 *   npm run bench:hedging -- --control   both gateways without hedging (A/A):
 *                                        how far two identical gateways differ here
 *
 * Traffic stays on 127.0.0.1; every run is bounded in time.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { scrapeMetrics, startCluster, startProcess, stopProcess, type Cluster } from '../test/helpers/cluster.js';
import { alternatingRuns, median, summarise, writeReport, type Figures, type Target } from './lib/measure.js';
import { NEWS2_REST_BODY } from './lib/news2-request.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, seconds: { type: 'string', default: '6' }, connections: { type: 'string', default: '8' }, only: { type: 'string' }, control: { type: 'boolean', default: false } } });
const runs = Number(values.runs), seconds = Number(values.seconds), connections = Number(values.connections);
const only = values.only?.split(',');

const scenarios: Array<{ name: string; description: string; faults: Array<{ node: number; delayMs: number; probability: number }> }> = [
  { name: 'none', description: 'no fault', faults: [] },
  { name: 'stalls', description: 'every node: 3% of inferences stall 100 ms', faults: [0, 1, 2].map((node) => ({ node, delayMs: 100, probability: 0.03 })) },
  { name: 'slow-node', description: 'node-2: every inference 300 ms slower', faults: [{ node: 2, delayMs: 300, probability: 1 }] },
];

/** Sum of a counter's samples whose labels include every `labels` pair. */
const total = (text: string, name: string, labels: string[]): number => text.split('\n')
  .filter((l) => l.startsWith(`${name}{`) && labels.every((kv) => l.includes(kv)))
  .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);

interface Counters { nodeCalls: number; modelRuns: number; won: number; lost: number }
async function counters(cluster: Cluster, gatewayAdmin: number): Promise<Counters> {
  const nodes = await Promise.all(cluster.nodes.map((n) => scrapeMetrics(n.ports.admin!)));
  const gateway = await scrapeMetrics(gatewayAdmin);
  return {
    nodeCalls: nodes.reduce((s, t) => s + total(t, 'cdsgate_node_inference_requests_total', ['model="news2"']), 0),
    modelRuns: nodes.reduce((s, t) => s + total(t, 'cdsgate_node_inference_requests_total', ['model="news2"', 'outcome="ok"']), 0),
    won: total(gateway, 'cdsgate_hedges_total', ['model="news2"', 'outcome="won"']),
    lost: total(gateway, 'cdsgate_hedges_total', ['model="news2"', 'outcome="lost"']),
  };
}

interface RunCost { target: string; requests: number; nodeCallsPerRequest: number; modelRunsPerRequest: number; hedgesWon: number; hedgesLost: number }

const cluster = await startCluster({ nodes: 3, nodeConfigPatch: (c) => { c.node.faultInjection = true; } });
const config = JSON.parse(readFileSync(join(cluster.dir, 'gateway.json'), 'utf8'));
config.audit = { ...config.audit, dir: join(cluster.dir, 'audit-hedged') };
if (!values.control) config.models.news2.hedging = {};
const hedgedGateway = await startProcess('gateway', config, cluster.dir, 'gateway-hedged');
const admins: Record<string, number> = { 'hedging-off': cluster.gateway.ports.admin!, 'hedging-on': hedgedGateway.ports.admin! };
const results: Array<{ scenario: string; description: string; off: ReturnType<typeof summarise>; on: ReturnType<typeof summarise>; p99OnToOff: number; rpsOnToOff: number; cost: { off: RunCost[]; on: RunCost[] }; figures: Figures[] }> = [];
try {
  const token = await cluster.token(['clinician'], { ttlSeconds: 3600 });
  const body = NEWS2_REST_BODY;
  const target = (port: number): Target => ({ port, path: '/v2/models/news2/infer', identity: cluster.pki.apps.ehr, ca: cluster.pki.ca, token, body });
  const setFault = (node: number, delayMs: number, probability: number) =>
    fetch(`http://127.0.0.1:${cluster.nodes[node]!.ports.admin}/fault?delayMs=${delayMs}&probability=${probability}`, { method: 'POST' });

  for (const scenario of scenarios) {
    if (only && !only.includes(scenario.name)) continue;
    for (const f of scenario.faults) await setFault(f.node, f.delayMs, f.probability);
    const costs: RunCost[] = [];
    const { figures } = await alternatingRuns(
      { name: 'hedging-off', target: target(cluster.gateway.ports.rest!) }, { name: 'hedging-on', target: target(hedgedGateway.ports.rest!) },
      runs, seconds, connections,
      (run, off, on) => console.log(`${scenario.name} run ${run}: off ${off.rps} req/s p50 ${off.p50} p99 ${off.p99} ms | on ${on.rps} req/s p50 ${on.p50} p99 ${on.p99} ms`),
      async (name, measureRun) => {
        const before = await counters(cluster, admins[name]!);
        const figures = await measureRun();
        const after = await counters(cluster, admins[name]!);
        const requests = figures.requests;
        costs.push({
          target: name, requests,
          nodeCallsPerRequest: Number(((after.nodeCalls - before.nodeCalls) / requests).toFixed(3)),
          modelRunsPerRequest: Number(((after.modelRuns - before.modelRuns) / requests).toFixed(3)),
          hedgesWon: after.won - before.won, hedgesLost: after.lost - before.lost,
        });
        return figures;
      },
    );
    for (const f of scenario.faults) await setFault(f.node, 0, 1);
    const byRun = (t: string) => figures.filter((f) => f.target === t).sort((a, b) => a.run - b.run);
    const [offRuns, onRuns] = [byRun('hedging-off'), byRun('hedging-on')];
    results.push({
      scenario: scenario.name, description: scenario.description,
      off: summarise(figures, 'hedging-off'), on: summarise(figures, 'hedging-on'),
      // Ratios within each run pair, then the median: neighbouring runs share the machine's mood.
      p99OnToOff: Number(median(onRuns.map((f, i) => f.p99 / Math.max(1, offRuns[i]!.p99))).toFixed(3)),
      rpsOnToOff: Number(median(onRuns.map((f, i) => f.rps / offRuns[i]!.rps)).toFixed(3)),
      cost: { off: costs.filter((c) => c.target === 'hedging-off'), on: costs.filter((c) => c.target === 'hedging-on') },
      figures,
    });
  }
} finally {
  await stopProcess(hedgedGateway);
  await cluster.stop();
}

const med = (rows: RunCost[], key: 'nodeCallsPerRequest' | 'modelRunsPerRequest') => Number(median(rows.map((r) => r[key])).toFixed(3));
const sum = (rows: RunCost[], key: 'hedgesWon' | 'hedgesLost') => rows.reduce((s, r) => s + r[key], 0);
const report = { benchmark: values.control ? 'hedging-control' : 'hedging', date: new Date().toISOString(), runs, seconds, connections, machine: { cpus: cpus().length, node: process.version }, hedging: { percentile: 95, minDelayMs: 2, minSamples: 20 }, results };
writeReport(values.control ? 'hedging-control' : 'hedging', report, [
  `# Hedging (news2 over REST, 3 nodes, least-request balancing)${values.control ? ' — CONTROL: "on" is a second gateway without hedging' : ''}`, '',
  `${report.date}; per scenario ${runs} alternating runs × ${seconds} s, ${connections} connections; two gateways over the same three nodes (one hedging news2 at the pool's recent p95, one not), one machine, 127.0.0.1. Medians of runs; ratios are medians of per-run-pair ratios.`, '',
  '| scenario | hedging | req/s | p50 ms | p99 ms | node calls / request | model runs / request | hedges won / lost | failed |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...results.flatMap((r) => [
    `| ${r.scenario}: ${r.description} | off | ${r.off.rps} | ${r.off.p50} | ${r.off.p99} | ${med(r.cost.off, 'nodeCallsPerRequest')} | ${med(r.cost.off, 'modelRunsPerRequest')} | – | ${r.off.non2xx + r.off.errors} |`,
    `| | on | ${r.on.rps} | ${r.on.p50} | ${r.on.p99} | ${med(r.cost.on, 'nodeCallsPerRequest')} | ${med(r.cost.on, 'modelRunsPerRequest')} | ${sum(r.cost.on, 'hedgesWon')} / ${sum(r.cost.on, 'hedgesLost')} | ${r.on.non2xx + r.on.errors} |`,
  ]),
  '', '| scenario | p99 on/off | req/s on/off |', '| --- | --- | --- |',
  ...results.map((r) => `| ${r.scenario} | ${r.p99OnToOff} | ${r.rpsOnToOff} |`), '',
  'Node calls count every copy a node received; model runs only those it ran (a cancelled copy still waiting is dropped).', '',
].join('\n'));
