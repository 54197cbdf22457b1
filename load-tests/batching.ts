/**
 * Dynamic batching, measured: two nodes over the same model files, one with
 * dynamicBatching configured for the model, one without, driven over their
 * gRPC doors in alternating runs at each concurrency.
 *
 *   npm run bench:batching [-- --model news2 --concurrency 1,8,64 --runs 3 --seconds 5 --delay-us 500]
 *
 * Writes load-tests/reports/batching-<model>.{json,md}.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { devNodeConfig } from '../src/cli/dev-config.js';
import { MODELS, makeMaterial, startProcess, stopProcess, type Proc } from '../test/helpers/cluster.js';
import { grpcLoad, type GrpcTarget } from './lib/grpc-load.js';
import { median, writeReport, type Figures } from './lib/measure.js';

const { values } = parseArgs({ options: {
  model: { type: 'string', default: 'news2' }, concurrency: { type: 'string', default: '1,8,64' },
  runs: { type: 'string', default: '3' }, seconds: { type: 'string', default: '5' }, 'delay-us': { type: 'string', default: '500' },
} });
const model = values.model!;
const INPUTS: Record<string, { name: string; shape: number[]; values: () => number[] }> = {
  news2: { name: 'vitals', shape: [1, 7], values: () => [24, 93, 1, 105, 115, 0, 38.5] },
  'cxr-loadtest': { name: 'image', shape: [1, 1, 224, 224], values: () => new Array<number>(224 * 224).fill(0.5) },
};
const spec = INPUTS[model];
if (!spec) throw new Error(`no benchmark input for ${model}`);

const material = await makeMaterial();
const repo = mkdtempSync(join(tmpdir(), 'cdsgate-repo-'));
cpSync(MODELS, repo, { recursive: true });
const file = join(repo, model, 'config.json');
writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), dynamicBatching: { maxQueueDelayMicroseconds: Number(values['delay-us']) } }));
let batched: Proc | undefined, plain: Proc | undefined;
try {
  [batched, plain] = await Promise.all([
    startProcess('node', devNodeConfig({ pki: material.pki, index: 0, modelRepository: repo, executionProvider: 'cpu' }), material.dir, 'node-batched'),
    startProcess('node', devNodeConfig({ pki: material.pki, index: 1, modelRepository: MODELS, executionProvider: 'cpu' }), material.dir, 'node-plain'),
  ]);
  const request = { model_name: model, inputs: [{ name: spec.name, datatype: 'FP32', shape: spec.shape.map(String) }], raw_input_contents: [Buffer.from(Float32Array.from(spec.values()).buffer)] };
  const target = (p: Proc, i: number): GrpcTarget => ({ port: p.ports.grpc!, ca: material.pki.ca, identity: material.pki.gatewayClient, serverName: `node-${i}.cdsgate.local`, tokens: [], request });
  const rows: Array<Figures & { batching: string; concurrency: number }> = [];
  for (const c of values.concurrency!.split(',').map(Number)) {
    await grpcLoad('warm-up', 0, target(plain, 1), 2, c);
    await grpcLoad('warm-up', 0, target(batched, 0), 2, c);
    for (let run = 1; run <= Number(values.runs); run++) {
      for (const [name, p, i] of [['off', plain, 1], ['on', batched, 0]] as const) {
        const f = await grpcLoad(name, run, target(p, i), Number(values.seconds), c);
        rows.push({ ...f, batching: name, concurrency: c });
        console.log(`${model}, ${c} concurrent, batching ${name}: ${f.rps} req/s, p50 ${f.p50} ms, p99 ${f.p99} ms, errors ${f.errors + f.non2xx}`);
      }
    }
  }
  const table = ['| concurrency | batching | req/s | p50 ms | p99 ms | on ÷ off req/s |', '| --- | --- | --- | --- | --- | --- |'];
  for (const c of [...new Set(rows.map((r) => r.concurrency))]) {
    const m = (b: string, k: 'rps' | 'p50' | 'p99') => median(rows.filter((r) => r.concurrency === c && r.batching === b).map((r) => r[k]));
    const ratio = median(rows.filter((r) => r.concurrency === c && r.batching === 'on').map((on) => on.rps / rows.find((off) => off.concurrency === c && off.batching === 'off' && off.run === on.run)!.rps));
    for (const b of ['off', 'on']) table.push(`| ${c} | ${b} | ${m(b, 'rps')} | ${m(b, 'p50').toFixed(2)} | ${m(b, 'p99').toFixed(2)} | ${b === 'on' ? `${ratio.toFixed(2)}×` : ''} |`);
  }
  writeReport(`batching-${model}`, { benchmark: 'batching', model, date: new Date().toISOString(), delayUs: Number(values['delay-us']), rows }, [
    `# Dynamic batching — ${model}`, '',
    `${new Date().toISOString()}; node gRPC door, 1 worker × 1 intra-op thread, CPU; max queue delay ${values['delay-us']} µs; ${values.runs} alternating runs × ${values.seconds} s; medians; ratio = median of per-run ratios.`, '',
    ...table, '',
  ].join('\n'));
} finally {
  await Promise.all([batched, plain].filter((p): p is Proc => p !== undefined).map((p) => stopProcess(p)));
}
