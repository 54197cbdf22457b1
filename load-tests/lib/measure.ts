import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Client } from 'undici';
import { ROOT } from '../../test/helpers/cluster.js';

export interface Figures { target: string; run: number; requests: number; rps: number; p50: number; p99: number; non2xx: number; errors: number }

export interface Target {
  port: number; path: string; identity: { cert: string; key: string }; ca: string; token?: string; body: unknown;
  /** Several bearer tokens, used in turn, one per request (a signature check each, where a verifier caches by token). */
  tokens?: string[];
  /**
   * One connection only: each request starts this many milliseconds after the one before it started (or when
   * that one is answered, if later), the client's thread sleeping until then, so the server sees requests as
   * often as behind a slower path. Each latency is still one request's, from send to answer.
   */
  intervalMs?: number;
}

/**
 * One bounded run against 127.0.0.1 over mTLS: autocannon for several
 * connections; for one connection an exact sequential client (below), since
 * autocannon rounds latencies to whole milliseconds and one connection is
 * where the added latency of a proxy is read.
 */
export async function measure(name: string, run: number, t: Target, seconds: number, connections: number): Promise<Figures> {
  if (connections === 1) return sequential(name, run, t, seconds);
  if (t.intervalMs) throw new Error('a pace of requests is for one connection only');
  const result = await autocannon({
    url: `https://127.0.0.1:${t.port}${t.path}`,
    method: 'POST',
    connections,
    duration: seconds,
    headers: { 'content-type': 'application/json', ...(t.token ? { authorization: `Bearer ${t.token}` } : {}) },
    body: JSON.stringify(t.body),
    tlsOptions: { cert: readFileSync(t.identity.cert), key: readFileSync(t.identity.key), ca: readFileSync(t.ca) },
    servername: 'localhost',
    ...(t.tokens && t.tokens.length > 1 ? { setupClient: tokensDealt(t.tokens, connections) } : {}),
  } as autocannon.Options);
  return {
    target: name, run,
    requests: result.requests.total,
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

/** What the paced client waits on: nothing ever wakes it, so each wait lasts its timeout. */
const PACE = new Int32Array(new SharedArrayBuffer(4));

/**
 * One keep-alive mTLS connection, each request sent when the last answered
 * (or, with `intervalMs`, when it is due), latencies kept in microseconds
 * (p50/p99 exact to 0.001 ms). An undici Client, like autocannon a lean
 * HTTP/1.1 client, so the client's own cost stays small next to the path
 * measured.
 */
async function sequential(name: string, run: number, t: Target, seconds: number): Promise<Figures> {
  const client = new Client(`https://127.0.0.1:${t.port}`, {
    connect: { cert: readFileSync(t.identity.cert), key: readFileSync(t.identity.key), ca: readFileSync(t.ca), servername: 'localhost', rejectUnauthorized: false },
    pipelining: 1,
  });
  const tokens = t.tokens && t.tokens.length > 0 ? t.tokens : t.token ? [t.token] : [];
  const body = JSON.stringify(t.body);
  const latencies: number[] = [];
  let non2xx = 0, errors = 0;
  const end = performance.now() + seconds * 1000;
  try {
    for (let i = 0; performance.now() < end; i++) {
      const started = performance.now();
      try {
        const res = await client.request({
          method: 'POST', path: t.path, body,
          headers: { 'content-type': 'application/json', ...(tokens.length ? { authorization: `Bearer ${tokens[i % tokens.length]}` } : {}) },
        });
        await res.body.arrayBuffer();
        if (res.statusCode < 200 || res.statusCode > 299) non2xx++;
      } catch {
        errors++;
      }
      const answered = performance.now();
      latencies.push(answered - started);
      // Atomics.wait sleeps the thread for the exact time (a futex wait); a timer would round it to whole milliseconds.
      if (t.intervalMs && started + t.intervalMs > answered) Atomics.wait(PACE, 0, 0, started + t.intervalMs - answered);
    }
  } finally {
    await client.close().catch(() => undefined);
  }
  return closedLoopFigures(name, run, latencies, seconds, non2xx, errors);
}

/** The figures of a closed-loop run whose every latency (ms) was kept: p50 and p99 exact to 0.001 ms. */
export function closedLoopFigures(name: string, run: number, latencies: number[], seconds: number, non2xx: number, errors: number): Figures {
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Number((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0).toFixed(3));
  return { target: name, run, requests: latencies.length, rps: Math.round(latencies.length / seconds), p50: at(0.5), p99: at(0.99), non2xx, errors };
}

/**
 * The tokens dealt out among the connections, each connection sending its
 * share in turn as requests built once: autocannon rebuilds a request that
 * has a setupRequest on every send, which with 5,000 tokens cost its thread
 * 40–55 µs more per request (116–145 against 76–89 µs at 32 connections),
 * taken from the cores the paths measured share. Dealt this way a token still
 * comes back about once per `tokens.length` requests, as in one rotation
 * shared by all connections.
 */
function tokensDealt(tokens: string[], connections: number) {
  let client = 0;
  return (c: { setRequests(requests: Array<{ headers: Record<string, string> }>): void }) => {
    const first = client++ % connections;
    const share: string[] = [];
    for (let i = first % tokens.length; i < tokens.length; i += connections) share.push(tokens[i]!);
    c.setRequests(share.map((token) => ({ headers: { authorization: `Bearer ${token}` } })));
  };
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export function summarise(figures: Figures[], target: string) {
  const rows = figures.filter((f) => f.target === target);
  return {
    rps: median(rows.map((r) => r.rps)), p50: median(rows.map((r) => r.p50)), p99: median(rows.map((r) => r.p99)),
    non2xx: rows.reduce((s, r) => s + r.non2xx, 0), errors: rows.reduce((s, r) => s + r.errors, 0),
  };
}

export function writeReport(name: string, json: unknown, markdown: string): void {
  const dir = join(ROOT, 'load-tests', 'reports');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(json, null, 2));
  writeFileSync(join(dir, `${name}.md`), markdown);
  console.log(`\n${markdown}`);
}

/**
 * Warm-up of both targets (discarded: the first seconds measure the JIT), then
 * `runs` alternating pairs, so each A/B ratio comes from neighbouring runs on
 * the same noisy machine. The pair's order alternates too (a then b, then b
 * then a): a target measured first in every pair would meet the machine
 * always in the state the other left it, and the ratio would carry that.
 * That removes a bias, not the noise: on the development VM two gateways of
 * one build (`npm run bench:ab -- --base HEAD` on a clean tree, five runs of
 * 6–8 rounds, fixed order and alternating) came out 0.93–1.09 in p50,
 * 0.94–1.09 in CPU per request and 0.93–1.00 in req/s. Only a difference
 * beyond the spread of such a run is a finding.
 */
export async function alternatingRuns<T = Target>(
  a: { name: string; target: T }, b: { name: string; target: T }, runs: number, seconds: number, connections: number,
  onRun: (run: number, a: Figures, b: Figures) => void,
  /** Runs around each measured run, e.g. to read counters before and after it. */
  around: (name: string, measureRun: () => Promise<Figures>) => Promise<Figures> = (_name, measureRun) => measureRun(),
  /** How one run is measured: REST (measure) by default; grpcLoad for a gRPC door. */
  measureOne: (name: string, run: number, target: T, seconds: number, connections: number) => Promise<Figures> = measure as never,
): Promise<{ figures: Figures[]; ratios: number[] }> {
  await measureOne('warm-up', 0, a.target, seconds, connections);
  await measureOne('warm-up', 0, b.target, seconds, connections);
  const figures: Figures[] = [];
  const ratios: number[] = [];
  for (let run = 1; run <= runs; run++) {
    const measureA = () => around(a.name, () => measureOne(a.name, run, a.target, seconds, connections));
    const measureB = () => around(b.name, () => measureOne(b.name, run, b.target, seconds, connections));
    let fa: Figures, fb: Figures;
    if (run % 2 === 1) {
      fa = await measureA();
      fb = await measureB();
    } else {
      fb = await measureB();
      fa = await measureA();
    }
    figures.push(fa, fb);
    ratios.push(fa.rps / fb.rps);
    onRun(run, fa, fb);
  }
  return { figures, ratios };
}

/** CPU time of a process and its live children (gateway workers) so far, in microseconds (user + system, from /proc). */
export function processCpuMicros(pid: number | undefined): number {
  if (!pid) return NaN;
  const stat = (p: number | string) => readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const own = stat(pid);
  let ticks = Number(own[11]) + Number(own[12]); // utime, stime in clock ticks (USER_HZ = 100)
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const f = stat(entry);
      if (Number(f[1]) === pid) ticks += Number(f[11]) + Number(f[12]); // ppid
    } catch { /* gone */ }
  }
  return ticks * (1_000_000 / 100);
}
