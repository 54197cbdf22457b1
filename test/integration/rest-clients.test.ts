import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { httpsCall, startCluster, type Cluster } from '../helpers/cluster.js';

/**
 * Requests built exactly as tritonclient.http builds them (tritonclient/http/_utils.py
 * `_get_inference_request` and `InferResult`): Python's json.dumps header (", " and ": "
 * separators), its length in Inference-Header-Content-Length, the raw tensors after
 * it, no Content-Type, and binary outputs unless outputs are named with binary_data
 * false. The answer is parsed the way tritonclient parses it.
 */
let cluster: Cluster;
let token: string;
const VITALS = [24, 93, 1, 105, 115, 0, 38.5];

beforeAll(async () => {
  cluster = await startCluster({ nodes: 1 });
  token = await cluster.token(['clinician']);
}, 60_000);
afterAll(async () => { await cluster?.stop(); });

/** Python's json.dumps with its default separators. */
function pyJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pyJson).join(', ')}]`;
  if (value && typeof value === 'object') return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${pyJson(v)}`).join(', ')}}`;
  if (value === true) return 'true';
  if (value === false) return 'false';
  return JSON.stringify(value);
}

function tritonRequest(inputs: Array<{ name: string; datatype: string; shape: number[]; raw: Buffer }>, outputs?: Array<{ name: string; binary: boolean }>) {
  const infer: Record<string, unknown> = {};
  const parameters: Record<string, unknown> = {};
  infer.inputs = inputs.map((i) => ({ name: i.name, shape: i.shape, datatype: i.datatype, parameters: { binary_data_size: i.raw.length } }));
  if (outputs) infer.outputs = outputs.map((o) => ({ name: o.name, parameters: { binary_data: o.binary } }));
  else parameters.binary_data_output = true;
  if (Object.keys(parameters).length) infer.parameters = parameters;
  const json = pyJson(infer);
  return { body: Buffer.concat([Buffer.from(json), ...inputs.map((i) => i.raw)]), headers: { 'Inference-Header-Content-Length': String(json.length) } };
}

/** POST without a Content-Type header (as tritonclient does), raw answer back. */
function post(path: string, body: Buffer, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port: cluster.gateway.ports.rest!, path, method: 'POST', agent: false, servername: 'localhost',
      ca: readFileSync(cluster.pki.ca), cert: readFileSync(cluster.pki.apps.ehr.cert), key: readFileSync(cluster.pki.apps.ehr.key),
      headers: { authorization: `Bearer ${token}`, 'content-length': body.length, ...headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** tritonclient's InferResult: JSON up to Inference-Header-Content-Length, then each binary output in order. */
function parseTritonResult(res: { headers: Record<string, string | string[] | undefined>; body: Buffer }) {
  const headerLength = res.headers['inference-header-content-length'];
  const json = JSON.parse((headerLength === undefined ? res.body : res.body.subarray(0, Number(headerLength))).toString('utf8')) as { outputs: Array<{ name: string; datatype: string; shape: number[]; data?: unknown[]; parameters?: { binary_data_size?: number } }> };
  let offset = Number(headerLength ?? res.body.length);
  const outputs = new Map<string, number[]>();
  for (const o of json.outputs) {
    if (o.parameters?.binary_data_size !== undefined) {
      const bytes = res.body.subarray(offset, offset + o.parameters.binary_data_size);
      offset += o.parameters.binary_data_size;
      const copy = new Uint8Array(bytes);
      outputs.set(o.name, o.datatype === 'INT64' ? Array.from(new BigInt64Array(copy.buffer), Number) : Array.from(new Float32Array(copy.buffer)));
    } else {
      outputs.set(o.name, o.data as number[]);
    }
  }
  return outputs;
}

const fp32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer);

describe('tritonclient.http-shaped requests, unchanged', () => {
  it('binary input, all outputs binary (no outputs named): same numbers as the JSON path', async () => {
    const { body, headers } = tritonRequest([{ name: 'vitals', datatype: 'FP32', shape: [1, 7], raw: fp32(VITALS) }]);
    const res = await post('/v2/models/news2/infer', body, headers);
    expect(res.status, res.body.toString()).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    const binary = parseTritonResult(res);
    const viaJson = await httpsCall(cluster.gateway.ports.rest!, '/v2/models/news2/infer', { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token, body: { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: VITALS }] } });
    for (const o of viaJson.json().outputs as Array<{ name: string; data: number[] }>) expect(binary.get(o.name), o.name).toEqual(o.data);
    expect(binary.get('news2_score')).toEqual([10]);
  });

  it('named outputs: binary where asked, JSON where not', async () => {
    const { body, headers } = tritonRequest([{ name: 'vitals', datatype: 'FP32', shape: [2, 7], raw: fp32([...VITALS, 16, 97, 0, 120, 70, 0, 36.8]) }], [{ name: 'news2_score', binary: true }, { name: 'risk', binary: false }]);
    const res = await post('/v2/models/news2/infer', body, headers);
    expect(res.status, res.body.toString()).toBe(200);
    const outputs = parseTritonResult(res);
    expect(outputs.get('news2_score')).toEqual([10, 0]);
    expect(outputs.get('risk')).toEqual([3, 0]);
  });

  it('a JSON request without Content-Type is read as JSON; errors are exactly application/json', async () => {
    const res = await post('/v2/models/news2/infer', Buffer.from(JSON.stringify({ inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: VITALS }] })), {});
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    const bad = await post('/v2/models/news2/infer', Buffer.from('{"inputs": []}'), {});
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toBe('application/json');
  });

  it('binary data is held to the same limits and errors as JSON', async () => {
    const cases: Array<[Buffer, Record<string, string>, RegExp]> = [
      // binary_data_size larger than what follows
      [tritonRequest([{ name: 'vitals', datatype: 'FP32', shape: [1, 7], raw: fp32(VITALS) }]).body.subarray(0, -4), tritonRequest([{ name: 'vitals', datatype: 'FP32', shape: [1, 7], raw: fp32(VITALS) }]).headers, /only 24 bytes of binary data follow/],
      // bytes that belong to no input
      [Buffer.concat([tritonRequest([{ name: 'vitals', datatype: 'FP32', shape: [1, 7], raw: fp32(VITALS) }]).body, Buffer.alloc(8)]), tritonRequest([{ name: 'vitals', datatype: 'FP32', shape: [1, 7], raw: fp32(VITALS) }]).headers, /belong to no input/],
      // a size that does not match the shape
      [tritonRequest([{ name: 'vitals', datatype: 'FP32', shape: [1, 6], raw: fp32(VITALS) }]).body, tritonRequest([{ name: 'vitals', datatype: 'FP32', shape: [1, 6], raw: fp32(VITALS) }]).headers, /raw contents hold 28 bytes but FP32 shape \[1,6\] needs 24/],
      // a hostile shape, refused before anything is allocated
      [tritonRequest([{ name: 'vitals', datatype: 'FP32', shape: [1e9, 7], raw: fp32(VITALS) }]).body, tritonRequest([{ name: 'vitals', datatype: 'FP32', shape: [1e9, 7], raw: fp32(VITALS) }]).headers, /above this server's limit/],
      // a header length past the body
      [Buffer.from('{}'), { 'Inference-Header-Content-Length': '999' }, /no larger than the body/],
      // octet-stream without the header length
      [fp32(VITALS), { 'Content-Type': 'application/octet-stream' }, /needs an Inference-Header-Content-Length/],
    ];
    for (const [body, headers, message] of cases) {
      const res = await post('/v2/models/news2/infer', body, headers);
      expect(res.status, res.body.toString()).toBe(400);
      expect(JSON.parse(res.body.toString()).error).toMatch(message);
    }
  });
});
