import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CdsError } from '../../src/errors.js';
import { parseRestBody } from '../../src/kserve/rest-server.js';
import { inferRequestFromJson, inferRequestToRest, inferRequestToRestJson, inferResultFromRest, inferResultToRest, modelMetadataFromJson } from '../../src/kserve/rest-codec.js';
import type { InferRequest, InferResult } from '../../src/kserve/types.js';
import { RestNodeClient } from '../../src/routing/rest-node-client.js';
import { shouldRetry, countsAgainstNode } from '../../src/routing/retry-policy.js';
import { makeMaterial, waitFor, type Material } from '../helpers/cluster.js';

const request: InferRequest = {
  model: 'news2', version: '1', id: 'req-1', parameters: { priority: 2n, tag: 'x', exact: true }, outputs: ['score'],
  inputs: [
    { name: 'vitals', datatype: 'FP32', shape: [1, 7], data: new Float32Array([24, 93, 1, 105, 115, 0, 38.5]) },
    { name: 'note', datatype: 'BYTES', shape: [2], data: [Buffer.from('héllo'), Buffer.from('')] },
  ],
};
const result: InferResult = {
  model: 'news2', version: '1', id: 'req-1', parameters: {},
  outputs: [
    { name: 'score', datatype: 'INT64', shape: [1, 1], data: new BigInt64Array([7n]) },
    { name: 'band', datatype: 'BYTES', shape: [1], data: [Buffer.from('high')] },
  ],
};

/** Tensor data as plain values (a Buffer and a Uint8Array of the same bytes compare equal). */
const plain = (r: unknown) => JSON.parse(JSON.stringify(r, (_k, v) => {
  if (typeof v === 'bigint') return `${v}n`;
  if (ArrayBuffer.isView(v)) return [...(v as unknown as Iterable<unknown>)].map(String);
  if (v?.type === 'Buffer' && Array.isArray(v.data)) return v.data.map(String); // Buffer.toJSON runs before the replacer
  return v;
}));

describe('gateway → node REST codec (binary tensor data both ways)', () => {
  it('a request the gateway sends is read back by the node door as the same request', () => {
    const { body, headerLength } = inferRequestToRest(request);
    const parsed = parseRestBody(body, 'application/octet-stream', String(headerLength));
    const back = inferRequestFromJson(parsed.json, 'news2', '1', undefined, parsed.binary);
    expect(back).toEqual(request);
    // No tensor element travels as a JSON number.
    expect(JSON.stringify(parsed.json)).not.toContain('38.5');
  });

  it('asks for every output as binary data, naming the requested ones', () => {
    const { body, headerLength } = inferRequestToRest({ ...request, outputs: [] });
    const json = JSON.parse(body.subarray(0, headerLength).toString());
    expect(json.parameters.binary_data_output).toBe(true);
    expect(json.outputs).toBeUndefined();
  });

  it('a request sent as JSON (to a node without the binary extension) is read back by a KServe v2 JSON reader as the same request', () => {
    const body = inferRequestToRestJson(request, (reason) => new Error(reason));
    const parsed = parseRestBody(body, 'application/json', undefined);
    expect(parsed.binary).toBeUndefined();
    expect(plain(inferRequestFromJson(parsed.json, 'news2', '1'))).toEqual(plain(request));
    const json = JSON.parse(body.toString());
    expect(json.inputs[0].data).toEqual([24, 93, 1, 105, 115, 0, 38.5]);
    expect(json.outputs).toEqual([{ name: 'score' }]);
    expect(JSON.stringify(json)).not.toContain('binary_data');
  });

  it('JSON tensor data is exact: 64-bit integers past 2^53 as integer literals, FP16 and BOOL as values, a leading BOM kept', () => {
    const body = inferRequestToRestJson({
      model: 'm', parameters: {}, outputs: [],
      inputs: [
        { name: 'big', datatype: 'INT64', shape: [3], data: new BigInt64Array([2n ** 62n + 1n, -(2n ** 63n), 5n]) },
        { name: 'half', datatype: 'FP16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) },
        { name: 'flag', datatype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
        { name: 'text', datatype: 'BYTES', shape: [1], data: [Buffer.from('\ufeffnote')] },
      ],
    }, (reason) => new Error(reason)).toString();
    expect(body).toContain('"data":[4611686018427387905,-9223372036854775808,5]');
    expect(body).toContain('"data":[1,-2]');
    expect(body).toContain('"data":[true,false]');
    expect(JSON.parse(body).inputs[3].data).toEqual(['\ufeffnote']);
    expect(JSON.parse(body)).not.toHaveProperty('parameters');
  });

  it.each([
    ['a BYTES element that is not UTF-8', { name: 'note', datatype: 'BYTES' as const, shape: [2], data: [Buffer.from('ok'), Buffer.from([0xc3, 0x28])] }, /element 1 of BYTES tensor "note" is not UTF-8/],
    ['a NaN', { name: 'v', datatype: 'FP32' as const, shape: [2], data: new Float32Array([1, NaN]) }, /element 1 of FP32 tensor "v" is NaN/],
    ['an infinity in FP64', { name: 'v', datatype: 'FP64' as const, shape: [1], data: new Float64Array([-Infinity]) }, /element 0 of FP64 tensor "v" is -Infinity/],
  ])('JSON cannot carry %s exactly: refused, never altered', (_what, tensor, message) => {
    expect(() => inferRequestToRestJson({ model: 'm', parameters: {}, outputs: [], inputs: [tensor] }, (reason) => new Error(reason))).toThrow(message);
  });

  it('an optional field given as null is absent, as clients and servers built from typed models (MLServer, OpenAPI) write it', () => {
    const vitals = { name: 'vitals', datatype: 'FP32', shape: [1, 2], data: [1, 2], parameters: null };
    const fromNulls = inferRequestFromJson({ id: null, parameters: { content_type: null, headers: null, tag: 'x' }, outputs: null, inputs: [vitals] }, 'news2', undefined);
    expect(plain(fromNulls)).toEqual(plain(inferRequestFromJson({ parameters: { tag: 'x' }, inputs: [{ ...vitals, parameters: undefined }] }, 'news2', undefined)));
    expect(fromNulls.id).toBeUndefined();
    expect(fromNulls.outputs).toEqual([]);
    const answer = inferResultFromRest({ model_name: 'news2', model_version: null, id: null, parameters: null, outputs: [{ name: 'score', datatype: 'FP32', shape: [1], parameters: { binary_data_size: null }, data: [0.5] }] }, undefined);
    expect(answer).toMatchObject({ model: 'news2', version: '', id: undefined, parameters: {} });
    expect([...answer.outputs[0]!.data as Float32Array]).toEqual([0.5]);
    // Null is absent only where a field may be absent: a required one, or a value of the wrong kind, is still refused.
    expect(() => inferRequestFromJson({ inputs: null }, 'news2', undefined)).toThrow(/"inputs" must be a non-empty array/);
    expect(() => inferRequestFromJson({ inputs: [{ ...vitals, data: null }] }, 'news2', undefined)).toThrow(CdsError);
    expect(() => inferResultFromRest({ model_name: null, outputs: [] }, undefined)).toThrow(/model_name/);
    expect(() => inferRequestFromJson({ id: 5, inputs: [vitals] }, 'news2', undefined)).toThrow(/"id" must be a string/);
  });

  it('a node answer in binary or JSON form is read back as the same result', () => {
    const binary = inferResultToRest(result, { all: true, names: new Set() });
    if (!('body' in binary)) throw new Error('expected a binary answer');
    expect(inferResultFromRest(JSON.parse(binary.body.subarray(0, binary.headerLength).toString()), binary.body.subarray(binary.headerLength))).toEqual(result);
    const json = inferResultToRest(result, { all: false, names: new Set() });
    if (!('json' in json)) throw new Error('expected a JSON answer');
    expect(plain(inferResultFromRest(JSON.parse(JSON.stringify(json.json)), undefined))).toEqual(plain(result));
  });

  it.each([
    ['not an object', [], undefined],
    ['no model name', { outputs: [] }, undefined],
    ['outputs not an array', { model_name: 'm', outputs: {} }, undefined],
    ['binary size past the end', { model_name: 'm', outputs: [{ name: 'o', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } }] }, new Uint8Array(4)],
    ['bytes left over', { model_name: 'm', outputs: [{ name: 'o', datatype: 'FP32', shape: [1], parameters: { binary_data_size: 4 } }] }, new Uint8Array(8)],
    ['size that disagrees with the shape', { model_name: 'm', outputs: [{ name: 'o', datatype: 'FP32', shape: [3], parameters: { binary_data_size: 4 } }] }, new Uint8Array(4)],
    ['data that disagrees with the shape', { model_name: 'm', outputs: [{ name: 'o', datatype: 'FP32', shape: [3], data: [1] }] }, undefined],
  ])('a malformed node answer (%s) is an error, never a crash', (_what, json, binary) => {
    expect(() => inferResultFromRest(json, binary)).toThrow(CdsError);
  });

  it('model metadata is checked, variable dimensions kept', () => {
    expect(modelMetadataFromJson({ name: 'm', versions: ['1'], platform: 'onnxruntime_onnx', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 7] }], outputs: [] }))
      .toEqual({ name: 'm', versions: ['1'], platform: 'onnxruntime_onnx', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 7] }], outputs: [], parameters: {} });
    expect(() => modelMetadataFromJson({ name: 'm', inputs: [{ name: 'x', datatype: 'NOPE', shape: [1] }] })).toThrow(CdsError);
    expect(() => modelMetadataFromJson({ name: 'm', inputs: [{ name: 'x', datatype: 'FP32', shape: [-2] }] })).toThrow(CdsError);
  });

  it('model metadata from a server built on typed models: null lists are empty, structured parameters left out', () => {
    expect(modelMetadataFromJson({ name: 'm', versions: null, platform: null, inputs: null, outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1], parameters: null }], parameters: { content_type: 'np', headers: { a: 'b' }, sha256: 'ab12', nothing: null } }))
      .toEqual({ name: 'm', versions: [], platform: '', inputs: [], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }], parameters: { content_type: 'np', sha256: 'ab12' } });
  });
});

/**
 * A node that misbehaves in every way a node can, over real mTLS: the
 * gateway's client must turn each into a node failure (retryable, counted
 * against the node) or the node's client error, and never hang or crash.
 */
/** A request as the test node saw it, body included. */
type WithBody = IncomingMessage & { body: Buffer };

describe('REST node client against a broken node', () => {
  let material: Material;
  let server: Server;
  let client: RestNodeClient;
  let behave: (req: IncomingMessage, res: ServerResponse) => void = () => undefined;
  /** What the node's server metadata lists (GET /v2), and how often it was asked. */
  let extensions: string[] = ['binary_tensor_data'];
  let metadataStatus = 200;
  let metadataReads = 0;

  beforeAll(async () => {
    material = await makeMaterial(1);
    const node = material.pki.nodes[0]!;
    server = createServer({ cert: readFileSync(node.cert), key: readFileSync(node.key), ca: readFileSync(material.pki.ca), requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          (req as WithBody).body = Buffer.concat(chunks);
          if (req.method !== 'GET' || req.url !== '/v2') return behave(req, res);
          metadataReads++;
          res.writeHead(metadataStatus, { 'content-type': 'application/json' }).end(JSON.stringify(metadataStatus === 200 ? { name: 'test-node', version: '1', extensions } : { error: 'starting' }));
        });
      });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const tls = { ca: readFileSync(material.pki.ca), cert: readFileSync(material.pki.gatewayClient.cert), key: readFileSync(material.pki.gatewayClient.key) };
    client = new RestNodeClient({ id: 'node-0', address: `127.0.0.1:${(server.address() as AddressInfo).port}`, serverName: 'node-0.cdsgate.local', protocol: 'rest' }, tls, 64 * 1024);
  });
  afterAll(async () => {
    client?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });

  const infer = () => client.infer(request, Date.now() + 2_000, 'rid-1');
  const failure = async () => {
    const err = await infer().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CdsError);
    return err as CdsError;
  };

  it('a well-formed binary answer is read, and the request arrived as binary tensor data', async () => {
    let seen: Record<string, unknown> = {};
    behave = (req, res) => {
      seen = { type: req.headers['content-type'], header: req.headers['inference-header-content-length'], id: req.headers['x-request-id'], timeout: req.headers['request-timeout'], path: req.url };
      const answer = inferResultToRest(result, { all: true, names: new Set() });
      if (!('body' in answer)) throw new Error('expected binary');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(answer.headerLength) }).end(answer.body);
    };
    expect(await infer()).toEqual(result);
    expect(seen).toMatchObject({ type: 'application/octet-stream', id: 'rid-1', path: '/v2/models/news2/versions/1/infer' });
    expect(Number(seen.timeout)).toBeGreaterThan(0);
  });

  it.each([
    ['invalid JSON', (res: ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"model_name": ')],
    ['a header length past the body', (res: ServerResponse) => res.writeHead(200, { 'inference-header-content-length': '999' }).end('{}')],
    ['a header length that is not a number', (res: ServerResponse) => res.writeHead(200, { 'inference-header-content-length': '-1' }).end('{}')],
    ['an answer over the message limit', (res: ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ model_name: 'm', outputs: [], pad: 'x'.repeat(100_000) }))],
    ['HTTP 500', (res: ServerResponse) => res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"boom"}')],
    ['HTTP 503 with no body', (res: ServerResponse) => res.writeHead(503).end()],
    ['a connection reset mid-answer', (res: ServerResponse) => { res.writeHead(200, { 'content-length': '100' }); res.write('{"model'); res.socket?.destroy(); }],
  ])('%s is a node failure: retryable and counted against the node', async (_what, answer) => {
    behave = (_req, res) => answer(res);
    const err = await failure();
    expect(shouldRetry(err)).toBe(true);
    expect(countsAgainstNode(err)).toBe(true);
  });

  describe('a node whose server metadata does not list binary_tensor_data (a JSON-only KServe v2 server)', () => {
    let jsonClient: RestNodeClient;
    beforeAll(() => {
      const tls = { ca: readFileSync(material.pki.ca), cert: readFileSync(material.pki.gatewayClient.cert), key: readFileSync(material.pki.gatewayClient.key) };
      jsonClient = new RestNodeClient({ ...client.node, id: 'node-json' }, tls, 64 * 1024);
    });
    afterAll(() => { jsonClient?.close(); extensions = ['binary_tensor_data']; });

    it('gets tensors as JSON and answers JSON; its metadata is read once for concurrent requests', async () => {
      extensions = ['model_repository_extension'];
      const bodies: Array<{ type?: string; header?: string | string[]; body: unknown }> = [];
      behave = (req, res) => {
        bodies.push({ type: req.headers['content-type'], header: req.headers['inference-header-content-length'], body: JSON.parse((req as WithBody).body.toString()) });
        const answer = inferResultToRest(result, { all: false, names: new Set() });
        if (!('json' in answer)) throw new Error('expected JSON');
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer.json));
      };
      const before = metadataReads;
      const answers = await Promise.all([1, 2, 3].map((i) => jsonClient.infer(request, Date.now() + 2_000, `rid-json-${i}`)));
      for (const a of answers) expect(plain(a)).toEqual(plain(result));
      expect(metadataReads - before).toBe(1);
      expect(bodies).toHaveLength(3);
      for (const b of bodies) {
        expect(b).toMatchObject({ type: 'application/json', header: undefined });
        expect(b.body).toMatchObject({ id: 'req-1', outputs: [{ name: 'score' }], inputs: [{ name: 'vitals', data: [24, 93, 1, 105, 115, 0, 38.5] }, { name: 'note', data: ['héllo', ''] }] });
      }
    });

    it('metadata that cannot be read (a server error) sends JSON, which any server reads, and is asked again next time', async () => {
      const tls = { ca: readFileSync(material.pki.ca), cert: readFileSync(material.pki.gatewayClient.cert), key: readFileSync(material.pki.gatewayClient.key) };
      const fresh = new RestNodeClient({ ...client.node, id: 'node-restarting' }, tls, 64 * 1024);
      const types: Array<string | undefined> = [];
      behave = (req, res) => {
        types.push(req.headers['content-type']);
        const answer = inferResultToRest(result, { all: false, names: new Set() });
        if (!('json' in answer)) throw new Error('expected JSON');
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer.json));
      };
      try {
        extensions = ['binary_tensor_data'];
        metadataStatus = 503;
        await fresh.infer(request, Date.now() + 2_000, 'rid-restart-1');
        metadataStatus = 200;
        await fresh.infer(request, Date.now() + 2_000, 'rid-restart-2');
        await fresh.infer(request, Date.now() + 2_000, 'rid-restart-3');
        expect(types).toEqual(['application/json', 'application/octet-stream', 'application/octet-stream']);
      } finally {
        metadataStatus = 200;
        fresh.close();
      }
    });

    it('a value JSON cannot carry is the caller\'s error, named, not retried, and never sent', async () => {
      let sent = 0;
      behave = (_req, res) => { sent++; res.writeHead(500).end(); };
      const bad: InferRequest = { ...request, inputs: [{ name: 'note', datatype: 'BYTES', shape: [1], data: [Buffer.from([0xff])] }] };
      const err = await jsonClient.infer(bad, Date.now() + 2_000, 'rid-json-bad').then(() => undefined, (e: unknown) => e) as CdsError;
      expect(err).toBeInstanceOf(CdsError);
      expect(err.kind).toBe('invalid_argument');
      expect(err.message).toMatch(/node-json takes tensors as JSON only .*binary_tensor_data.*element 0 of BYTES tensor "note" is not UTF-8/);
      expect(shouldRetry(err)).toBe(false);
      expect(countsAgainstNode(err)).toBe(false);
      expect(sent).toBe(0);
    });
  });

  it('the node refusing the input is the caller\'s error, with the node\'s message, not retried', async () => {
    behave = (_req, res) => res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"vitals: expected shape [-1, 7]"}');
    const err = await failure();
    expect(err.kind).toBe('invalid_argument');
    expect(err.message).toContain('expected shape');
    expect(shouldRetry(err)).toBe(false);
  });

  it('an unknown model is 404, not retried', async () => {
    behave = (_req, res) => res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no such model"}');
    const err = await failure();
    expect(err.kind).toBe('not_found');
    expect(shouldRetry(err)).toBe(false);
  });

  it('a node that never answers is bounded by the deadline', async () => {
    behave = () => undefined; // holds the request open
    const err = await client.infer(request, Date.now() + 300, 'rid-2').then(() => undefined, (e: unknown) => e) as CdsError;
    expect(err.kind).toBe('deadline_exceeded');
  });

  it('a cancelled attempt (a hedge won elsewhere) says cancelled, not a node failure', async () => {
    behave = () => undefined;
    const controller = new AbortController();
    const pending = client.infer(request, Date.now() + 5_000, 'rid-3', controller.signal).then(() => undefined, (e: unknown) => e);
    setTimeout(() => controller.abort(), 50);
    const err = await pending as CdsError;
    expect(err.kind).toBe('cancelled');
    expect(countsAgainstNode(err)).toBe(false);
  });

  it('a cancelled attempt closes its connection, so the node sees the cancellation', async () => {
    let closed!: () => void;
    const nodeSawClose = new Promise<void>((resolve) => { closed = resolve; });
    behave = (_req, res) => { res.on('close', () => closed()); }; // holds the request open until the gateway gives up on it
    const controller = new AbortController();
    const pending = client.infer(request, Date.now() + 5_000, 'rid-4', controller.signal).then(() => undefined, (e: unknown) => e);
    setTimeout(() => controller.abort(), 50);
    expect(((await pending) as CdsError).kind).toBe('cancelled');
    await nodeSawClose;
  });

  it('an informational answer (103 Early Hints) before the real one is passed over', async () => {
    behave = (_req, res) => {
      res.writeEarlyHints({ link: '</x>; rel=preload' }, () => {
        const answer = inferResultToRest(result, { all: true, names: new Set() });
        if (!('body' in answer)) throw new Error('expected binary');
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(answer.headerLength) }).end(answer.body);
      });
    };
    expect(await infer()).toEqual(result);
  });

  it('probes: 200 ready, 503 not ready, 500 a failure', async () => {
    behave = (req, res) => res.writeHead(req.url === '/v2/health/ready' ? 200 : req.url === '/v2/models/a/ready' ? 503 : 500).end();
    expect(await client.serverReady(1_000)).toBe(true);
    expect(await client.modelReady('a', 1_000)).toBe(false);
    await expect(client.modelReady('b', 1_000)).rejects.toBeInstanceOf(CdsError);
  });

  it('a renewed client certificate takes over at once: no idle connection with the old one is reused, and a request in flight on one finishes', async () => {
    const pair = (p: { cert: string; key: string }) => ({ ca: readFileSync(material.pki.ca), cert: readFileSync(p.cert), key: readFileSync(p.key) });
    const fingerprint = (p: { cert: string }) => new X509Certificate(readFileSync(p.cert)).fingerprint256;
    const oldCertificate = fingerprint(material.pki.gatewayClient), newCertificate = fingerprint(material.pki.apps.ehr);
    // The connections this test's client opens, with the certificate each presented.
    const open = new Map<TLSSocket, string>();
    const track = (socket: TLSSocket) => {
      open.set(socket, socket.getPeerCertificate().fingerprint256);
      socket.once('close', () => open.delete(socket));
    };
    server.on('secureConnection', track);
    const renewed = new RestNodeClient({ id: 'node-0', address: client.node.address, serverName: 'node-0.cdsgate.local', protocol: 'rest' }, pair(material.pki.gatewayClient), 64 * 1024);
    const servedWith: string[] = [];
    let holdNext = false;
    let release: (() => void) | undefined;
    behave = (req, res) => {
      servedWith.push((req.socket as TLSSocket).getPeerCertificate().fingerprint256);
      const answer = inferResultToRest(result, { all: true, names: new Set() });
      if (!('body' in answer)) throw new Error('expected binary');
      const send = () => res.writeHead(200, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(answer.headerLength) }).end(answer.body);
      if (holdNext) {
        holdNext = false;
        release = send;
      } else send();
    };
    const call = (id: string) => renewed.infer(request, Date.now() + 10_000, id);
    try {
      // Two requests at once leave two idle keep-alive connections with the first certificate.
      await Promise.all([call('first-a'), call('first-b')]);
      expect([...open.values()].filter((f) => f === oldCertificate).length).toBeGreaterThanOrEqual(2);
      // One of them carries a request the node has not answered yet; the other is idle.
      holdNext = true;
      const inFlight = call('in-flight');
      await waitFor(() => release !== undefined, 10_000, 'the node to hold a request');

      renewed.reloadTls(pair(material.pki.apps.ehr));
      expect(await call('after-renewal')).toEqual(result);
      expect(servedWith.at(-1)).toBe(newCertificate);

      release!();
      expect(await inFlight).toEqual(result);
      expect(servedWith.filter((f) => f === oldCertificate)).toHaveLength(3);
      // The old pool closed its connections once its request was answered.
      await waitFor(() => ![...open.values()].includes(oldCertificate), 10_000, 'the connections with the old certificate to close');
      expect([...open.values()]).toContain(newCertificate);
    } finally {
      server.off('secureConnection', track);
      renewed.close();
    }
  });

  it('a node whose certificate lacks the configured name is refused', async () => {
    const tls = { ca: readFileSync(material.pki.ca), cert: readFileSync(material.pki.gatewayClient.cert), key: readFileSync(material.pki.gatewayClient.key) };
    const impostor = new RestNodeClient({ id: 'node-x', address: client.node.address, serverName: 'node-9.cdsgate.local', protocol: 'rest' }, tls, 64 * 1024);
    behave = (_req, res) => res.writeHead(200).end('{"model_name":"news2","outputs":[]}');
    try {
      const err = await impostor.infer(request, Date.now() + 2_000, 'rid-4').then(() => undefined, (e: unknown) => e) as CdsError;
      expect(err).toBeInstanceOf(CdsError);
      expect(shouldRetry(err)).toBe(true);
      expect(err.message).toMatch(/node-9|altname|certificate/i);
    } finally {
      impostor.close();
    }
  });
});
