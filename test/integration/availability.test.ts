
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecords, httpsCall, jsonLogs, runCliAsync, startCluster, startProcess, stopProcess, waitFor, type Cluster } from '../helpers/cluster.js';
import { startLoad } from '../helpers/load.js';
import { bytesUntilClosed, rawTls } from '../helpers/raw-tls.js';

const statusOf = async (cluster: Cluster, node: string) =>
  ((await fetch(`http://127.0.0.1:${cluster.gateway.ports.admin}/status`).then((r) => r.json())) as { nodes: Array<{ node: string; state: string; ready: boolean }> })
    .nodes.find((n) => n.node === node)!;

describe('availability under faults (short chaos scenarios, 3 nodes)', () => {
  let cluster: Cluster;
  let token: string;
  beforeAll(async () => {
    cluster = await startCluster({ nodes: 3, gatewayPatch: (c) => { c.pools.default.healthCheck = { intervalMs: 250, timeoutMs: 300, healthyThreshold: 2 }; c.pools.default.breaker = { timeoutMs: 1000 }; } });
    token = await cluster.token(['clinician'], { ttlSeconds: 600 });
  });
  afterAll(async () => {
    for (const n of cluster?.nodes ?? []) if (n.child.signalCode === null && n.child.exitCode === null) n.child.kill('SIGCONT');
    await cluster?.stop();
  });

  it('a node killed with SIGKILL under load: zero failed requests; it rejoins after a restart', async () => {
    const load = startLoad(cluster, token);
    await new Promise((r) => setTimeout(r, 500));
    const victim = cluster.nodes[0]!;
    const configFile = join(cluster.dir, 'node-0.json');
    await stopProcess(victim, 'SIGKILL');
    await waitFor(async () => (await statusOf(cluster, 'node-0')).state === 'ejected', 3000, 'node-0 ejected');
    await new Promise((r) => setTimeout(r, 500));
    // Restart on the same ports so the gateway's connections reconnect.
    const config = JSON.parse(readFileSync(configFile, 'utf8'));
    config.node.grpc.port = victim.ports.grpc;
    config.node.rest.port = victim.ports.rest;
    const restarted = await startProcess('node', config, cluster.dir, 'node-0-restarted');
    cluster.nodes[0] = restarted;
    await waitFor(async () => (await statusOf(cluster, 'node-0')).state === 'ready', 8000, 'node-0 back in rotation');
    const r = await load.stop();
    expect(r.failed).toEqual([]);
    expect(r.ok).toBeGreaterThan(20);
  });

  it('a hung node (SIGSTOP) leaves rotation in under 2 s and no request fails; it rejoins after SIGCONT', async () => {
    const load = startLoad(cluster, token);
    await new Promise((r) => setTimeout(r, 500));
    const victim = cluster.nodes[1]!;
    victim.child.kill('SIGSTOP');
    const stoppedAt = Date.now();
    await waitFor(async () => (await statusOf(cluster, 'node-1')).state === 'ejected', 2000, 'node-1 ejected within 2 s');
    const ejectedAfter = Date.now() - stoppedAt;
    await new Promise((r) => setTimeout(r, 1000));
    victim.child.kill('SIGCONT');
    await waitFor(async () => (await statusOf(cluster, 'node-1')).state === 'ready', 5000, 'node-1 back');
    const r = await load.stop();
    expect(ejectedAfter).toBeLessThan(2000);
    expect(r.failed).toEqual([]);
  });

  it('a node drained with SIGTERM under load: zero failed requests', async () => {
    const load = startLoad(cluster, token);
    await new Promise((r) => setTimeout(r, 500));
    await stopProcess(cluster.nodes[2]!, 'SIGTERM');
    expect(cluster.nodes[2]!.child.exitCode).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    const r = await load.stop();
    expect(r.failed).toEqual([]);
  });

  it('a client deadline travels: Request-Timeout too short for the work → 504, fast', async () => {
    const started = Date.now();
    const res = await httpsCall(cluster.gateway.ports.rest!, '/v2/models/cxr-loadtest/infer', {
      ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token: await cluster.token(['loadtest']), headers: { 'request-timeout': '0.001' },
      body: { inputs: [{ name: 'image', datatype: 'FP32', shape: [8, 1, 224, 224], data: new Array(8 * 224 * 224).fill(0.5) }] },
    });
    expect(res.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe('load shedding', () => {
  it('beyond the pool limit and queue: 503 with Retry-After at once, never an unbounded wait', async () => {
    // The node holds every inference for 1.5 s (fault injection), so the pool is full however fast or
    // busy this machine is: with a limit of 1 and a queue of 1, of 8 simultaneous requests two are
    // served and six are refused — and every refusal arrives before the first answer.
    const cluster = await startCluster({
      nodes: 1,
      gatewayPatch: (c) => {
        c.pools.default.concurrencyLimit = 1;
        c.pools.default.queueSize = 1;
        c.pools.default.breaker = { timeoutMs: 20_000 };
        c.gateway.defaultTimeoutMs = 30_000;
      },
      nodeConfigPatch: (c) => { c.node.faultInjection = true; },
    });
    try {
      const token = await cluster.token(['clinician']);
      await fetch(`http://127.0.0.1:${cluster.nodes[0]!.ports.admin}/fault?delayMs=1500`, { method: 'POST' });
      const body = { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24, 93, 1, 105, 115, 0, 38.5] }] };
      let order = 0;
      const results = await Promise.all(Array.from({ length: 8 }, async () => {
        const res = await httpsCall(cluster.gateway.ports.rest!, '/v2/models/news2/infer', { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token, body });
        return { status: res.status, retryAfter: res.headers['retry-after'], at: order++, error: res.status === 503 ? res.json().error : undefined };
      }));
      const served = results.filter((r) => r.status === 200);
      const shed = results.filter((r) => r.status === 503);
      expect(served.length + shed.length, JSON.stringify(results)).toBe(8);
      expect(served.length).toBeGreaterThanOrEqual(1);
      expect(shed.length).toBeGreaterThanOrEqual(1);
      for (const r of shed) {
        expect(r.retryAfter).toBe('1');
        expect(r.error).toMatch(/at capacity/);
        // "At once": answered while the first admitted request was still on the node.
        expect(r.at).toBeLessThan(Math.min(...served.map((x) => x.at)));
      }
    } finally {
      await cluster.stop();
    }
  });
});

describe('gateway drain', () => {
  it('SIGTERM under load: in-flight requests finish, the audit log ends in a signed final head, exit 0', async () => {
    const cluster = await startCluster({ nodes: 1 });
    const token = await cluster.token(['clinician']);
    const load = startLoad(cluster, token, { workers: 4 });
    await new Promise((r) => setTimeout(r, 700));
    await stopProcess(cluster.gateway, 'SIGTERM');
    const r = await load.stop();
    try {
      expect(cluster.gateway.child.exitCode).toBe(0);
      // Nothing was cut mid-flight: a request either completed, or (arriving after the drain began) was told
      // to retry elsewhere with 503 + Retry-After, or could not connect any more.
      const unexpected = r.failed.filter((f) => f.status !== 'error' && !(f.status === 503 && /shutting down/.test(f.body)));
      expect(unexpected, JSON.stringify(unexpected)).toEqual([]);
      expect(r.ok).toBeGreaterThan(0);
      const records = auditRecords(join(cluster.dir, 'audit'));
      expect(records.filter((x) => x.type === 'request' && x.outcome === 'success').length).toBe(r.ok);
      expect(records.at(-1)).toMatchObject({ type: 'checkpoint', final: true });
      const verify = await runCliAsync(['audit', 'verify', '--public-key', cluster.secrets.auditPublicKey, join(cluster.dir, 'audit')]);
      expect(verify.code, verify.stderr).toBe(0);
    } finally {
      await cluster.stop();
    }
  });

  it('SIGTERM: a request arriving during the drain on a kept-alive connection gets 503, Retry-After and Connection: close, in our error form', async () => {
    // The drain closes idle connections at once; a request can still arrive on a connection that is busy.
    // Here the connection carries a first request the node holds (fault injection) until the node is
    // killed, and the second request is written on it only once the gateway has logged that it is
    // draining: so it is read during the drain whatever this machine's speed.
    const cluster = await startCluster({
      nodes: 1,
      gatewayPatch: (c) => { c.pools.default.breaker = { timeoutMs: 60_000 }; c.gateway.defaultTimeoutMs = 60_000; },
      nodeConfigPatch: (c) => { c.node.faultInjection = true; },
    });
    let socket: TLSSocket | undefined;
    try {
      const token = await cluster.token(['clinician']);
      await fetch(`http://127.0.0.1:${cluster.nodes[0]!.ports.admin}/fault?delayMs=600000`, { method: 'POST' });
      const body = JSON.stringify({ inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24, 93, 1, 105, 115, 0, 38.5] }] });
      const request = [
        'POST /v2/models/news2/infer HTTP/1.1', 'host: localhost', `authorization: Bearer ${token}`,
        'content-type: application/json', `content-length: ${Buffer.byteLength(body)}`, '', body,
      ].join('\r\n');
      socket = await rawTls(cluster.gateway.ports.rest!, cluster.pki.ca, cluster.pki.apps.ehr);
      const received = bytesUntilClosed(socket);
      socket.write(request);
      // On a quiet gateway the request's dispatch record is on disk while the node works: the request is on the node.
      await waitFor(() => auditRecords(join(cluster.dir, 'audit')).some((r) => r.type === 'dispatch'), 10_000, 'the first request on the node');
      cluster.gateway.child.kill('SIGTERM');
      await waitFor(() => jsonLogs(cluster.gateway).some((l) => /^draining/.test(String(l.msg))), 10_000, 'the drain to begin');
      socket.write(request);
      // The held request now fails (its node is gone) and the drain can end.
      await stopProcess(cluster.nodes[0]!, 'SIGKILL');
      const answers = httpResponses(await received);
      expect(answers.length, JSON.stringify(answers)).toBe(2);
      expect(answers[0]!.status).toBeGreaterThanOrEqual(500); // the held request: its node died
      const shed = answers[1]!;
      expect(shed.status).toBe(503);
      expect(shed.headers['retry-after']).toBe('1');
      expect(shed.headers.connection).toBe('close');
      expect(JSON.parse(shed.body)).toEqual({ error: expect.stringMatching(/shutting down/) });
      await new Promise<void>((resolve) => (cluster.gateway.child.exitCode !== null ? resolve() : cluster.gateway.child.once('exit', () => resolve())));
      expect(cluster.gateway.child.exitCode).toBe(0);
      const requests = auditRecords(join(cluster.dir, 'audit')).filter((r) => r.type === 'request');
      // The refused request reached no model: only the held one has a request record.
      expect(requests.length).toBe(1);
    } finally {
      socket?.destroy();
      await cluster.stop();
    }
  });
});

/** The HTTP/1.1 responses, one after another, in `bytes` (each with a Content-Length body). */
function httpResponses(bytes: Buffer): Array<{ status: number; headers: Record<string, string>; body: string }> {
  const answers: Array<{ status: number; headers: Record<string, string>; body: string }> = [];
  let at = 0;
  while (at < bytes.length) {
    const end = bytes.indexOf('\r\n\r\n', at);
    if (end < 0) throw new Error(`an incomplete response head: ${bytes.subarray(at).toString('latin1')}`);
    const [statusLine, ...lines] = bytes.subarray(at, end).toString('latin1').split('\r\n');
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const length = Number(headers['content-length']);
    if (!Number.isSafeInteger(length)) throw new Error(`a response without a Content-Length: ${statusLine}`);
    answers.push({ status: Number(statusLine!.split(' ')[1]), headers, body: bytes.subarray(end + 4, end + 4 + length).toString('utf8') });
    at = end + 4 + length;
  }
  return answers;
}
