/**
 * The mutation fuzzer, longer than the bounded run in `npm test`, with fresh
 * seeds: seeded, property-based mutation of valid REST and gRPC requests
 * carrying canary identifiers, against a real gateway and two nodes.
 *
 *   npm run fuzz [-- --seeds 3 --runs 1500 --seed 42]
 *
 * Writes load-tests/reports/fuzz.{json,md} and exits non-zero on any
 * violation (a 5xx/INTERNAL, an error outside the documented form, a canary
 * in a log, metric or audit record) or if the audit chain does not verify.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runCliAsync, startCluster } from '../test/helpers/cluster.js';
import { runFuzz, type FuzzReport } from '../test/helpers/fuzz.js';
import { writeReport } from './lib/measure.js';

const { values } = parseArgs({ options: { seeds: { type: 'string', default: '3' }, runs: { type: 'string', default: '1500' }, seed: { type: 'string' } } });
const first = values.seed !== undefined ? Number(values.seed) : Date.now() % 1_000_000;
const seeds = Array.from({ length: Number(values.seeds) }, (_, i) => first + i);
const runs = Number(values.runs);

const cluster = await startCluster({ nodes: 2 });
const reports: FuzzReport[] = [];
let verified = false;
try {
  for (const seed of seeds) {
    const r = await runFuzz(cluster, { seed, restRuns: runs, grpcRuns: runs });
    reports.push(r);
    console.log(`seed ${seed}: ${runs} REST + ${runs} gRPC; violations ${r.violations.length}, canary leaks ${r.canaryLeaks.length}; gateway RSS ${r.gatewayRssMb.before.toFixed(0)} → max ${r.gatewayRssMb.max.toFixed(0)} → ${r.gatewayRssMb.after.toFixed(0)} MB (heap in use ${r.gatewayHeapUsedMbAfter.toFixed(0)} MB)`);
    for (const v of [...r.violations, ...r.canaryLeaks].slice(0, 20)) console.log(`  ${v}`);
  }
  const verify = await runCliAsync(['audit', 'verify', '--public-key', cluster.secrets.auditPublicKey, join(cluster.dir, 'audit')]);
  verified = verify.code === 0;
  console.log(verified ? 'audit chain verifies' : `audit chain does NOT verify: ${verify.stderr}`);
} finally {
  await cluster.stop();
}

const statuses: Record<string, number> = {};
for (const r of reports) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
const bad = reports.reduce((n, r) => n + r.violations.length + r.canaryLeaks.length, 0);
writeReport('fuzz', { benchmark: 'fuzz', date: new Date().toISOString(), seeds, runsPerSeed: runs, statuses, auditVerified: verified, reports }, [
  '# Mutation fuzzing', '',
  `${new Date().toISOString()}; seeds ${seeds.join(', ')}; ${runs} REST and ${runs} gRPC mutated requests per seed; 1 gateway, 2 nodes, 127.0.0.1.`, '',
  '| seed | violations | canary leaks | gateway RSS before / max / after (MB) | V8 heap in use after (MB) |', '| --- | --- | --- | --- | --- |',
  ...reports.map((r) => `| ${r.seed} | ${r.violations.length} | ${r.canaryLeaks.length} | ${r.gatewayRssMb.before.toFixed(0)} / ${r.gatewayRssMb.max.toFixed(0)} / ${r.gatewayRssMb.after.toFixed(0)} | ${r.gatewayHeapUsedMbAfter.toFixed(0)} |`), '',
  '| answer | count |', '| --- | --- |',
  ...Object.entries(statuses).sort().map(([k, v]) => `| ${k} | ${v} |`), '',
  `Audit chain verifies: ${verified ? 'yes' : 'NO'}`, '',
].join('\n'));
process.exit(bad === 0 && verified ? 0 : 1);
