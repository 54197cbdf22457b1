import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, rid, startCluster, type Cluster } from '../helpers/cluster.js';

/**
 * A gRPC client built from the KServe v2 schema exactly as KServe publishes
 * it (kserve/kserve docs/predict-api/v2/grpc_predict_v2.proto): cdsgate's
 * proto is that file plus three additions — Triton's double_param and
 * uint64_param in InferParameter, and a parameters map (field 100) on the two
 * metadata responses. The test removes them, generates a client from what is
 * left (proto-loader, as grpcio-tools or any stub generator would), and
 * checks it works unchanged: the additions are invisible to it.
 */
let cluster: Cluster;
let client: grpc.Client & Record<string, (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: any) => void) => void>;
let token: string;

function officialSchema(): string {
  const ours = readFileSync(join(ROOT, 'proto', 'grpc_predict_v2.proto'), 'utf8');
  const official = ours.split('\n').filter((line) => !/parameters = 100;|double_param = 4;|uint64_param = 5;/.test(line)).join('\n');
  expect(ours.split('\n').length - official.split('\n').length).toBe(4);
  const dir = mkdtempSync(join(tmpdir(), 'kserve-proto-'));
  writeFileSync(join(dir, 'grpc_predict_v2.proto'), official);
  return join(dir, 'grpc_predict_v2.proto');
}

beforeAll(async () => {
  cluster = await startCluster({ nodes: 1 });
  const definition = protoLoader.loadSync(officialSchema(), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } };
  client = new pkg.inference.GRPCInferenceService(
    `127.0.0.1:${cluster.gateway.ports.grpc}`,
    grpc.credentials.createSsl(readFileSync(cluster.pki.ca), readFileSync(cluster.pki.apps.ehr.key), readFileSync(cluster.pki.apps.ehr.cert)),
    { 'grpc.ssl_target_name_override': 'localhost' },
  ) as typeof client;
  token = await cluster.token(['clinician']);
}, 60_000);
afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

const call = (method: string, request: unknown, withToken = true) => new Promise<any>((resolve, reject) => {
  const md = new grpc.Metadata();
  if (withToken) md.set('authorization', `Bearer ${token}`);
  md.set('x-request-id', rid(method));
  client[method]!.call(client, request, md, (err, res) => (err ? reject(err) : resolve(res)));
});

describe('a client generated from the official KServe v2 proto', () => {
  it('health and server metadata', async () => {
    expect(await call('ServerLive', {}, false)).toEqual({ live: true });
    expect(await call('ServerReady', {}, false)).toEqual({ ready: true });
    const metadata = await call('ServerMetadata', {}, false);
    expect(metadata.extensions).toContain('binary_tensor_data');
  });

  it('model metadata and readiness', async () => {
    const m = await call('ModelMetadata', { name: 'news2', version: '' });
    expect(m.name).toBe('news2');
    expect(m.inputs).toEqual([{ name: 'vitals', datatype: 'FP32', shape: ['-1', '7'] }]);
    expect((await call('ModelReady', { name: 'news2', version: '' })).ready).toBe(true);
  });

  it('inference with typed contents and with raw contents, and KServe parameters', async () => {
    const vitals = [24, 93, 1, 105, 115, 0, 38.5];
    const typed = await call('ModelInfer', {
      model_name: 'news2', id: 'kserve-client-1', parameters: { note: { string_param: 'x' }, n: { int64_param: '7' }, flag: { bool_param: true } },
      inputs: [{ name: 'vitals', datatype: 'FP32', shape: ['1', '7'], contents: { fp32_contents: vitals } }],
    });
    expect(typed.id).toBe('kserve-client-1');
    const scoreAt = typed.outputs.findIndex((o: { name: string }) => o.name === 'news2_score');
    const raw = Buffer.from(typed.raw_output_contents[scoreAt]);
    expect(raw.readFloatLE(0)).toBe(10);
    const rawIn = await call('ModelInfer', {
      model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: ['1', '7'] }], raw_input_contents: [Buffer.from(Float32Array.from(vitals).buffer)],
      outputs: [{ name: 'risk' }],
    });
    expect(rawIn.outputs.map((o: { name: string }) => o.name)).toEqual(['risk']);
    expect(Buffer.from(rawIn.raw_output_contents[0]).readBigInt64LE(0)).toBe(3n);
  });

  it('errors arrive as gRPC status codes the client understands', async () => {
    await expect(call('ModelInfer', { model_name: 'news2', inputs: [] }, false)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    await expect(call('ModelInfer', { model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: ['1', '6'], contents: { fp32_contents: [1, 2, 3, 4, 5, 6] } }] }))
      .rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });
});
