import type { TLSSocket } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { connect as http2Connect, constants as h2 } from 'node:http2';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import {
  auditRecords, requestRecords, grpcCall, grpcClient, httpsCall, renewGatewayClientAndRevokeOld, rid, runCliAsync, scrapeMetrics, startCluster, waitFor, type Cluster, type GrpcClient, type Identity,
} from '../helpers/cluster.js';
import { rawTls as rawTlsTo, untilClosed } from '../helpers/raw-tls.js';

/**
 * Attacks and careless clients against real processes over real mTLS: every
 * refusal is clean (the one error form, the right status), bounded (in time
 * and memory), recorded, and leaves no caller's text in any log, metric or
 * audit record. No assertion here depends on how fast the machine is.
 */
let cluster: Cluster;
let app: GrpcClient;
let token: string;
const VITALS = { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24, 93, 1, 105, 115, 0, 38.5] }] };
const grpcVitals = { model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: ['1', '7'], contents: { fp32_contents: [24, 93, 1, 105, 115, 0, 38.5] } }] };

beforeAll(async () => {
  cluster = await startCluster({
    nodes: 2,
    gatewayPatch: (c) => {
      Object.assign(c.gateway.rest, { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000, lingerMs: 1_000 });
      c.gateway.tls.handshakeTimeoutMs = 1_000;
      c.gateway.defaultTimeoutMs = 3_000;
    },
  });
  app = grpcClient(cluster.gateway.ports.grpc!, cluster.pki.ca, cluster.pki.apps.ehr);
  token = await cluster.token(['clinician']);
}, 60_000);

afterAll(async () => {
  app?.close();
  await cluster?.stop();
});

const rest = (path: string, o: Parameters<typeof httpsCall>[2] extends infer T ? Partial<T> : never = {}) =>
  httpsCall(cluster.gateway.ports.rest!, path, { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token, ...o });

/** A raw mTLS connection to the REST door, to send exactly the bytes an attacker would. */
const rawTls = (identity: Identity = cluster.pki.apps.ehr, extra: Record<string, unknown> = {}): Promise<TLSSocket> =>
  rawTlsTo(cluster.gateway.ports.rest!, cluster.pki.ca, identity, extra);

/**
 * One ModelInfer over a bare HTTP/2 stream, to send what grpc-js clients will
 * not: a stream left open with no message (`frame` undefined), or a frame
 * built by hand. Resolves with the grpc-status the server ends it with.
 */
async function rawGrpcCall(headers: Record<string, string>, frame: Buffer | undefined): Promise<number> {
  const session = http2Connect(`https://127.0.0.1:${cluster.gateway.ports.grpc}`, {
    ca: readFileSync(cluster.pki.ca), cert: readFileSync(cluster.pki.apps.ehr.cert), key: readFileSync(cluster.pki.apps.ehr.key), servername: 'localhost',
  });
  try {
    const stream = session.request({
      [h2.HTTP2_HEADER_METHOD]: 'POST', [h2.HTTP2_HEADER_PATH]: '/inference.GRPCInferenceService/ModelInfer',
      'content-type': 'application/grpc', te: 'trailers', ...headers,
    }, { endStream: false });
    if (frame) stream.end(frame);
    const trailers = await new Promise<Record<string, unknown>>((resolve) => {
      stream.on('trailers', (t) => resolve(t));
      stream.on('response', (h) => { if (h['grpc-status']) resolve(h); });
      stream.resume();
    });
    return Number(trailers['grpc-status']);
  } finally {
    session.destroy();
  }
}

async function allNodesReady(): Promise<boolean> {
  const status = await (await fetch(`http://127.0.0.1:${cluster.gateway.ports.admin}/status`)).json() as { nodes: Array<{ state: string }> };
  return status.nodes.length === 2 && status.nodes.every((n) => n.state === 'ready');
}

const statusOf = (response: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1]);
const bodyOf = (response: string) => JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as { error: string };

describe('nothing is read before authentication, and nothing waits forever', () => {
  it('a request without a token that declares 4 MiB and sends none of it gets its 401 at once, and the connection closes', async () => {
    const socket = await rawTls();
    const answer = untilClosed(socket);
    socket.write('POST /v2/models/news2/infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\n\r\n');
    const response = await answer;
    expect(statusOf(response)).toBe(401);
    expect(response).toMatch(/\r\nconnection: close\r\n/i);
    expect(bodyOf(response).error).toMatch(/missing Authorization/);
  });

  it('a body that stops arriving gets 408 in the documented form and its connection closed', async () => {
    const socket = await rawTls();
    const answer = untilClosed(socket);
    socket.write(`POST /v2/models/news2/infer HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"inp`);
    const response = await answer;
    expect(statusOf(response)).toBe(408);
    expect(bodyOf(response).error).toMatch(/did not arrive in time/);
  });

  it('headers that never finish get 408 and the connection closed', async () => {
    const socket = await rawTls();
    const answer = untilClosed(socket);
    socket.write('GET /v2/health/ready HTTP/1.1\r\nHost: localhost\r\nX-Slow: ');
    expect(statusOf(await answer)).toBe(408);
  });

  it('a connection that completes its handshake and then sends nothing gets 408 and is closed (headers time counts from the connection)', async () => {
    const socket = await rawTls();
    expect(statusOf(await untilClosed(socket))).toBe(408);
  });

  it('a TCP connection that never starts its TLS handshake is closed', async () => {
    const socket = netConnect({ host: '127.0.0.1', port: cluster.gateway.ports.rest! });
    await untilClosed(socket);
    const grpcSocket = netConnect({ host: '127.0.0.1', port: cluster.gateway.ports.grpc! });
    await untilClosed(grpcSocket);
  });

  it('a gRPC call whose message never arrives ends with DEADLINE_EXCEEDED', async () => {
    // Headers only: the stream stays open and no message ever follows.
    const status = await rawGrpcCall({ authorization: `Bearer ${token}` }, undefined);
    expect(status).toBe(grpc.status.DEADLINE_EXCEEDED);
  });

  it.each(['REST', 'gRPC'])('TLS renegotiation is refused on the %s door', async (door) => {
    const socket = await rawTls(cluster.pki.apps.ehr, door === 'REST' ? { maxVersion: 'TLSv1.2' } : { maxVersion: 'TLSv1.2', port: cluster.gateway.ports.grpc!, ALPNProtocols: ['h2'] });
    const closed = untilClosed(socket);
    // Refused: the server answers the renegotiation with an error and closes; it never completes.
    const outcome = await new Promise<string>((resolve) => {
      const ok = socket.renegotiate({}, (err) => resolve(err ? 'refused' : 'renegotiated'));
      if (!ok) resolve('refused');
      void closed.then(() => resolve('refused'));
    });
    socket.destroy();
    expect(outcome).toBe('refused');
  });

  it('a TLS 1.2 client offering only CBC/SHA-1 suites gets no connection on either door', async () => {
    const cbcOnly = { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA' };
    await expect(rawTls(cluster.pki.apps.ehr, cbcOnly)).rejects.toThrow();
    await expect(rawTls(cluster.pki.apps.ehr, { ...cbcOnly, port: cluster.gateway.ports.grpc!, ALPNProtocols: ['h2'] })).rejects.toThrow();
    // The same client offering an AEAD suite is served: it is the suite that is refused, not TLS 1.2.
    const aead = await rawTls(cluster.pki.apps.ehr, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    expect(aead.getCipher().name).toBe('ECDHE-ECDSA-AES128-GCM-SHA256');
    aead.destroy();
  });
});

describe('hostile shapes and payloads are refused before work, on both doors', () => {
  const shapes: Array<[string, number[]]> = [['FP32', [1_000_000_000, 7]], ['BYTES', [5_000_000_000]], ['INT64', [1_073_741_824, 7]], ['BOOL', [3e9, 2]], ['FP32', [1e8, 7]], ['FP64', [2_147_483_648]]];

  it.each(shapes)('REST %s %j → 400 naming the limit', async (datatype, shape) => {
    const res = await rest('/v2/models/news2/infer', { body: { inputs: [{ name: 'vitals', datatype, shape, data: [1, 2, 3, 4, 5, 6, 7] }] } });
    expect(res.status, res.body).toBe(400);
    expect(res.json().error).toMatch(/above this server's limit/);
  });

  it('gRPC raw BYTES [5000000000] → INVALID_ARGUMENT, not INTERNAL', async () => {
    await expect(grpcCall(app, 'ModelInfer', { model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'BYTES', shape: ['5000000000'] }], raw_input_contents: [Buffer.alloc(8)] }, token))
      .rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });

  it('JSON nested 10,000 arrays deep is a client error, not a 500', async () => {
    const res = await rest('/v2/models/news2/infer', { rawBody: `{"inputs":[{"name":"vitals","datatype":"FP32","shape":[1,7],"data":${'['.repeat(10_000)}1${']'.repeat(10_000)}}]}` });
    expect(res.status, res.body).toBe(400);
  });

  it('gRPC messages that do not decode → INVALID_ARGUMENT, counted and audited', async () => {
    const raw = new grpc.Client(`127.0.0.1:${cluster.gateway.ports.grpc}`, grpc.credentials.createSsl(readFileSync(cluster.pki.ca), readFileSync(cluster.pki.apps.ehr.key), readFileSync(cluster.pki.apps.ehr.cert)), { 'grpc.ssl_target_name_override': 'localhost' });
    const send = (bytes: Buffer, id: string) => new Promise<grpc.ServiceError>((resolve, reject) => {
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${token}`);
      md.set('x-request-id', rid(id));
      raw.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', (b: Buffer) => b, (b: Buffer) => b, bytes, md, { deadline: Date.now() + 10_000 }, (err) => (err ? resolve(err) : reject(new Error('answered'))));
    });
    try {
      const cases: Array<[string, Buffer]> = [
        ['garbage', Buffer.from('this is not protobuf at all \xff\xff\xff')],
        ['truncated', Buffer.from([0x0a, 0x20, 0x6e, 0x65])],
        ['long-varint', Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])],
      ];
      for (const [id, bytes] of cases) {
        const err = await send(bytes, id);
        expect(err.code, id).toBe(grpc.status.INVALID_ARGUMENT);
        expect(err.details).toMatch(/does not decode/);
      }
    } finally {
      raw.close();
    }
    const records = auditRecords(join(cluster.dir, 'audit'));
    for (const id of ['garbage', 'truncated', 'long-varint']) {
      expect(records.find((r) => r.requestId === rid(id)), id).toMatchObject({ status: 'invalid_argument', code: 400, principal: { sub: 'test-user' } });
    }
  });

  it('a gRPC message whose gzip is corrupt → INVALID_ARGUMENT, audited', async () => {
    const corrupt = gzipSync(Buffer.from('0a056e65777332', 'hex'));
    corrupt[corrupt.length - 6]! ^= 0xff; // break the CRC
    const frame = Buffer.concat([Buffer.from([1, 0, 0, 0, 0]), corrupt]); // compressed flag, then the length
    frame.writeUInt32BE(corrupt.length, 1);
    const status = await rawGrpcCall({ 'grpc-encoding': 'gzip', authorization: `Bearer ${token}`, 'x-request-id': rid('corrupt-gzip') }, frame);
    expect(status).toBe(grpc.status.INVALID_ARGUMENT);
    await waitFor(() => auditRecords(join(cluster.dir, 'audit')).some((r) => r.requestId === rid('corrupt-gzip') && r.status === 'invalid_argument'), 5_000, 'the record');
  });
});

describe('one caller cannot hurt the others', () => {
  it('a 128 KB input name is refused at the gateway on both doors: never sent to a node, no node ejected', async () => {
    const name = 'N'.repeat(128 * 1024);
    const res = await rest('/v2/models/news2/infer', { body: { inputs: [{ name, datatype: 'FP32', shape: [1, 7], data: [1, 2, 3, 4, 5, 6, 7] }] }, headers: { 'x-request-id': rid('long-name') } });
    expect(res.status).toBe(400);
    expect(res.body.length).toBeLessThan(400);
    await expect(grpcCall(app, 'ModelInfer', { ...grpcVitals, inputs: [{ ...grpcVitals.inputs[0], name }] }, token)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    const record = requestRecords(join(cluster.dir, 'audit')).find((r) => r.requestId === rid('long-name'))!;
    expect(record.sentTo).toBeUndefined();
    expect(record.node).toBeUndefined();
    expect(await allNodesReady()).toBe(true);
  });

  it('a long model version (which would become a node URL longer than its header limit) is refused at the gateway: no node ejected', async () => {
    const version = 'v'.repeat(20_000);
    for (const method of ['ModelInfer', 'ModelMetadata'] as const) {
      const request = method === 'ModelInfer' ? { ...grpcVitals, model_version: version } : { name: 'news2', version };
      await expect(grpcCall(app, method, request, token)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/model version is 20000 characters long/) });
    }
    // Just under the limit: a version the node does not have is its 404, still not the node's failure.
    await expect(grpcCall(app, 'ModelInfer', { ...grpcVitals, model_version: 'v'.repeat(64) }, token)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    expect(await allNodesReady()).toBe(true);
  });

  it('a node refusing bad input (impossible vitals) is not retried elsewhere and not ejected', async () => {
    const res = await rest('/v2/models/news2/infer', { rawBody: '{"inputs":[{"name":"vitals","datatype":"FP32","shape":[1,7],"data":[1e400,93,1,105,115,0,38.5]}]}', headers: { 'x-request-id': rid('inf') } });
    expect(res.status, res.body).toBe(400);
    expect(res.json().error).toMatch(/element \[0, 0\] \(respiration_rate\) is Infinity; this model accepts finite numbers only/);
    await expect(grpcCall(app, 'ModelInfer', { model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: ['1', '7'] }], raw_input_contents: [Buffer.from(new Float32Array([24, NaN, 1, 105, 115, 0, 38.5]).buffer)] }, token))
      .rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/spo2_scale1\) is NaN/) });
    const f = await rest('/v2/models/news2/infer', { body: { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24, 93, 1, 105, 115, 0, 101.3] }] } });
    expect(f.json().error).toMatch(/temperature\) is 101\.3\d*, outside the plausible range \[25, 45\]/);
    // Sent to one node, which refused it: not retried on the other.
    const record = requestRecords(join(cluster.dir, 'audit')).find((r) => r.requestId === rid('inf'))!;
    expect(record.sentTo ?? [record.node]).toHaveLength(1);
    expect(await allNodesReady()).toBe(true);
  });

  it('a 128 KB gRPC model name is answered NOT_FOUND with a short message; unknown names share one metric label', async () => {
    await expect(grpcCall(app, 'ModelInfer', { ...grpcVitals, model_name: 'M'.repeat(128 * 1024) }, token)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: expect.stringMatching(/^model "M{40}"… is not served/) });
    for (let i = 0; i < 30; i++) await rest(`/v2/models/unknown-${i}/infer`, { body: VITALS });
    const metrics = await scrapeMetrics(cluster.gateway.ports.admin!);
    expect(metrics).not.toMatch(/unknown-\d|MMMM/);
    expect(metrics).toMatch(/cdsgate_requests_total\{route="infer",model="\(unknown\)",door="rest",status="404"\} 3\d/);
    expect(metrics.length).toBeLessThan(200_000);
  });

  it('error bodies quote at most a short prefix of what was sent', async () => {
    const res = await rest('/v2/models/news2/infer', { body: { inputs: [{ name: 'vitals', datatype: 'D'.repeat(5 * 1024 * 1024), shape: [1, 7], data: [1] }] } });
    expect(res.status).toBe(400);
    expect(res.body.length).toBeLessThan(400);
    expect(res.json().error).toMatch(/unknown datatype "D{24}"…/);
  });
});

describe('ambiguous credentials', () => {
  it('two Authorization headers → 401 on REST', async () => {
    const socket = await rawTls();
    const answer = untilClosed(socket);
    const body = JSON.stringify(VITALS);
    socket.write(`POST /v2/models/news2/infer HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer ${token}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const response = await answer;
    expect(statusOf(response)).toBe(401);
    expect(bodyOf(response).error).toMatch(/more than one Authorization header/);
    // Node's HTTP/2 client will not send two authorization fields; grpc-js keeps every value it is given.
    // (What the server does with two on the wire is the unit test of prepareCallHeaders.)
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    md.add('Authorization', `Bearer ${token}`);
    if (md.get('authorization').length === 2) {
      await expect(new Promise((resolve, reject) => app.ModelInfer!(grpcVitals, md, { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res)))))
        .rejects.toMatchObject({ code: expect.any(Number) });
    }
  });
});

describe('the one error form, and bodies read as they should be', () => {
  it('gzip, deflate and br bodies are inflated; a bomb stays a 413; unknown encodings and text/plain are 415', async () => {
    const json = Buffer.from(JSON.stringify(VITALS));
    const zlib = await import('node:zlib');
    for (const [encoding, bytes] of [['gzip', zlib.gzipSync(json)], ['deflate', zlib.deflateSync(json)], ['br', zlib.brotliCompressSync(json)]] as const) {
      const res = await rest('/v2/models/news2/infer', { rawBody: bytes, headers: { 'content-encoding': encoding } });
      expect(res.status, `${encoding}: ${res.body}`).toBe(200);
    }
    const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
    const blown = await rest('/v2/models/news2/infer', { rawBody: bomb, headers: { 'content-encoding': 'gzip' } });
    expect(blown.status).toBe(413);
    expect(blown.json()).toEqual({ error: 'request body is larger than this server accepts' });
    const broken = await rest('/v2/models/news2/infer', { rawBody: Buffer.from('not gzip at all'), headers: { 'content-encoding': 'gzip' } });
    expect(broken.status).toBe(400);
    expect(broken.json().error).toMatch(/not valid data in its Content-Encoding/);
    const zstd = await rest('/v2/models/news2/infer', { rawBody: json, headers: { 'content-encoding': 'zstd' } });
    expect(zstd.status).toBe(415);
    expect(zstd.json().error).toMatch(/content encoding "zstd" is not supported/);
    const text = await rest('/v2/models/news2/infer', { rawBody: json, headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);
    expect(text.json().error).toMatch(/^content type must be application\/json/);
  });

  it('__proto__ keys are refused by name', async () => {
    const res = await rest('/v2/models/news2/infer', { rawBody: '{"inputs":[],"__proto__":{"polluted":true}}' });
    expect(res.status).toBe(400);
    expect(res.json().error).toMatch(/"__proto__"/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('framework and parser errors use the documented form', async () => {
    const long = await rest(`/v2/models/${'x'.repeat(300)}/infer`, { body: VITALS });
    expect(long.status).toBe(404);
    expect(Object.keys(long.json())).toEqual(['error']);
    const badUrl = await rest('/v2/models/%E0%A4%A/infer', { body: VITALS });
    expect(badUrl.status).toBe(400);
    expect(Object.keys(badUrl.json())).toEqual(['error']);
    const socket = await rawTls();
    const answer = untilClosed(socket);
    socket.write('GARBAGE / HTTP/9.9\r\n\r\n');
    const response = await answer;
    expect(statusOf(response)).toBe(400);
    expect(bodyOf(response)).toEqual({ error: 'malformed HTTP request' });
    expect(response).not.toMatch(/statusCode/);
  });

  it('a 413 reaches a client that sends its whole oversized body at once', async () => {
    const big = Buffer.alloc(9 * 1024 * 1024, 0x20);
    for (let i = 0; i < 5; i++) {
      const res = await rest('/v2/models/news2/infer', { rawBody: big });
      expect(res.status).toBe(413);
    }
  });
});

describe('client-chosen strings never reach a log, a metric or an audit record in clear', () => {
  it('a patient name placed in the model name, version, an extra input name and the request id', async () => {
    const canary = 'Zebulon Quickfoot-Canary';
    const compact = 'ZebulonQuickfootCanary';
    await rest(`/v2/models/${encodeURIComponent(canary)}/infer`, { body: VITALS, headers: { 'x-request-id': compact } });
    await rest(`/v2/models/news2/versions/${compact}/infer`, { body: VITALS, headers: { 'x-request-id': `${compact}-2` } });
    await rest('/v2/models/news2/infer', { body: { inputs: [...VITALS.inputs, { name: compact, datatype: 'FP32', shape: [1], data: [1] }], outputs: [{ name: `${compact}-out` }] } });
    await grpcCall(app, 'ModelInfer', { ...grpcVitals, model_name: canary }, token, 10_000, compact).catch(() => undefined);
    await grpcCall(app, 'ModelInfer', { ...grpcVitals, model_version: compact }, token).catch(() => undefined);
    const metrics = await scrapeMetrics(cluster.gateway.ports.admin!);
    await waitFor(() => cluster.gateway.logs.length > 0, 1_000);
    const audit = readAudit();
    for (const where of [metrics, cluster.gateway.logs.join('\n'), ...cluster.nodes.map((n) => n.logs.join('\n')), audit]) {
      expect(where).not.toMatch(/Zebulon|Quickfoot/);
    }
    // What the audit record keeps instead: pseudonyms, and a minted request id.
    const records = auditRecords(join(cluster.dir, 'audit')).filter((r) => r.model?.requested || r.model?.requestedVersion || r.clientRequestId);
    expect(records.some((r) => r.model?.name === '(unknown)' && /^psn_/.test(r.model.requested))).toBe(true);
    expect(records.some((r) => /^psn_/.test(r.model?.requestedVersion ?? ''))).toBe(true);
    expect(records.some((r) => /^psn_/.test(r.clientRequestId))).toBe(true);
  });
});

function readAudit(): string {
  return auditRecords(join(cluster.dir, 'audit')).map((r) => JSON.stringify(r)).join('\n');
}

describe('certificates', () => {
  /** 'served' when the door answers a request on a connection made with `identity`, 'refused' when the connection is closed first. */
  const handshake = async (identity: Identity, port: number): Promise<'served' | 'refused'> => {
    if (port === cluster.gateway.ports.grpc) {
      const client = grpcClient(port, cluster.pki.ca, identity);
      try {
        await grpcCall(client, 'ServerLive', {}, undefined, 10_000);
        return 'served';
      } catch (err) {
        expect((err as grpc.ServiceError).code).toBe(grpc.status.UNAVAILABLE);
        return 'refused';
      } finally {
        client.close();
      }
    }
    try {
      const s = await rawTls(identity);
      // TLS 1.3: the server's verdict on our certificate arrives after the client's side of the handshake is done.
      const closed = untilClosed(s);
      s.write('GET /v2/health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      return statusOf(await closed) === 200 ? 'served' : 'refused';
    } catch {
      return 'refused';
    }
  };

  it('foreign, expired and serverAuth-only certificates are refused and counted by their real reason', async () => {
    for (const port of [cluster.gateway.ports.rest!, cluster.gateway.ports.grpc!]) {
      expect(await handshake(cluster.pki.untrustedClient, port)).toBe('refused');
      expect(await handshake(cluster.pki.expiredClient, port)).toBe('refused');
      expect(await handshake(cluster.pki.serverAuthOnlyClient, port)).toBe('refused');
    }
    let metrics = '';
    await waitFor(async () => {
      metrics = await scrapeMetrics(cluster.gateway.ports.admin!);
      return ['untrusted_certificate', 'expired_certificate', 'wrong_certificate_purpose'].every((reason) =>
        ['rest', 'grpc'].every((door) => metrics.includes(`cdsgate_tls_handshake_failures_total{door="${door}",reason="${reason}"}`)));
    }, 5_000, 'each refusal counted by reason on both doors').catch(() => undefined);
    for (const reason of ['untrusted_certificate', 'expired_certificate', 'wrong_certificate_purpose']) {
      for (const door of ['rest', 'grpc']) expect(metrics, `${door} ${reason}`).toContain(`cdsgate_tls_handshake_failures_total{door="${door}",reason="${reason}"}`);
    }
  });

  it('a renewed gateway certificate is served on both doors without a restart; a key that does not match it is refused and the pair in force kept', async () => {
    const servedSerial = async (port: number): Promise<string> => {
      const s = await rawTls(cluster.pki.apps.ehr, { port, ALPNProtocols: ['h2', 'http/1.1'] });
      const serial = s.getPeerCertificate().serialNumber.toLowerCase();
      s.destroy();
      return serial;
    };
    const { rest: restPort, grpc: grpcPort } = cluster.gateway.ports;
    const before = await servedSerial(restPort!);
    expect(await servedSerial(grpcPort!)).toBe(before);
    // A key written without its certificate (a renewal half done, or a mistake): refused, reported, the old pair served.
    const keyFile = join(cluster.dir, 'gateway-server.key');
    const keyInForce = readFileSync(keyFile);
    writeFileSync(keyFile, readFileSync(join(cluster.dir, 'app-smart.key')));
    await waitFor(async () => cluster.gateway.logs.some((l) => l.includes('do not make a usable context') && l.includes('gateway-server.key')), 10_000, 'the mismatched key to be reported');
    expect(await servedSerial(restPort!)).toBe(before);
    expect(await handshake(cluster.pki.apps.ehr, restPort!)).toBe('served');
    writeFileSync(keyFile, keyInForce);
    const renewed = await runCliAsync(['certs', 'renew', 'gateway-server', '--out', cluster.dir]);
    expect(renewed.code, renewed.stderr).toBe(0);
    const serial = /serial ([0-9a-f]+)/.exec(renewed.stdout)![1]!.replace(/^0+/, '');
    await waitFor(async () => (await servedSerial(restPort!)).replace(/^0+/, '') === serial, 10_000, 'the REST door to serve the renewed certificate');
    await waitFor(async () => (await servedSerial(grpcPort!)).replace(/^0+/, '') === serial, 10_000, 'the gRPC door to serve the renewed certificate');
    expect(await handshake(cluster.pki.apps.ehr, restPort!)).toBe('served');
    expect(await handshake(cluster.pki.apps.ehr, grpcPort!)).toBe('served');
    // Both outcomes are counted, for an alert on a file that keeps being refused.
    const metrics = await scrapeMetrics(cluster.gateway.ports.admin!);
    expect(metrics).toMatch(/cdsgate_file_reloads_total\{file="tls",result="refused"\} [1-9]/);
    expect(metrics).toMatch(/cdsgate_file_reloads_total\{file="tls",result="applied"\} [1-9]/);
  });

  it('a changed issuer key file is reloaded and counted; a broken one is refused, counted, and the keys in force kept', async () => {
    const file = cluster.issuer.jwks;
    const original = readFileSync(file, 'utf8');
    const admin = cluster.gateway.ports.admin!;
    const counted = async (result: string) => new RegExp(`cdsgate_file_reloads_total\\{file="jwks",result="${result}"\\} [1-9]`).test(await scrapeMetrics(admin));
    expect((await rest('/v2/models/news2/infer', { body: VITALS })).status).toBe(200);
    writeFileSync(file, '{"keys": [');
    await waitFor(() => counted('refused'), 10_000, 'the broken key file to be refused');
    expect((await rest('/v2/models/news2/infer', { body: VITALS })).status).toBe(200);
    // The same keys written anew (one more newline): applied, and the cached token is verified again against them.
    writeFileSync(file, `${original}\n`);
    await waitFor(() => counted('applied'), 10_000, 'the key file to be reloaded');
    expect((await rest('/v2/models/news2/infer', { body: VITALS })).status).toBe(200);
  });

  it('a revoked application certificate is refused on both doors within one CRL reload, without a restart', async () => {
    const smart = cluster.pki.apps.smart;
    expect(await handshake(smart, cluster.gateway.ports.rest!)).toBe('served');
    const revoked = await runCliAsync(['certs', 'revoke', 'app-smart', '--out', cluster.dir]);
    expect(revoked.code, revoked.stderr).toBe(0);
    await waitFor(async () => (await handshake(smart, cluster.gateway.ports.rest!)) === 'refused', 10_000, 'the REST door to refuse the revoked certificate');
    expect(await handshake(smart, cluster.gateway.ports.grpc!)).toBe('refused');
    expect(await handshake(cluster.pki.apps.ehr, cluster.gateway.ports.rest!)).toBe('served');
    await waitFor(async () => (await scrapeMetrics(cluster.gateway.ports.admin!)).includes('reason="revoked_certificate"'), 5_000, 'the refusal counted as revoked');
  });

  it('a renewed gateway client certificate is used for new connections to the nodes: revoking the old one then breaks nothing', async () => {
    await renewGatewayClientAndRevokeOld(cluster);
    for (let i = 0; i < 4; i++) expect((await rest('/v2/models/news2/infer', { body: VITALS })).status).toBe(200);
    expect(await scrapeMetrics(cluster.gateway.ports.admin!)).toMatch(/cdsgate_file_reloads_total\{file="node_client_tls",result="applied"\} [1-9]/);
    expect(await scrapeMetrics(cluster.nodes[0]!.ports.admin!)).toMatch(/cdsgate_node_file_reloads_total\{file="tls",result="applied"[^}]*\} [1-9]/);
  });

  it('nodes refuse a revoked gateway certificate (run last: it takes the pool down)', async () => {
    const revoked = await runCliAsync(['certs', 'revoke', 'gateway-client', '--out', cluster.dir]);
    expect(revoked.code, revoked.stderr).toBe(0);
    // Each node re-reads the CRL on its own; wait until neither serves the gateway any more.
    await waitFor(async () => {
      const status = await (await fetch(`http://127.0.0.1:${cluster.gateway.ports.admin}/status`)).json() as { nodes: Array<{ state: string }> };
      return status.nodes.every((n) => n.state !== 'ready');
    }, 15_000, 'the nodes to refuse the gateway');
    const res = await rest('/v2/models/news2/infer', { body: VITALS });
    expect(res.status).toBe(503);
  });
});
