/**
 * `cdsgate gpu-check`: the one script a GPU host runs to prove the GPU path.
 *
 * It answers, with figures, the questions an operator has before putting a
 * node on a GPU: which GPU and drivers this host has; which onnxruntime
 * providers really create sessions here (and, when one cannot, exactly which
 * library is missing); whether each provider gives the CPU provider's answers
 * for our models; what each batch size costs on each provider; and whether
 * `cdsgate start` with its nodes on that provider answers through the gateway.
 *
 * It runs sessions in this process (no worker threads): it measures the
 * provider, not the node's queueing.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { Agent, request } from 'undici';
import { devIssuerFiles, mintDevToken } from '../auth/dev-issuer.js';
import { devPkiPaths } from '../tls/dev-pki.js';
import { CUDA_PROVIDER_LIBRARIES, openSession, ortBinaryDir, resolveProvider, type ResolvedProvider } from '../node/provider.js';
import { loadRepository, type LoadedModel } from '../node/repository.js';
import { mulberry32 } from '../seeded-random.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI_ENTRY = fileURLToPath(new URL('./main.js', import.meta.url));

export interface GpuCheckOptions {
  modelRepository?: string;
  deviceId: number;
  secondsPerCase: number;
  outDir: string;
  gateway: boolean;
}

export type GpuProvider = 'cuda' | 'webgpu';
const GPU_PROVIDERS: GpuProvider[] = ['cuda', 'webgpu'];
const BATCH_SIZES = [1, 8, 32, 64];
const CHECK_MODELS = ['news2', 'cxr-loadtest'];

/**
 * How close a provider's outputs must be to the CPU provider's. NEWS2 is
 * integer arithmetic on band lookups (a Gather graph), so any difference is a
 * wrong score. The CNN's float sums are reordered on a GPU (and CUDA may use
 * TF32), so its probabilities get an absolute tolerance.
 */
export const TOLERANCE: Record<string, number> = { news2: 0, 'cxr-loadtest': 1e-3, 'wdbc-risk': 1e-4 };

interface ProviderStatus { provider: GpuProvider; available: boolean; reason?: string }
export interface Comparison { model: string; provider: GpuProvider; rows: number; maxAbsDiff: number; tolerance: number; ok: boolean; chartRowScore?: number }
interface Timing { model: string; provider: 'cpu' | GpuProvider; batch: number; runs: number; medianMs: number; rowsPerSecond: number }
interface GatewayCheck { provider: GpuProvider; ok: boolean; requests: number; mismatches: number; nodeProviders: string[]; error?: string }

export interface GpuCheckReport {
  date: string;
  host: { node: string; onnxruntime: string; cpus: number; gpus: string[]; vulkanDrivers: string[]; vulkanLoader: boolean; vulkanDriverProblems: string[] };
  cudaLibraries: { dir: string; present: string[]; missing: string[]; unresolved: Record<string, string[]> };
  providers: ProviderStatus[];
  comparisons: Comparison[];
  timings: Timing[];
  cpuThreads: number;
  gateway?: GatewayCheck;
  /** Caveats the reader must see next to the verdict. */
  notes: string[];
  verdict: 'pass' | 'fail' | 'no-gpu-provider';
}

export async function runGpuCheck(options: GpuCheckOptions): Promise<number> {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const repository = options.modelRepository ?? join(ROOT, 'models');
  const models = loadRepository(repository, CHECK_MODELS).map((entry) => {
    if (entry.status !== 'loaded') throw new Error(`gpu-check needs ${entry.name}: ${entry.reason}`);
    return entry;
  });

  const report: GpuCheckReport = {
    date: new Date().toISOString(),
    host: { node: process.version, onnxruntime: ortVersion(), cpus: availableParallelism(), gpus: nvidiaGpus(), vulkanDrivers: vulkanDrivers(), vulkanLoader: false, vulkanDriverProblems: [] },
    cudaLibraries: cudaLibraries(),
    providers: [],
    comparisons: [],
    timings: [],
    cpuThreads: availableParallelism(),
    notes: [],
    verdict: 'fail',
  };
  report.host.vulkanLoader = sharedLibraryPath('libvulkan.so.1') !== undefined;
  report.host.vulkanDriverProblems = report.host.vulkanDrivers.flatMap(driverProblems);
  if (!report.host.vulkanLoader) report.notes.push('the Vulkan loader libvulkan.so.1 is not installed (Debian/Ubuntu: libvulkan1), so WebGPU cannot start');
  for (const problem of report.host.vulkanDriverProblems) report.notes.push(problem);
  say(`GPUs: ${report.host.gpus.join('; ') || 'none found (nvidia-smi absent or found no device)'}`);
  say(`Vulkan drivers: ${report.host.vulkanDrivers.join(', ') || 'none found'}`);
  say(`onnxruntime-node ${report.host.onnxruntime}, CUDA provider libraries ${report.cudaLibraries.missing.length ? `missing: ${report.cudaLibraries.missing.join(', ')}` : 'present'}`);
  for (const [lib, missing] of Object.entries(report.cudaLibraries.unresolved)) say(`  ${lib} cannot find: ${missing.join(', ')}`);

  // Which GPU providers create a session here. resolveProvider is the node's own startup decision.
  const probeModel = new Uint8Array(models[0]!.bytes).slice();
  const working: ResolvedProvider[] = [];
  for (const provider of GPU_PROVIDERS) {
    try {
      working.push(await resolveProvider(provider, options.deviceId, probeModel));
      report.providers.push({ provider, available: true });
      say(`provider ${provider}: sessions work`);
    } catch (err) {
      report.providers.push({ provider, available: false, reason: (err as Error).message });
      say(`provider ${provider}: not usable here: ${(err as Error).message}`);
    }
  }

  const cpu: ResolvedProvider = { name: 'cpu' };
  for (const model of models) {
    const cpuSession = await openSession(model.bytes, cpu, report.cpuThreads);
    const inputs = referenceInputs(model, 64);
    const reference = await runAll(cpuSession, model, inputs);
    report.timings.push(...await timeBatches(cpuSession, model, 'cpu', options.secondsPerCase));
    for (const provider of working) {
      const name = provider.name as GpuProvider;
      const session = await openSession(model.bytes, provider, 1);
      const outputs = await runAll(session, model, inputs);
      const comparison = compareOutputs(model.name, name, 64, reference, outputs);
      report.comparisons.push(comparison);
      say(`${model.name} on ${name}: max |Δ| vs CPU ${comparison.maxAbsDiff.toExponential(2)} over ${comparison.rows} rows (tolerance ${comparison.tolerance}) ${comparison.ok ? 'OK' : 'MISMATCH'}`);
      report.timings.push(...await timeBatches(session, model, name, options.secondsPerCase));
      await session.release();
    }
    await cpuSession.release();
  }
  for (const t of report.timings) say(`  ${t.model} ${t.provider} batch ${t.batch}: ${t.medianMs.toFixed(3)} ms a run, ${Math.round(t.rowsPerSecond)} rows/s (${t.runs} runs)`);

  if (options.gateway && working.length > 0) {
    const provider = working[0]!.name as GpuProvider;
    say(`cdsgate start --provider ${provider}: requests through the gateway…`);
    report.gateway = await gatewayRoundTrip(provider, options.deviceId, models);
    say(`gateway on ${provider}: ${report.gateway.ok ? 'OK' : 'FAILED'} — ${report.gateway.requests} requests, ${report.gateway.mismatches} mismatched answers, nodes on ${report.gateway.nodeProviders.join(', ') || '?'}${report.gateway.error ? ` (${report.gateway.error})` : ''}`);
  }

  if (working.some((p) => p.name === 'webgpu') && report.host.gpus.length === 0) {
    report.notes.push('nvidia-smi found no GPU: the WebGPU provider ran on whatever Vulkan driver the loader picked, which on a host without a GPU is Mesa lavapipe (Vulkan on the CPU); that proves the provider path and its outputs, not GPU speed');
  }
  const checksPassed = report.comparisons.every((c) => c.ok) && (report.gateway?.ok ?? true);
  report.verdict = working.length === 0 ? 'no-gpu-provider' : checksPassed ? 'pass' : 'fail';
  mkdirSync(options.outDir, { recursive: true });
  writeFileSync(join(options.outDir, 'gpu-check.json'), `${JSON.stringify(report, null, 2)}\n`);
  const markdown = renderMarkdown(report);
  writeFileSync(join(options.outDir, 'gpu-check.md'), markdown);
  say(`\n${markdown}`);
  say(`report: ${join(options.outDir, 'gpu-check.md')}`);
  return report.verdict === 'pass' ? 0 : report.verdict === 'no-gpu-provider' ? 4 : 1;
}

function ortVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('onnxruntime-node/package.json') as { version: string }).version;
}

function nvidiaGpus(): string[] {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=index,name,driver_version,memory.total,compute_cap', '--format=csv,noheader'], { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\n').map((l) => l.trim()).filter(Boolean);
  } catch {
    return [];
  }
}

/** Vulkan ICD manifests the loader will read (VK_DRIVER_FILES / VK_ICD_FILENAMES first, as the loader does). */
function vulkanDrivers(): string[] {
  const explicit = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  if (explicit) return explicit.split(':').filter(Boolean);
  const dirs = ['/etc/vulkan/icd.d', '/usr/share/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
  const found: string[] = [];
  for (const dir of dirs) {
    if (existsSync(dir)) found.push(...readdirSync(dir).sort().map((f) => join(dir, f)));
  }
  return found;
}

/** The shared libraries the dynamic loader cannot find for `path` (ldd's "not found"); none when ldd is absent. */
function unloadable(path: string): string[] {
  try {
    const out = execFileSync('ldd', [path], { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\n').filter((l) => l.includes('not found')).map((l) => l.trim().split(/\s/)[0]!);
  } catch {
    return [];
  }
}

/** Where the dynamic loader finds a library, from its cache (as dlopen would). */
function sharedLibraryPath(name: string): string | undefined {
  try {
    const out = execFileSync('ldconfig', ['-p'], { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\n').find((l) => l.trim().startsWith(`${name} `))?.split('=> ')[1]?.trim();
  } catch {
    return undefined;
  }
}

/** Libraries a Vulkan driver cannot load (the NVIDIA driver's ICD needs libglvnd's libGLdispatch, which a minimal image lacks). */
function driverProblems(icdFile: string): string[] {
  let library: string;
  try {
    library = (JSON.parse(readFileSync(icdFile, 'utf8')) as { ICD?: { library_path?: string } }).ICD?.library_path ?? '';
  } catch {
    return [`cannot read the Vulkan driver manifest ${icdFile}`];
  }
  if (!library) return [];
  const path = library.includes('/') ? library : sharedLibraryPath(library);
  if (!path || !existsSync(path)) return [`the Vulkan driver ${icdFile} names ${library}, which the loader cannot find`];
  const missing = unloadable(path);
  return missing.length ? [`the Vulkan driver ${library} cannot load ${missing.join(', ')} (for libGLdispatch: install libglvnd0)`] : [];
}

/**
 * The CUDA provider libraries beside onnxruntime-node's binding and, for
 * those present, the shared libraries the dynamic loader cannot find (via
 * ldd): "libcudart.so.13 => not found" names the CUDA major version the
 * provider was built for, which is the one thing operators get wrong.
 */
function cudaLibraries(): GpuCheckReport['cudaLibraries'] {
  const dir = ortBinaryDir();
  const present = CUDA_PROVIDER_LIBRARIES.filter((lib) => existsSync(join(dir, lib)));
  const missing = CUDA_PROVIDER_LIBRARIES.filter((lib) => !present.includes(lib));
  const unresolved: Record<string, string[]> = {};
  for (const lib of present) {
    const notFound = unloadable(join(dir, lib));
    if (notFound.length) unresolved[lib] = notFound;
  }
  return { dir, present, missing, unresolved };
}


/** The published chart example: NEWS2 10. Row 0 of every news2 batch, so each provider is also checked against the chart. */
const CHART_ROW = [24, 93, 1, 105, 115, 0, 38.5];
const CHART_SCORE = 10;

/**
 * `rows` inputs for a model: NEWS2 vitals drawn across each feature's
 * plausible range, off the band grid (38.01 °C, not 38), with the binary
 * columns 0 or 1; CNN images uniform in [0, 1).
 */
export function referenceInputs(model: LoadedModel, rows: number): Float32Array {
  const input = model.config.inputs[0]!;
  const perRow = input.shape.slice(1).reduce((a, b) => a * b, 1);
  const random = mulberry32(0xc0ffee);
  const data = new Float32Array(rows * perRow);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < perRow; c++) {
      const range = input.featureRanges?.[c];
      if (!range) { data[r * perRow + c] = random(); continue; }
      const binary = range.min === 0 && range.max === 1;
      data[r * perRow + c] = binary ? Math.round(random()) : Math.round((range.min + random() * (range.max - range.min)) * 100) / 100;
    }
  }
  if (model.name === 'news2') data.set(CHART_ROW, 0);
  return data;
}

function feeds(model: LoadedModel, data: Float32Array, rows: number): Record<string, ort.Tensor> {
  const input = model.config.inputs[0]!;
  const perRow = input.shape.slice(1).reduce((a, b) => a * b, 1);
  return { [input.name]: new ort.Tensor('float32', data.subarray(0, rows * perRow), [rows, ...input.shape.slice(1)]) };
}

/** Every output as float64 values, in the config's order. */
export async function runAll(session: ort.InferenceSession, model: LoadedModel, data: Float32Array): Promise<number[][]> {
  const perRow = model.config.inputs[0]!.shape.slice(1).reduce((a, b) => a * b, 1);
  const results = await session.run(feeds(model, data, data.length / perRow));
  return model.config.outputs.map((o) => Array.from(results[o.name]!.data as ArrayLike<number | bigint>, Number));
}

export function compareOutputs(model: string, provider: GpuProvider, rows: number, reference: number[][], actual: number[][]): Comparison {
  let maxAbsDiff = 0;
  reference.forEach((values, o) => values.forEach((v, i) => {
    const d = Math.abs(v - (actual[o]?.[i] ?? Number.NaN));
    maxAbsDiff = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(maxAbsDiff, d);
  }));
  const tolerance = TOLERANCE[model] ?? 1e-3;
  const comparison: Comparison = { model, provider, rows, maxAbsDiff, tolerance, ok: maxAbsDiff <= tolerance };
  if (model === 'news2') {
    comparison.chartRowScore = actual[0]?.[0] ?? Number.NaN;
    comparison.ok &&= comparison.chartRowScore === CHART_SCORE;
  }
  return comparison;
}

/** Median time of one run at each batch size, after two warm-up runs, for about `seconds` per case. */
async function timeBatches(session: ort.InferenceSession, model: LoadedModel, provider: Timing['provider'], seconds: number): Promise<Timing[]> {
  const timings: Timing[] = [];
  const data = referenceInputs(model, Math.max(...BATCH_SIZES));
  for (const batch of BATCH_SIZES) {
    const input = feeds(model, data, batch);
    for (let i = 0; i < 2; i++) await session.run(input);
    const samples: number[] = [];
    const until = performance.now() + seconds * 1000;
    while (samples.length < 5 || (performance.now() < until && samples.length < 1000)) {
      const started = performance.now();
      await session.run(input);
      samples.push(performance.now() - started);
    }
    samples.sort((a, b) => a - b);
    const medianMs = samples[Math.floor(samples.length / 2)]!;
    timings.push({ model: model.name, provider, batch, runs: samples.length, medianMs, rowsPerSecond: (batch * 1000) / medianMs });
  }
  return timings;
}

/** Finds a base port with the ports `cdsgate start` uses (base … base+17) free on loopback. */
export async function freePortBase(): Promise<number> {
  const free = (port: number) => new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let p = base; p < base + 18 && ok; p++) ok = await free(p);
    if (ok) return base;
  }
  throw new Error('no 16 free consecutive ports on 127.0.0.1');
}

/**
 * The product path: `cdsgate start --provider P --devices d,d` in a scratch
 * folder (its own PKI and audit log), then news2 and cxr-loadtest requests
 * through the gateway's REST door with a client certificate and a token,
 * each answer compared with the CPU provider's, and each node's
 * `cdsgate_node_execution_provider` metric read.
 */
async function gatewayRoundTrip(provider: GpuProvider, deviceId: number, models: LoadedModel[]): Promise<GatewayCheck> {
  const result: GatewayCheck = { provider, ok: false, requests: 0, mismatches: 0, nodeProviders: [] };
  const devDir = mkdtempSync(join(tmpdir(), 'cdsgate-gpu-check-'));
  const base = await freePortBase();
  const child = spawn(process.execPath, [CLI_ENTRY, 'start', '--provider', provider, '--devices', `${deviceId},${deviceId}`], {
    env: { ...process.env, CDSGATE_DEV_DIR: devDir, CDSGATE_DEV_PORT_BASE: String(base) }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const keep = (line: string) => { tail.push(line); if (tail.length > 20) tail.shift(); };
  createInterface({ input: child.stderr! }).on('line', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let client: Agent | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('cdsgate start was not ready within 180 s')), 180_000);
      createInterface({ input: child.stdout! }).on('line', (line) => { keep(line); if (line.includes('cdsgate is ready')) { clearTimeout(timer); resolve(); } });
      void exited.then((code) => { clearTimeout(timer); reject(new Error(`cdsgate start exited (${code}) before it was ready`)); });
    });
    const pki = devPkiPaths(devDir);
    client = new Agent({ connect: { ca: readFileSync(pki.ca), cert: readFileSync(pki.apps.ehr.cert), key: readFileSync(pki.apps.ehr.key), servername: 'localhost' } });
    const token = await mintDevToken(devIssuerFiles(devDir).privateJwk, { subject: 'gpu-check', roles: ['clinician', 'loadtest'], ttlSeconds: 600 });
    const cpu: ResolvedProvider = { name: 'cpu' };
    for (const model of models) {
      const rows = model.name === 'news2' ? 8 : 1;
      const perRow = model.config.inputs[0]!.shape.slice(1).reduce((a, b) => a * b, 1);
      const data = referenceInputs(model, rows);
      const cpuSession = await openSession(model.bytes, cpu, 1);
      const expected = await runAll(cpuSession, model, data);
      await cpuSession.release();
      const requests = model.name === 'news2' ? 16 : 4;
      for (let i = 0; i < requests; i++) {
        const body = JSON.stringify({
          inputs: [{ name: model.config.inputs[0]!.name, datatype: 'FP32', shape: [rows, ...model.config.inputs[0]!.shape.slice(1)], data: Array.from(data.subarray(0, rows * perRow)) }],
        });
        const response = await request(`https://127.0.0.1:${base}/v2/models/${model.name}/infer`, {
          method: 'POST', dispatcher: client, body,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        });
        result.requests++;
        const answer = await response.body.json() as { outputs?: Array<{ name: string; data: number[] }>; error?: string };
        if (response.statusCode !== 200 || !answer.outputs) {
          result.mismatches++;
          result.error = `HTTP ${response.statusCode}: ${answer.error ?? ''}`.slice(0, 300);
          continue;
        }
        const actual = model.config.outputs.map((o) => answer.outputs!.find((x) => x.name === o.name)?.data.map(Number) ?? []);
        if (!compareOutputs(model.name, provider, rows, expected, actual).ok) result.mismatches++;
      }
    }
    for (const admin of [base + 12, base + 15]) {
      const metrics = await request(`http://127.0.0.1:${admin}/metrics`).then((r) => r.body.text());
      const line = metrics.split('\n').find((l) => l.startsWith('cdsgate_node_execution_provider{') && l.trim().endsWith(' 1'));
      result.nodeProviders.push(/provider="([^"]+)"/.exec(line ?? '')?.[1] ?? 'unknown');
    }
    result.ok = result.mismatches === 0 && result.nodeProviders.every((p) => p === provider);
  } catch (err) {
    result.error = `${(err as Error).message}; last output: ${tail.slice(-5).join(' | ')}`.slice(0, 1500);
  } finally {
    await client?.close();
    if (child.exitCode === null) child.kill('SIGINT');
    const code = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 40_000))]);
    if (code === null && child.exitCode === null) child.kill('SIGKILL');
    rmSync(devDir, { recursive: true, force: true });
  }
  return result;
}

function renderMarkdown(r: GpuCheckReport): string {
  const lines = [
    `# cdsgate gpu-check — ${r.verdict.toUpperCase()}`,
    '',
    `${r.date}; Node ${r.host.node}; onnxruntime-node ${r.host.onnxruntime}; ${r.host.cpus} CPUs (CPU provider timed with ${r.cpuThreads} intra-op threads)`,
    '',
    ...r.notes.map((n) => `**Note:** ${n}.\n`),
    `- GPUs: ${r.host.gpus.join('; ') || 'none found'}`,
    `- Vulkan loader (libvulkan.so.1): ${r.host.vulkanLoader ? 'installed' : 'not installed'}; drivers: ${r.host.vulkanDrivers.join(', ') || 'none found'}`,
    `- CUDA provider libraries in ${r.cudaLibraries.dir}: ${r.cudaLibraries.present.join(', ') || 'none'}${r.cudaLibraries.missing.length ? ` (missing ${r.cudaLibraries.missing.join(', ')})` : ''}`,
    ...Object.entries(r.cudaLibraries.unresolved).map(([lib, libs]) => `  - ${lib} cannot find ${libs.join(', ')}`),
    '',
    '## Providers',
    '',
    '| provider | usable | why not |',
    '| --- | --- | --- |',
    ...r.providers.map((p) => `| ${p.provider} | ${p.available ? 'yes' : 'no'} | ${(p.reason ?? '').replaceAll('|', '\\|')} |`),
    '',
    '## Outputs against the CPU provider (64 rows, deterministic inputs)',
    '',
    '| model | provider | max abs diff | tolerance | result |',
    '| --- | --- | --- | --- | --- |',
    ...r.comparisons.map((c) => `| ${c.model} | ${c.provider} | ${c.maxAbsDiff.toExponential(2)} | ${c.tolerance} | ${c.ok ? 'OK' : 'MISMATCH'}${c.chartRowScore !== undefined ? ` (chart row: ${c.chartRowScore}, expected ${CHART_SCORE})` : ''} |`),
    '',
    '## Time per run (median) and rows per second',
    '',
    '| model | batch | ' + [...new Set(r.timings.map((t) => t.provider))].join(' | ') + ' |',
    '| --- | --- | ' + [...new Set(r.timings.map((t) => t.provider))].map(() => '---').join(' | ') + ' |',
  ];
  const providers = [...new Set(r.timings.map((t) => t.provider))];
  for (const model of [...new Set(r.timings.map((t) => t.model))]) {
    for (const batch of BATCH_SIZES) {
      const cells = providers.map((p) => {
        const t = r.timings.find((x) => x.model === model && x.batch === batch && x.provider === p);
        return t ? `${t.medianMs.toFixed(3)} ms, ${Math.round(t.rowsPerSecond)} rows/s` : '—';
      });
      lines.push(`| ${model} | ${batch} | ${cells.join(' | ')} |`);
    }
  }
  if (r.gateway) {
    lines.push('', '## Through the gateway', '', `\`cdsgate start --provider ${r.gateway.provider}\`: ${r.gateway.ok ? 'OK' : 'FAILED'}; ${r.gateway.requests} REST requests (news2 and cxr-loadtest), ${r.gateway.mismatches} mismatched answers; nodes report ${r.gateway.nodeProviders.join(', ') || '?'}${r.gateway.error ? `; ${r.gateway.error}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
