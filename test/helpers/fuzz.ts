import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import { inferenceServiceDefinition } from '../../src/kserve/service.js';
import { auditText, grpcClient, httpsCall, scrapeMetrics, type Cluster } from './cluster.js';

/**
 * Seeded, property-based mutation of valid requests against a running
 * gateway, REST and gRPC. Every mutated request carries canary identifiers
 * (made-up patient names, MRNs, e-mail addresses) in the strings a client
 * chooses. Properties:
 *   - every answer is a clean client error or a success: never 500/INTERNAL/
 *     UNKNOWN, always the documented form {"error": "..."};
 *   - afterwards no canary appears in any log line, metric or audit record;
 *   - the gateway's memory stays bounded (sampled and reported).
 * Used by a bounded run in `npm test` and a longer `npm run fuzz`.
 */

export const CANARIES = ['Ximena Canarywood', 'MRN-77120394', 'ximena.canary@example.org', 'Thaddeus-Quillfeather'];
const canary = fc.constantFrom(...CANARIES);
const withCanary = fc.tuple(fc.string({ maxLength: 8 }), canary, fc.string({ maxLength: 8 })).map(([a, c, b]) => `${a}${c}${b}`);
/** Strings a careless or hostile client might send: canaries, long ones, odd code points. */
const hostileString = fc.oneof(
  withCanary,
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.nat({ max: 300_000 }).map((n) => `${CANARIES[n % CANARIES.length]}${'x'.repeat(n)}`),
);

const VALID_ROW = [24, 93, 1, 105, 115, 0, 38.5];
const validJson = () => ({ id: 'r1', inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [...VALID_ROW] }] }) as Record<string, any>;

type Mutation = (body: Record<string, any>) => void;

const shapeArb = fc.oneof(
  fc.array(fc.oneof(fc.integer({ min: -2, max: 10 }), fc.constant(5e9), fc.constant(2 ** 31), fc.double(), hostileString), { maxLength: 6 }),
  fc.constant(new Array(500).fill(1)),
  hostileString,
);
/** Deep nesting, written out only when the body is serialized (JSON.stringify itself would overflow the stack). */
const deepArray = fc.nat({ max: 20_000 }).map((depth) => ({ __deep: depth }));
const expandDeep = (json: string) => json.replace(/\{"__deep":(\d+)\}/g, (_m, n: string) => `${'['.repeat(Number(n))}1${']'.repeat(Number(n))}`);

const restMutation: fc.Arbitrary<Mutation> = fc.oneof(
  hostileString.map((s) => (b: Record<string, any>) => { b.inputs[0].name = s; }),
  hostileString.map((s) => (b: Record<string, any>) => { b.inputs[0].datatype = s; }),
  fc.constantFrom('FP64', 'INT64', 'BYTES', 'BOOL', 'FP16', 'UINT8', 'INT8').map((d) => (b: Record<string, any>) => { b.inputs[0].datatype = d; }),
  shapeArb.map((s) => (b: Record<string, any>) => { b.inputs[0].shape = s; }),
  fc.array(fc.oneof(fc.double(), fc.integer(), fc.boolean(), hostileString, fc.constant(null)), { maxLength: 20 }).map((d) => (b: Record<string, any>) => { b.inputs[0].data = d; }),
  deepArray.map((d) => (b: Record<string, any>) => { b.inputs[0].data = d; }),
  fc.nat({ max: 6 }).map((i) => (b: Record<string, any>) => { b.inputs[0].data[i] = 1e39; }),
  hostileString.map((s) => (b: Record<string, any>) => { b.id = s; }),
  fc.dictionary(hostileString, fc.oneof(hostileString, fc.integer(), fc.boolean(), fc.jsonValue()), { maxKeys: 4 }).map((p) => (b: Record<string, any>) => { b.parameters = p; }),
  fc.array(fc.record({ name: hostileString }), { maxLength: 3 }).map((o) => (b: Record<string, any>) => { b.outputs = o; }),
  fc.tuple(hostileString, shapeArb).map(([name, shape]) => (b: Record<string, any>) => { b.inputs.push({ name, datatype: 'FP32', shape, data: [1] }); }),
  fc.jsonValue().map((v) => (b: Record<string, any>) => { b.inputs = v; }),
  fc.jsonValue().map((v) => (b: Record<string, any>) => { b.inputs[0] = v; }),
  fc.constantFrom('inputs', 'id', 'outputs').map((k) => (b: Record<string, any>) => { delete b[k]; }),
);

/** How the mutated body goes on the wire: as JSON, cut short, compressed (or not quite), or as another type. */
const restEncoding = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: 'json' as const }) },
  { weight: 1, arbitrary: fc.nat().map((cut) => ({ kind: 'truncated' as const, cut })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'gzip' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'corrupt-gzip' as const }) },
  { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/xml', 'application/json; charset=latin1', '').map((type) => ({ kind: 'type' as const, type })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'proto-key' as const }) },
);

const restTarget = fc.oneof(
  { weight: 5, arbitrary: fc.constant({ model: 'news2', version: undefined as string | undefined }) },
  { weight: 1, arbitrary: hostileString.map((s) => ({ model: s.slice(0, 200), version: undefined as string | undefined })) },
  { weight: 1, arbitrary: hostileString.map((s) => ({ model: 'news2', version: s.slice(0, 200) as string | undefined })) },
);

export const restCase = fc.record({
  mutations: fc.array(restMutation, { minLength: 1, maxLength: 3 }),
  encoding: restEncoding,
  target: restTarget,
  requestId: fc.option(hostileString.map((s) => s.slice(0, 300).replace(/[^\x21-\x7e]/g, '')), { nil: undefined }),
});

const grpcMutation = fc.oneof(
  hostileString.map((s) => (m: Record<string, any>) => { m.model_name = s; }),
  hostileString.map((s) => (m: Record<string, any>) => { m.model_version = s; }),
  hostileString.map((s) => (m: Record<string, any>) => { m.id = s; }),
  hostileString.map((s) => (m: Record<string, any>) => { m.inputs[0].name = s; }),
  hostileString.map((s) => (m: Record<string, any>) => { m.inputs[0].datatype = s; }),
  fc.array(fc.oneof(fc.constant('5000000000'), fc.constant('-1'), fc.nat({ max: 20 }).map(String)), { maxLength: 6 }).map((s) => (m: Record<string, any>) => { m.inputs[0].shape = s; }),
  fc.array(fc.double(), { maxLength: 12 }).map((d) => (m: Record<string, any>) => { m.inputs[0].contents = { fp32_contents: d }; }),
  fc.uint8Array({ maxLength: 64 }).map((raw) => (m: Record<string, any>) => { delete m.inputs[0].contents; m.raw_input_contents = [Buffer.from(raw)]; }),
  fc.constantFrom(NaN, Infinity, -Infinity, 1e39).map((x) => (m: Record<string, any>) => { m.inputs[0].contents.fp32_contents[0] = x; }),
  fc.dictionary(hostileString, hostileString, { maxKeys: 3 }).map((p) => (m: Record<string, any>) => {
    m.parameters = Object.fromEntries(Object.entries(p).map(([k, v]) => [k, { string_param: v }]));
  }),
  fc.array(hostileString, { maxLength: 3 }).map((o) => (m: Record<string, any>) => { m.outputs = o.map((name) => ({ name })); }),
);

export const grpcCase = fc.record({
  mutations: fc.array(grpcMutation, { minLength: 1, maxLength: 3 }),
  /** Then, sometimes, the serialized bytes are damaged: flipped, cut or extended. */
  damage: fc.option(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }), cut: fc.boolean(), extra: fc.uint8Array({ maxLength: 16 }) }), { nil: undefined, freq: 3 }),
  requestId: fc.option(hostileString.map((s) => s.slice(0, 300).replace(/[^\x21-\x7e]/g, '')), { nil: undefined }),
});

const validGrpc = () => ({ model_name: 'news2', model_version: '', id: '', inputs: [{ name: 'vitals', datatype: 'FP32', shape: ['1', '7'], contents: { fp32_contents: [...VALID_ROW] } }], outputs: [], parameters: {} }) as Record<string, any>;

const ALLOWED_HTTP = new Set([200, 400, 401, 403, 404, 408, 413, 415]);
const ALLOWED_GRPC = new Set([grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED, grpc.status.RESOURCE_EXHAUSTED]);

export interface FuzzReport {
  seed: number;
  runs: { rest: number; grpc: number };
  statuses: Record<string, number>;
  violations: string[];
  canaryLeaks: string[];
  gatewayRssMb: { before: number; max: number; after: number };
  /** V8 heap in use after the run: RSS can stay high after a peak (the allocator keeps pages); this says whether objects are retained. */
  gatewayHeapUsedMbAfter: number;
}

async function gatewayRssMb(cluster: Cluster, metric = 'process_resident_memory_bytes'): Promise<number> {
  const metrics = await scrapeMetrics(cluster.gateway.ports.admin!);
  return Number(new RegExp(`^cdsgate_process_${metric} (\\S+)`, 'm').exec(metrics)?.[1] ?? NaN) / 2 ** 20;
}

export async function runFuzz(cluster: Cluster, o: { seed: number; restRuns: number; grpcRuns: number }): Promise<FuzzReport> {
  const token = await cluster.token(['clinician']);
  const statuses: Record<string, number> = {};
  const violations: string[] = [];
  const count = (key: string) => { statuses[key] = (statuses[key] ?? 0) + 1; };
  const before = await gatewayRssMb(cluster);
  let max = before;
  let n = 0;
  const sample = async () => { if (++n % 25 === 0) max = Math.max(max, await gatewayRssMb(cluster)); };

  await fc.assert(fc.asyncProperty(restCase, async (c) => {
    const body = validJson();
    for (const m of c.mutations) {
      try { m(body); } catch { /* a mutation that does not apply to this body: skip it */ }
    }
    let raw: Buffer = Buffer.from(expandDeep(JSON.stringify(body) ?? 'null'));
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (c.requestId) headers['x-request-id'] = c.requestId;
    switch (c.encoding.kind) {
      case 'truncated': raw = raw.subarray(0, c.encoding.cut % Math.max(1, raw.length)); break;
      case 'gzip': raw = gzipSync(raw); headers['content-encoding'] = 'gzip'; break;
      case 'corrupt-gzip': raw = gzipSync(raw); raw[Math.floor(raw.length / 2)] = raw[Math.floor(raw.length / 2)]! ^ 0xff; headers['content-encoding'] = 'gzip'; break;
      case 'type': headers['content-type'] = c.encoding.type; break;
      case 'proto-key': raw = Buffer.concat([Buffer.from('{"__proto__":{"polluted":true},"constructor":{"prototype":{}},'), raw.subarray(1)]); break;
      default: break;
    }
    const path = `/v2/models/${encodeURIComponent(c.target.model)}${c.target.version !== undefined ? `/versions/${encodeURIComponent(c.target.version)}` : ''}/infer`;
    const res = await httpsCall(cluster.gateway.ports.rest!, path, { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token, rawBody: raw, headers });
    count(`rest ${res.status}`);
    if (!ALLOWED_HTTP.has(res.status)) violations.push(`REST ${res.status} for ${path.slice(0, 80)}: ${res.body.slice(0, 200)}`);
    if (res.status !== 200) {
      let parsed: unknown;
      try { parsed = JSON.parse(res.body); } catch { /* below */ }
      const keys = parsed && typeof parsed === 'object' ? Object.keys(parsed) : [];
      if (keys.length !== 1 || keys[0] !== 'error') violations.push(`REST ${res.status} not in the documented form: ${res.body.slice(0, 200)}`);
      if (res.body.length > 1_000) violations.push(`REST ${res.status} error body of ${res.body.length} bytes`);
      if (res.headers['content-type'] !== 'application/json' && !String(res.headers['content-type']).startsWith('application/json')) violations.push(`REST ${res.status} content-type ${res.headers['content-type']}`);
    }
    await sample();
  }), { seed: o.seed, numRuns: o.restRuns, endOnFailure: false });

  const client = grpcClient(cluster.gateway.ports.grpc!, cluster.pki.ca, cluster.pki.apps.ehr);
  const raw = new grpc.Client(`127.0.0.1:${cluster.gateway.ports.grpc}`, grpc.credentials.createSsl(readFileSync(cluster.pki.ca), readFileSync(cluster.pki.apps.ehr.key), readFileSync(cluster.pki.apps.ehr.cert)), { 'grpc.ssl_target_name_override': 'localhost' });
  const serialize = inferenceServiceDefinition.ModelInfer!.requestSerialize as (m: unknown) => Buffer;
  try {
    await fc.assert(fc.asyncProperty(grpcCase, async (c) => {
      const message = validGrpc();
      for (const m of c.mutations) {
        try { m(message); } catch { /* not applicable */ }
      }
      let bytes: Buffer;
      try {
        bytes = serialize(message);
      } catch {
        bytes = serialize(validGrpc());
      }
      if (c.damage) {
        const d = c.damage;
        bytes = Buffer.from(bytes);
        if (bytes.length > 0) bytes[d.at % bytes.length] = d.byte;
        if (d.cut) bytes = bytes.subarray(0, d.at % Math.max(1, bytes.length));
        bytes = Buffer.concat([bytes, Buffer.from(d.extra)]);
      }
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${token}`);
      if (c.requestId) md.set('x-request-id', c.requestId);
      const code = await new Promise<number>((resolve) => {
        raw.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', (b: Buffer) => b, (b: Buffer) => b, bytes, md, { deadline: Date.now() + 20_000 },
          (err) => resolve(err ? err.code : grpc.status.OK));
      });
      count(`grpc ${grpc.status[code]}`);
      if (!ALLOWED_GRPC.has(code)) violations.push(`gRPC ${grpc.status[code]} for a mutated ModelInfer`);
      await sample();
    }), { seed: o.seed, numRuns: o.grpcRuns, endOnFailure: false });
  } finally {
    client.close();
    raw.close();
  }

  const after = await gatewayRssMb(cluster);
  max = Math.max(max, after);
  const places: Array<[string, string]> = [
    ['gateway log', cluster.gateway.logs.join('\n')],
    ...cluster.nodes.map((node, i): [string, string] => [`node-${i} log`, node.logs.join('\n')]),
    ['gateway metrics', await scrapeMetrics(cluster.gateway.ports.admin!)],
    ...(await Promise.all(cluster.nodes.map(async (node, i): Promise<[string, string]> => [`node-${i} metrics`, await scrapeMetrics(node.ports.admin!)]))),
    ['audit', auditText(join(cluster.dir, 'audit'))],
  ];
  const canaryLeaks = places.flatMap(([where, text]) => CANARIES.flatMap((c) => {
    const parts = [c, ...c.split(/[\s.@-]+/).filter((p) => p.length >= 6)];
    return parts.filter((p) => text.includes(p)).map((p) => `${where}: ${p}`);
  }));
  return { seed: o.seed, runs: { rest: o.restRuns, grpc: o.grpcRuns }, statuses, violations: [...new Set(violations)], canaryLeaks, gatewayRssMb: { before, max, after }, gatewayHeapUsedMbAfter: await gatewayRssMb(cluster, 'nodejs_heap_size_used_bytes') };
}
