/**
 * This working tree's gateway against another revision's, in front of one
 * node: the interleaved A/B run by which docs/PERFORMANCE.md judges each
 * change (run to run, this VM's speed moves by 10–20%, so only
 * neighbouring runs of two builds are compared).
 *
 *   npm run bench:ab -- --base REV [--rounds 10 --seconds 5 --connections 32 --warmup 3 --tokens 1 --token-cache N --door rest|grpc --slow-sync-us N]
 *
 * REV's `src/` is built into a temporary directory (git archive and tsc,
 * with this checkout's node_modules); this tree is built by the npm script.
 * One node, then two gateways on the same configuration (each its own audit
 * directory), both warmed up, then `--rounds` pairs of runs. Reported per
 * round and as medians: req/s, p50, p99 and gateway CPU µs per request (from
 * /proc), audit syncs per request (from each gateway's metrics), with the
 * median of the per-round ratios (this tree ÷ REV). Each round's pair runs
 * in turn, the order alternating round by round. Run it first with `--base
 * HEAD` on a clean tree: two gateways of one build show the machine's noise
 * (on the development VM up to 9% either way in 6–8 rounds).
 * `--tokens N` sends N distinct tokens in turn and `--token-cache N` sets
 * both gateways' verified-token cache (0: every token verified on every
 * request), as in bench:peers. `--door grpc` loads the gateways' gRPC door
 * (ModelInfer with raw tensor contents) instead of their REST door. Writes
 * load-tests/reports/ab.{json,md}.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, startCluster, startProcess, stopProcess, type Proc } from '../test/helpers/cluster.js';
import { alternatingRuns, measure, median, processCpuMicros, summarise, writeReport, type Figures, type Target } from './lib/measure.js';
import { grpcLoad, type GrpcTarget } from './lib/grpc-load.js';
import { wholeOption } from './lib/options.js';
import { gatewayTotals } from './lib/gateway-metrics.js';
import { NEWS2_GRPC_REQUEST, NEWS2_REST_BODY } from './lib/news2-request.js';
import { slowSyncOption } from './lib/slow-sync.js';

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    rounds: { type: 'string', default: '10' }, seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' }, warmup: { type: 'string', default: '3' },
    tokens: { type: 'string', default: '1' }, 'token-cache': { type: 'string' }, door: { type: 'string', default: 'rest' },
    /** Every audit sync of both gateways waits this many microseconds more, one at a time: a disk that syncs slowly (lib/slow-sync.ts). */
    'slow-sync-us': { type: 'string' },
  },
});
const whole = (option: string, text: string, min: number): number => wholeOption('bench:ab', option, text, min);
if (!values.base) {
  console.error('bench:ab: --base REV names the revision to compare this working tree with (a commit, tag or branch)');
  process.exit(2);
}
const rounds = whole('rounds', values.rounds!, 1), seconds = whole('seconds', values.seconds!, 1);
const connections = whole('connections', values.connections!, 1), warmupWaves = whole('warmup', values.warmup!, 0);
const tokenCount = whole('tokens', values.tokens!, 1);
if (values.door !== 'rest' && values.door !== 'grpc') {
  console.error(`bench:ab: --door is rest or grpc, not ${JSON.stringify(values.door)}`);
  process.exit(2);
}
const door = values.door;
const tokenCacheEntries = values['token-cache'] === undefined ? undefined : whole('token-cache', values['token-cache'], 0);
const slowSyncMicros = slowSyncOption('bench:ab', values['slow-sync-us']);

let baseCommit: string;
try {
  baseCommit = execFileSync('git', ['rev-parse', '--verify', `${values.base}^{commit}`], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
} catch {
  console.error(`bench:ab: ${JSON.stringify(values.base)} is not a revision of this repository`);
  process.exit(2);
}

/** REV's gateway, built apart: its own src/ and tsconfig, this checkout's dependencies, protos and models. */
const baseDir = mkdtempSync(join(tmpdir(), 'cdsgate-ab-base-'));
execFileSync('sh', ['-c', `git archive ${baseCommit} src tsconfig.json package.json | tar -x -C "${baseDir}"`], { cwd: ROOT, stdio: 'inherit' });
for (const shared of ['node_modules', 'proto', 'models']) symlinkSync(join(ROOT, shared), join(baseDir, shared));
execFileSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(baseDir, 'tsconfig.json'), '--outDir', join(baseDir, 'dist')], { stdio: 'inherit' });

const cluster = await startCluster({ nodes: 1, keepLogs: false, gatewayPatch: (c) => { if (tokenCacheEntries !== undefined) c.auth.tokenCacheEntries = tokenCacheEntries; } });
const gateways: Proc[] = [];
try {
  const template = JSON.parse(readFileSync(join(cluster.dir, 'gateway.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  const start = (name: string, entry: string) =>
    startProcess('gateway', { ...template, audit: { ...template.audit, dir: join(cluster.dir, `audit-${name}`) } }, cluster.dir, `gateway-${name}`, false, entry);
  const current = await start('current', join(ROOT, 'dist', 'cli', 'main.js'));
  gateways.push(current);
  const base = await start('base', join(baseDir, 'dist', 'cli', 'main.js'));
  gateways.push(base);

  const tokens = await Promise.all(Array.from({ length: tokenCount }, (_, i) => cluster.token(['clinician'], { subject: `bench-${i}`, ttlSeconds: 3600 })));
  const body = NEWS2_REST_BODY, grpcRequest = NEWS2_GRPC_REQUEST;
  type AnyTarget = Target | GrpcTarget;
  const target = (p: Proc): AnyTarget => (door === 'grpc'
    ? { port: p.ports.grpc!, ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, serverName: 'localhost', tokens, request: grpcRequest }
    : { port: p.ports.rest!, path: '/v2/models/news2/infer', identity: cluster.pki.apps.ehr, ca: cluster.pki.ca, body, token: tokens[0], tokens });
  const measureOne = (name: string, run: number, t: AnyTarget, s: number, c: number): Promise<Figures> =>
    (door === 'grpc' ? grpcLoad(name, run, t as GrpcTarget, s, c) : measure(name, run, t as Target, s, c));
  // Short waves first, as bench:peers does: V8 settles its code for Node's socket handling only after a few.
  for (let wave = 0; wave < warmupWaves; wave++) {
    for (const p of [current, base]) await measureOne('warm-up', 0, target(p), 3, connections);
  }
  const cpu: Record<string, number[]> = { current: [], base: [] };
  /** Audit syncs per answered request in each run (from the gateway's metrics): what a change to the audit log's batching did. */
  const syncs: Record<string, number[]> = { current: [], base: [] };
  const pids: Record<string, number | undefined> = { current: current.child.pid, base: base.child.pid };
  const admins: Record<string, number> = { current: current.ports.admin!, base: base.ports.admin! };
  const { figures, ratios: rpsRatios } = await alternatingRuns({ name: 'current', target: target(current) }, { name: 'base', target: target(base) }, rounds, seconds, connections,
    (round, a, b) => console.log(`round ${round}: this tree ${a.rps} req/s p99 ${a.p99} ms ${cpu.current!.at(-1)} µs/req; ${values.base} ${b.rps} req/s p99 ${b.p99} ms ${cpu.base!.at(-1)} µs/req`),
    async (name, run) => {
      const syncsBefore = (await gatewayTotals(admins[name]!)).auditSyncs;
      const before = processCpuMicros(pids[name]);
      const f: Figures = await run();
      cpu[name]!.push(Math.round((processCpuMicros(pids[name]) - before) / Math.max(1, f.requests)));
      syncs[name]!.push(((await gatewayTotals(admins[name]!)).auditSyncs.count - syncsBefore.count) / Math.max(1, f.requests));
      return f;
    }, measureOne);
  const p99s = (name: string) => figures.filter((f) => f.target === name).map((f) => f.p99);
  const p50s = (name: string) => figures.filter((f) => f.target === name).map((f) => f.p50);
  // A median of two rounds is their mean: shown to the microsecond, not with the float's tail.
  const ms = (x: number): number => Math.round(x * 1000) / 1000;
  const row = (name: string, label: string) => {
    const f = summarise(figures, name);
    return `| ${label} | ${f.rps} | ${ms(f.p50)} | ${ms(f.p99)} | ${median(cpu[name]!)} | ${median(syncs[name]!).toFixed(3)} | ${f.non2xx + f.errors} |`;
  };
  const cpuRatios = cpu.current!.map((x, i) => x / cpu.base![i]!);
  const basePer99 = p99s('base'), basePer50 = p50s('base');
  const summary = {
    base: values.base, baseCommit, rounds, seconds, connections, door, tokens: tokenCount, tokenCacheEntries, slowSyncMicros,
    cpuRatio: median(cpuRatios), rpsRatio: median(rpsRatios), p99Ratio: median(p99s('current').map((x, i) => x / basePer99[i]!)),
    p50Ratio: median(p50s('current').map((x, i) => x / basePer50[i]!)),
  };
  writeReport('ab', { summary, figures, cpu, syncs }, [
    `## This working tree against ${values.base} (${baseCommit.slice(0, 12)})`,
    '',
    `${new Date().toISOString()}; one node, two gateways, ${warmupWaves} warm-up waves each, then ${rounds} interleaved pairs of ${seconds} s runs at ${connections} connections to the ${door === 'grpc' ? 'gRPC' : 'REST'} door, ${tokenCount === 1 ? 'one token' : `${tokenCount} distinct tokens`}${tokenCacheEntries === undefined ? '' : `, token cache ${tokenCacheEntries} entries`}${slowSyncMicros === undefined ? '' : `, every audit sync ${slowSyncMicros} µs slower`}; medians over rounds.`,
    '',
    '| gateway | req/s | p50 ms | p99 ms | CPU µs/req | audit syncs per request | non-2xx + errors |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    row('current', 'this tree'),
    row('base', String(values.base)),
    '',
    `Median of per-round ratios (this tree ÷ ${values.base}): **CPU per request ${summary.cpuRatio.toFixed(3)}**, req/s ${summary.rpsRatio.toFixed(3)}, p50 ${summary.p50Ratio.toFixed(3)}, p99 ${summary.p99Ratio.toFixed(3)}.`,
    `Per-round CPU ratios: ${cpuRatios.map((r) => r.toFixed(3)).join(', ')}.`,
    '',
  ].join('\n'));
} finally {
  for (const p of gateways) await stopProcess(p);
  await cluster.stop();
  rmSync(baseDir, { recursive: true, force: true });
}
