import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import * as ort from 'onnxruntime-node';
import { loadWdbc } from '../../models/build/wdbc.js';
import { WDBC_CSV } from '../../models/build/build-all.js';
import { MODELS, requestRecords, rid, jsonLogs, grpcCall, grpcClient, httpsCall, renewGatewayClientAndRevokeOld, scrapeMetrics, startCluster, waitFor, type Cluster, type GrpcClient } from '../helpers/cluster.js';

let cluster: Cluster;
let clinician: string;
let rest: (path: string, o?: { token?: string; body?: unknown; identity?: { cert: string; key: string } | null; rawBody?: string; headersFirst?: boolean }) => ReturnType<typeof httpsCall>;
let grpcApp: GrpcClient;

beforeAll(async () => {
  // The gateway reaches node-0 over its REST door and node-1 over its gRPC door: every test below runs on both transports.
  cluster = await startCluster({ nodes: 2, nodeProtocols: ['rest', 'grpc'], gatewayPatch: (c) => { c.pools.default.balancing = 'round-robin'; } });
  clinician = await cluster.token(['clinician']);
  rest = (path, o = {}) => httpsCall(cluster.gateway.ports.rest!, path, {
    ca: cluster.pki.ca, identity: o.identity === null ? undefined : o.identity ?? cluster.pki.apps.ehr, token: o.token, body: o.body, rawBody: o.rawBody, headersFirst: o.headersFirst,
  });
  grpcApp = grpcClient(cluster.gateway.ports.grpc!, cluster.pki.ca, cluster.pki.apps.ehr);
});

afterAll(async () => {
  grpcApp?.close();
  await cluster?.stop();
});

async function runDirect(model: string, input: string, data: Float32Array, shape: number[]): Promise<Record<string, number[]>> {
  const session = await ort.InferenceSession.create(join(MODELS, model, '1', 'model.onnx'));
  const out = await session.run({ [input]: new ort.Tensor('float32', data, shape) });
  await session.release();
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Array.from(t.data as Float32Array, Number)]));
}

function seededImage(batch: number): Float32Array {
  const data = new Float32Array(batch * 224 * 224);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761) % 1000) / 1000;
  return data;
}

const rawOf = (values: Float32Array) => Buffer.from(values.buffer, values.byteOffset, values.byteLength);
const floatsOf = (b: Buffer) => Array.from(new Float32Array(new Uint8Array(b).buffer));

describe('gateway → node over REST (binary tensors) and over gRPC', () => {
  it('both transports give the same answers, metadata and errors', async () => {
    const body = (i: number) => ({ inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24 - (i % 5), 93, 1, 105, 115, 0, 38.5] }] });
    const answers = new Map<string, string[]>();
    for (let i = 0; i < 10; i++) {
      const res = await httpsCall(cluster.gateway.ports.rest!, '/v2/models/news2/infer', { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token: clinician, body: body(i), headers: { 'x-request-id': rid(`transport-${i}`) } });
      expect(res.status, res.body).toBe(200);
      const record = requestRecords(join(cluster.dir, 'audit')).find((r) => r.requestId === rid(`transport-${i}`))!;
      answers.set(record.node as string, [...(answers.get(record.node as string) ?? []), JSON.stringify({ i: i % 5, outputs: res.json().outputs })]);
    }
    // Round-robin: both nodes, hence both transports, served; the same input gave the same answer on either.
    expect([...answers.keys()].sort()).toEqual(['node-0', 'node-1']);
    const byInput = (node: string) => new Map(answers.get(node)!.map((a) => [JSON.parse(a).i, a]));
    for (const [i, a] of byInput('node-0')) if (byInput('node-1').has(i)) expect(byInput('node-1').get(i)).toBe(a);
    // Metadata, a node's refusal and an unknown version read the same whichever node answers.
    for (let i = 0; i < 2; i++) {
      const meta = await rest('/v2/models/news2', { token: clinician });
      expect(meta.status).toBe(200);
      expect(meta.json()).toMatchObject({ name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: [-1, 7] }] });
      const refused = await rest('/v2/models/news2/infer', { token: clinician, body: { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24, 93, 1, 105, 115, 0, 101.3] }] } });
      expect(refused.status).toBe(400);
      expect(refused.json().error).toMatch(/temperature\) is 101\.3\d*, outside the plausible range/);
      expect((await rest('/v2/models/news2/versions/7/infer', { token: clinician, body: body(0) })).status).toBe(404);
    }
  });
});

describe('inference through the gateway equals onnxruntime on the same file', () => {
  const wdbcRows = loadWdbc(WDBC_CSV).test.slice(0, 8).map((s) => s.x);
  const cases = [
    { model: 'news2', input: 'vitals', shape: [3, 7], data: Float32Array.from([24, 93, 1, 105, 115, 0, 38.5, 16, 97, 0, 120, 70, 0, 37, 8, 91, 0, 90, 40, 1, 35]), output: 'news2_score', roles: ['clinician'] },
    { model: 'wdbc-risk', input: 'features', shape: [wdbcRows.length, 30], data: Float32Array.from(wdbcRows.flat()), output: 'malignant_probability', roles: ['oncologist'] },
    { model: 'cxr-loadtest', input: 'image', shape: [2, 1, 224, 224], data: seededImage(2), output: 'probabilities', roles: ['loadtest'] },
  ];

  for (const c of cases) {
    it(`${c.model}: REST JSON and gRPC raw give the direct result`, async () => {
      const expected = await runDirect(c.model, c.input, c.data, c.shape);
      const token = await cluster.token(c.roles);
      const res = await rest(`/v2/models/${c.model}/infer`, { token, body: { id: 'req-1', inputs: [{ name: c.input, datatype: 'FP32', shape: c.shape, data: Array.from(c.data) }] } });
      expect(res.status, res.body).toBe(200);
      const body = res.json();
      expect(body).toMatchObject({ model_name: c.model, model_version: '1', id: 'req-1' });
      const out = body.outputs.find((o: { name: string }) => o.name === c.output);
      expect(out.data).toEqual(expected[c.output]);

      const reply = await grpcCall(grpcApp, 'ModelInfer', {
        model_name: c.model, inputs: [{ name: c.input, datatype: 'FP32', shape: c.shape }], raw_input_contents: [rawOf(c.data)],
      }, token);
      const index = reply.outputs.findIndex((o: { name: string }) => o.name === c.output);
      expect(index).toBeGreaterThanOrEqual(0);
      expect(floatsOf(reply.raw_output_contents[index])).toEqual(expected[c.output]);
    });
  }

  it('gRPC typed contents are accepted too, and a requested output subset is honoured', async () => {
    const reply = await grpcCall(grpcApp, 'ModelInfer', {
      model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], contents: { fp32_contents: [24, 93, 1, 105, 115, 0, 38.5] } }],
      outputs: [{ name: 'risk' }],
    }, clinician);
    expect(reply.outputs.map((o: { name: string }) => o.name)).toEqual(['risk']);
    expect(new BigInt64Array(new Uint8Array(reply.raw_output_contents[0]).buffer)[0]).toBe(3n);
  });
});

describe('mTLS at the doors', () => {
  it('REST: no client certificate → the handshake fails', async () => {
    await expect(rest('/v2/health/ready', { identity: null })).rejects.toThrow(/certificate required|socket hang up|ECONNRESET/);
  });

  it('REST: a certificate from an untrusted CA (even one naming the gateway) → the handshake fails', async () => {
    await expect(rest('/v2/health/ready', { identity: cluster.pki.untrustedClient })).rejects.toThrow(/unknown ca|socket hang up|ECONNRESET|alert/i);
  });

  it('gRPC: no certificate or an untrusted one → UNAVAILABLE, never a call', async () => {
    for (const identity of [undefined, cluster.pki.untrustedClient]) {
      const client = grpcClient(cluster.gateway.ports.grpc!, cluster.pki.ca, identity);
      await expect(grpcCall(client, 'ServerLive', {}, undefined, 3000)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      client.close();
    }
  });

  it('counts failed handshakes per door', async () => {
    const metrics = await scrapeMetrics(cluster.gateway.ports.admin!);
    // Counted by what was wrong, not as a reset connection.
    expect(metrics).toMatch(/cdsgate_tls_handshake_failures_total\{door="rest",reason="no_client_certificate"\} [1-9]/);
    expect(metrics).toMatch(/cdsgate_tls_handshake_failures_total\{door="rest",reason="untrusted_certificate"\} [1-9]/);
    expect(metrics).toMatch(/cdsgate_tls_handshake_failures_total\{door="grpc",reason="[a-z_]+"\} [1-9]/);
  });
});

describe('nodes accept only the gateway identity', () => {
  it('an application certificate from the same CA cannot call a node (gRPC and REST)', async () => {
    const node = cluster.nodes[0]!;
    const client = grpcClient(node.ports.grpc!, cluster.pki.ca, cluster.pki.apps.ehr, 'node-0.cdsgate.local');
    await expect(grpcCall(client, 'ModelInfer', { model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], contents: { fp32_contents: [1, 2, 3, 4, 5, 6, 7] } }] }))
      .rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: expect.stringMatching(/app\/ehr-integration is not allowed/) });
    client.close();
    const res = await httpsCall(node.ports.rest!, '/v2/health/ready', { ca: cluster.pki.ca, identity: cluster.pki.apps.smart });
    expect(res.status).toBe(403);
  });

  it('a certificate from another CA claiming the gateway identity is refused at the handshake', async () => {
    await expect(httpsCall(cluster.nodes[0]!.ports.rest!, '/v2/health/ready', { ca: cluster.pki.ca, identity: cluster.pki.untrustedClient })).rejects.toThrow();
  });

  it('the gateway certificate can (positive control)', async () => {
    const res = await httpsCall(cluster.nodes[0]!.ports.rest!, '/v2/health/ready', { ca: cluster.pki.ca, identity: cluster.pki.gatewayClient });
    expect(res.status).toBe(200);
  });
});

describe('errors map to the right status on both doors', () => {
  const vitals = { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [16, 97, 0, 120, 70, 0, 37] }] };
  const grpcVitals = { model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], contents: { fp32_contents: [16, 97, 0, 120, 70, 0, 37] } }] };

  it('401 without a token, with WWW-Authenticate; gRPC UNAUTHENTICATED', async () => {
    const res = await rest('/v2/models/news2/infer', { body: vitals });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="cdsgate"/);
    expect(res.json().error).toMatch(/missing Authorization/);
    await expect(grpcCall(grpcApp, 'ModelInfer', grpcVitals)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
  });

  it('401 for an expired token, before the body is read', async () => {
    // Expired ten minutes ago: well past the 60 s clock skew.
    const expired = await cluster.token(['clinician'], { issuedAt: Math.floor(Date.now() / 1000) - 1200, ttlSeconds: 600 });
    const res = await rest('/v2/models/news2/infer', { token: expired, body: { not: 'even a request' } });
    expect(res.status).toBe(401);
    expect(res.json().error).toBe('token has expired');
  });

  it('403 for a valid token without the role; gRPC PERMISSION_DENIED', async () => {
    const billing = await cluster.token(['billing']);
    const res = await rest('/v2/models/news2/infer', { token: billing, body: vitals });
    expect(res.status).toBe(403);
    await expect(grpcCall(grpcApp, 'ModelInfer', grpcVitals, billing)).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
  });

  it('404 for an unknown model; gRPC NOT_FOUND', async () => {
    const res = await rest('/v2/models/unknown-model/infer', { token: clinician, body: vitals });
    expect(res.status).toBe(404);
    expect(res.json().error).toMatch(/unknown-model/);
    await expect(grpcCall(grpcApp, 'ModelInfer', { ...grpcVitals, model_name: 'unknown-model' }, clinician)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    expect((await rest('/v2/repository/index', { token: clinician, body: {} })).status).toBe(404);
  });

  it('400 with an exact message for bad input; gRPC INVALID_ARGUMENT', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [1, 2, 3] }] }, /data has 3 elements but shape \[1,7\] needs 7/],
      [{ inputs: [{ name: 'vital', datatype: 'FP32', shape: [1, 7], data: [1, 2, 3, 4, 5, 6, 7] }] }, /has no input "vital"; its inputs are: vitals/],
      [{ inputs: [{ name: 'vitals', datatype: 'FP64', shape: [1, 7], data: [1, 2, 3, 4, 5, 6, 7] }] }, /datatype FP64, model "news2" expects FP32/],
      [{ inputs: [{ name: 'vitals', datatype: 'FLOAT', shape: [1, 7], data: [1, 2, 3, 4, 5, 6, 7] }] }, /unknown datatype "FLOAT"/],
      [{ inputs: [] }, /"inputs" must be a non-empty array/],
    ];
    for (const [body, message] of cases) {
      const res = await rest('/v2/models/news2/infer', { token: clinician, body });
      expect(res.status, res.body).toBe(400);
      expect(res.json().error).toMatch(message);
    }
    const bad = await rest('/v2/models/news2/infer', { token: clinician, rawBody: '{"inputs": [' });
    expect(bad.status).toBe(400);
    await expect(grpcCall(grpcApp, 'ModelInfer', { ...grpcVitals, inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 6], contents: { fp32_contents: [1, 2, 3, 4, 5, 6] } }] }, clinician))
      .rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/expects \[-1,7\]/) });
  });

  it('413 for a body over the limit', async () => {
    const res = await rest('/v2/models/news2/infer', { token: clinician, rawBody: `{"inputs":[${'0,'.repeat(4_500_000)}0]}`, headersFirst: true });
    expect(res.status).toBe(413);
    expect(res.json().error).toMatch(/larger than/);
  });

  it('the gateway stays up and serves after all of that', async () => {
    const res = await rest('/v2/models/news2/infer', { token: clinician, body: vitals });
    expect(res.status).toBe(200);
  });
});

describe('the gateway process runs no model', () => {
  // Linux's /proc lists every shared object a process has mapped: onnxruntime's library appears in the node's
  // (the positive control, so the check can see it) and must not in the gateway's, which runs no model.
  const mapped = (pid: number | undefined) => readFileSync(`/proc/${pid}/maps`, 'utf8');
  it.runIf(process.platform === 'linux')('onnxruntime is loaded by the nodes and not by the gateway', () => {
    expect(mapped(cluster.nodes[0]!.child.pid)).toMatch(/libonnxruntime/);
    expect(mapped(cluster.gateway.child.pid)).not.toMatch(/onnxruntime/);
  });
});

describe('health, metadata, observability', () => {
  it('serves health and metadata', async () => {
    expect((await rest('/v2/health/live')).status).toBe(200);
    expect((await rest('/v2/health/ready')).status).toBe(200);
    expect((await rest('/v2')).json()).toMatchObject({ name: 'cdsgate' });
    const meta = await rest('/v2/models/news2', { token: clinician });
    expect(meta.json()).toMatchObject({ name: 'news2', platform: 'onnx_onnxv1', inputs: [{ name: 'vitals', datatype: 'FP32', shape: [-1, 7] }] });
    expect(meta.json().parameters).toEqual({ execution_provider: 'cpu', sha256: JSON.parse(readFileSync(join(MODELS, 'news2', 'config.json'), 'utf8')).versions['1'].sha256 });
    expect((await rest('/v2/models/news2/versions/1/ready', { token: clinician })).status).toBe(200);
    expect((await grpcCall(grpcApp, 'ServerReady', {})).ready).toBe(true);
    expect((await grpcCall(grpcApp, 'ModelMetadata', { name: 'wdbc-risk' }, clinician)).inputs[0].shape).toEqual(['-1', '30']);
  });

  it('echoes a plain request id and replaces a hostile one', async () => {
    const res = await httpsCall(cluster.gateway.ports.rest!, '/v2/health/live', { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr });
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('exposes request, breaker and readiness metrics on the admin port', async () => {
    const metrics = await scrapeMetrics(cluster.gateway.ports.admin!);
    expect(metrics).toMatch(/cdsgate_requests_total\{route="infer",model="news2",door="rest",status="200"\} [1-9]/);
    expect(metrics).toMatch(/cdsgate_requests_total\{route="ModelInfer",model="news2",door="grpc",status="OK"\} [1-9]/);
    expect(metrics).toMatch(/cdsgate_request_duration_seconds_bucket\{le="0.1",route="infer",model="news2",door="rest",status="200"\}/);
    expect(metrics).toMatch(/cdsgate_node_breaker_state\{node="node-0"\} 0/);
    expect(metrics).toMatch(/cdsgate_node_ready\{node="node-1"\} 1/);
    // Tokens verified in full, not served from the cache: where depends on what else was in progress then.
    expect(metrics).toMatch(/cdsgate_token_signature_checks_total\{where="(loop|pool)"\} [1-9]/);
  });

  it('logs one line per request with subject and node, and never a token or payload', async () => {
    const marker = 'PAYLOAD-MARKER-7f3a';
    const token = await cluster.token(['clinician']);
    const bad = await rest('/v2/models/news2/infer', { token, body: { id: marker, inputs: [{ name: marker, datatype: 'BYTES', shape: [1], data: [marker] }] } });
    const good = await rest('/v2/models/news2/infer', { token, body: { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [16, 97, 0, 120, 70, 0, 37.123] }] } });
    expect([bad.status, good.status]).toEqual([400, 200]);
    // Lines cross a pipe: wait for both requests' own lines before asserting anything about the log.
    const lineFor = (res: { headers: Record<string, unknown> }) => jsonLogs(cluster.gateway).find((l) => l.msg === 'request' && l.requestId === res.headers['x-request-id']);
    await waitFor(() => lineFor(bad) !== undefined && lineFor(good) !== undefined, 5000, 'both request log lines');
    const logs = [...cluster.gateway.logs, ...cluster.nodes.flatMap((n) => n.logs)].join('\n');
    const signature = token.split('.')[2]!;
    expect(logs).not.toContain(signature);
    expect(logs).not.toContain(clinician.split('.')[2]!);
    expect(logs).not.toContain(marker);
    expect(logs).not.toContain('37.123');
    expect(lineFor(bad)).toMatchObject({ status: '400', error: 'invalid_argument' });
    expect(lineFor(bad)).not.toHaveProperty('reason');
    expect(lineFor(good)).toMatchObject({ door: 'rest', model: 'news2', subject: 'test-user', node: expect.stringMatching(/^node-[01]$/), requestId: expect.any(String), latencyMs: expect.any(Number) });
  });
});

describe('certificate renewal (run last: it revokes the gateway client certificate the cluster started with)', () => {
  it('a renewed gateway client certificate reaches the REST node and the gRPC node alike', async () => {
    await renewGatewayClientAndRevokeOld(cluster);
    const nodes = new Set<string>();
    // Round-robin over the two nodes: each request after the revocation had to open a connection with the new certificate.
    for (let i = 0; i < 6; i++) {
      const res = await httpsCall(cluster.gateway.ports.rest!, '/v2/models/news2/infer', { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token: clinician, body: { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24, 93, 1, 105, 115, 0, 38.5] }] }, headers: { 'x-request-id': rid(`renewed-${i}`) } });
      expect(res.status, res.body).toBe(200);
      nodes.add(requestRecords(join(cluster.dir, 'audit')).find((r) => r.requestId === rid(`renewed-${i}`))!.node as string);
    }
    expect([...nodes].sort()).toEqual(['node-0', 'node-1']);
  });
});
