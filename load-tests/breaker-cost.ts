/**
 * What a node's circuit breaker costs the gateway's event loop on each failed
 * call, after a window of healthy traffic: the node handle as configured
 * (opossum deciding from counts) against opossum's defaults (rolling
 * percentiles and snapshots on, which sort every latency of the window when
 * its stats are read: on every failed call, and once per bucket for the
 * snapshots). In-process, no sockets: the node client answers or fails in
 * memory, so the figures are the breaker's own work.
 *
 *   npm run bench:breaker [-- --windows 2000,20000 --failures 200 --repeats 5]
 *
 * Writes load-tests/reports/breaker.{json,md}.
 */
import CircuitBreaker from 'opossum';
import { parseArgs } from 'node:util';
import type { InferRequest } from '../src/kserve/types.js';
import { NodeHandle } from '../src/routing/node-handle.js';
import { SwitchableNode, emptyRequest as request } from '../test/helpers/switchable-node.js';
import { median, writeReport } from './lib/measure.js';
import { wholeOption } from './lib/options.js';

const { values } = parseArgs({ options: { windows: { type: 'string', default: '2000,20000' }, failures: { type: 'string', default: '200' }, repeats: { type: 'string', default: '5' } } });
const windows = values.windows!.split(',').map((w) => wholeOption('bench:breaker', 'windows', w, 1));
const failures = wholeOption('bench:breaker', 'failures', values.failures!, 1), repeats = wholeOption('bench:breaker', 'repeats', values.repeats!, 1);

// Never opens during the measurement (a threshold of 100% is never exceeded), so every failed call reads the stats.
const config = { timeoutMs: 2_000, errorThresholdPercentage: 100, volumeThreshold: 5, resetTimeoutMs: 5_000, rollingCountTimeoutMs: 60_000 };

/** CPU µs per failed call after `window` successful ones. */
async function perFailedCall(kind: 'configured' | 'opossum defaults', window: number): Promise<number> {
  const client = new SwitchableNode();
  let call: () => Promise<unknown>;
  let stop: () => void;
  if (kind === 'configured') {
    const handle = new NodeHandle(client, config, () => undefined);
    call = () => handle.infer(request, Date.now() + 1_000, 'r');
    stop = () => handle.shutdown();
  } else {
    const breaker = new CircuitBreaker((r: InferRequest) => client.infer(r), { timeout: false, errorThresholdPercentage: config.errorThresholdPercentage, volumeThreshold: config.volumeThreshold, resetTimeout: config.resetTimeoutMs, rollingCountTimeout: config.rollingCountTimeoutMs });
    call = () => breaker.fire(request);
    stop = () => breaker.shutdown();
  }
  for (let i = 0; i < window; i++) await call();
  client.failing = true;
  const before = process.cpuUsage();
  for (let i = 0; i < failures; i++) await call().catch(() => undefined);
  const used = process.cpuUsage(before);
  stop();
  return (used.user + used.system) / failures;
}

// One discarded pass of each first: the first calls measure V8 compiling the code, not the breaker.
await perFailedCall('configured', 1_000);
await perFailedCall('opossum defaults', 1_000);
const rows: Array<{ window: number; configured: number; defaults: number }> = [];
for (const window of windows) {
  const configured: number[] = [], defaults: number[] = [];
  for (let r = 0; r < repeats; r++) {
    configured.push(await perFailedCall('configured', window));
    defaults.push(await perFailedCall('opossum defaults', window));
  }
  rows.push({ window, configured: Math.round(median(configured)), defaults: Math.round(median(defaults)) });
}
const md = [
  '# A node\'s circuit breaker: CPU per failed call',
  '',
  `${new Date().toISOString()}; ${failures} failed calls after a window of successful ones, ${repeats} repeats (medians), alternating; in-process, the node client in memory.`,
  '',
  '| calls in the window | node handle as configured, µs | opossum defaults (percentiles, snapshots), µs | ratio |',
  '| --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.window} | ${r.configured} | ${r.defaults} | ${(r.defaults / r.configured).toFixed(1)}× |`),
  '',
].join('\n');
writeReport('breaker', { failures, repeats, rows }, md);
