/**
 * How long a stalled or hostile client can hold the gateway, and what hostile
 * shapes cost it in memory: the figures behind the time limits and the
 * allocation checks. Each stall is waited for at most --cap seconds.
 *
 *   npm run bench:hostile [-- --cap 30]
 *
 * Written to run against any checkout (it uses only the test helpers), so the
 * same file measures a build before and after a change.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as http2Connect, constants as h2 } from 'node:http2';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { httpsCall, scrapeMetrics, startCluster } from '../test/helpers/cluster.js';
import { writeReport } from './lib/measure.js';

const { values } = parseArgs({ options: { cap: { type: 'string', default: '30' }, label: { type: 'string', default: 'this build' }, 'shapes-only': { type: 'boolean', default: false } } });
const capMs = Number(values.cap) * 1000;

const cluster = await startCluster({ nodes: 1 });
const token = await cluster.token(['clinician']);
const tlsOptions = { ca: readFileSync(cluster.pki.ca), cert: readFileSync(cluster.pki.apps.ehr.cert), key: readFileSync(cluster.pki.apps.ehr.key), servername: 'localhost' };

/** Milliseconds until the server closes `socket` (or answers, when `answered` is given), or the cap. */
function timeToClose(socket: TLSSocket | Socket, started: number): Promise<{ ms: number; capped: boolean; answer: string }> {
  return new Promise((resolve) => {
    let answer = '';
    const timer = setTimeout(() => { socket.destroy(); resolve({ ms: capMs, capped: true, answer }); }, capMs);
    socket.on('data', (c: Buffer) => { answer += c.toString('latin1'); });
    socket.on('error', () => undefined);
    socket.once('close', () => { clearTimeout(timer); resolve({ ms: Date.now() - started, capped: false, answer: answer.split('\r\n')[0] ?? '' }); });
  });
}

const rest = (): Promise<TLSSocket> => new Promise((resolve, reject) => {
  const s = tlsConnect({ host: '127.0.0.1', port: cluster.gateway.ports.rest!, ...tlsOptions }, () => resolve(s));
  s.once('error', reject);
});

/** Sends `head` on a new REST connection (then one more byte a second if `drip`) and times how long the server holds it. */
async function restStall(head: string, drip = false): Promise<{ ms: number; capped: boolean; answer: string }> {
  const s = await rest();
  const started = Date.now();
  s.write(head);
  const dripping = drip ? setInterval(() => { if (!s.destroyed) s.write('['); }, 1000) : undefined;
  const r = await timeToClose(s, started);
  clearInterval(dripping);
  return r;
}

const stalls: Array<{ name: string; run: () => Promise<{ ms: number; capped: boolean; answer: string }> }> = [
  {
    name: 'no token, declares 4 MiB, sends only headers (time to the 401)',
    run: async () => {
      const s = await rest();
      const started = Date.now();
      const answered = new Promise<{ ms: number; capped: boolean; answer: string }>((resolve) => {
        const timer = setTimeout(() => { s.destroy(); resolve({ ms: capMs, capped: true, answer: '' }); }, capMs);
        s.once('data', (c: Buffer) => { clearTimeout(timer); s.destroy(); resolve({ ms: Date.now() - started, capped: false, answer: c.toString('latin1').split('\r\n')[0]! }); });
        s.once('close', () => { clearTimeout(timer); resolve({ ms: Date.now() - started, capped: false, answer: '(closed)' }); });
      });
      s.write('POST /v2/models/news2/infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\n\r\n');
      return answered;
    },
  },
  {
    name: 'body at 1 byte/s (time until closed)',
    run: () => restStall(`POST /v2/models/news2/infer HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`, true),
  },
  {
    name: 'headers complete, no body (time until closed)',
    run: () => restStall(`POST /v2/models/news2/infer HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`),
  },
  {
    name: 'headers never finish (time until closed)',
    run: () => restStall('GET /v2/health/ready HTTP/1.1\r\nHost: localhost\r\nX-Slow: '),
  },
  {
    name: 'TCP connect, no TLS handshake, REST port (time until closed)',
    run: async () => timeToClose(netConnect({ host: '127.0.0.1', port: cluster.gateway.ports.rest! }), Date.now()),
  },
  {
    name: 'TCP connect, no TLS handshake, gRPC port (time until closed)',
    run: async () => timeToClose(netConnect({ host: '127.0.0.1', port: cluster.gateway.ports.grpc! }), Date.now()),
  },
  {
    name: 'gRPC ModelInfer headers, no message, no deadline (time to a status)',
    run: () => new Promise((resolve) => {
      const started = Date.now();
      const session = http2Connect(`https://127.0.0.1:${cluster.gateway.ports.grpc}`, tlsOptions);
      session.on('error', () => undefined);
      const stream = session.request({ [h2.HTTP2_HEADER_METHOD]: 'POST', [h2.HTTP2_HEADER_PATH]: '/inference.GRPCInferenceService/ModelInfer', 'content-type': 'application/grpc', te: 'trailers', authorization: `Bearer ${token}` }, { endStream: false });
      const done = (answer: string, capped = false) => { clearTimeout(timer); session.destroy(); resolve({ ms: capped ? capMs : Date.now() - started, capped, answer }); };
      const timer = setTimeout(() => done('', true), capMs);
      stream.on('trailers', (t) => done(`grpc-status ${t['grpc-status']}`));
      stream.on('response', (h) => { if (h['grpc-status']) done(`grpc-status ${h['grpc-status']}`); });
      stream.on('error', () => done('(reset)'));
      stream.resume();
    }),
  },
];

const shapes: Array<[string, number[]]> = [['FP32', [1e8, 7]], ['FP64', [2_147_483_648]], ['FP32', [1_000_000_000, 7]], ['BYTES', [5_000_000_000]]];

async function rssMb(): Promise<number> {
  const m = await scrapeMetrics(cluster.gateway.ports.admin!);
  return Number(/^cdsgate_process_process_resident_memory_bytes (\S+)/m.exec(m)?.[1]) / 2 ** 20;
}

/**
 * The gateway's peak virtual size (VmPeak) and peak resident size (VmHWM)
 * since it started, from /proc: a transient allocation between two scrapes
 * shows here. Linux only; NaN elsewhere.
 */
function peaksMb(): { vmPeak: number; vmHwm: number } {
  try {
    const status = readFileSync(`/proc/${cluster.gateway.child.pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) / 1024;
    return { vmPeak: Math.round(kb('VmPeak')), vmHwm: Math.round(kb('VmHWM')) };
  } catch {
    return { vmPeak: NaN, vmHwm: NaN };
  }
}

const stallRows: Array<{ name: string; ms: number; capped: boolean; answer: string }> = [];
const shapeRows: Array<{ shape: string; status: number | string; ms: number; rssBeforeMb: number; rssAfterMb: number; vmPeakMb: [number, number]; vmHwmMb: [number, number] }> = [];
try {
  for (const s of values['shapes-only'] ? [] : stalls) {
    const r = await s.run();
    stallRows.push({ name: s.name, ...r });
    console.log(`${s.name}: ${r.capped ? `still open after ${capMs / 1000} s` : `${(r.ms / 1000).toFixed(2)} s`} ${r.answer}`);
  }
  for (const [datatype, shape] of shapes) {
    const before = await rssMb();
    const peaksBefore = peaksMb();
    const started = Date.now();
    const res = await httpsCall(cluster.gateway.ports.rest!, '/v2/models/news2/infer', {
      ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token, body: { inputs: [{ name: 'vitals', datatype, shape, data: [1, 2, 3, 4, 5, 6, 7] }] },
    }).catch((err: Error) => ({ status: `error: ${err.message}` }));
    const peaksAfter = peaksMb();
    const row = {
      shape: `${datatype} ${JSON.stringify(shape)}`, status: res.status, ms: Date.now() - started, rssBeforeMb: Math.round(before), rssAfterMb: Math.round(await rssMb()),
      vmPeakMb: [peaksBefore.vmPeak, peaksAfter.vmPeak] as [number, number], vmHwmMb: [peaksBefore.vmHwm, peaksAfter.vmHwm] as [number, number],
    };
    shapeRows.push(row);
    console.log(`${row.shape}: ${row.status} in ${row.ms} ms; gateway RSS ${row.rssBeforeMb} → ${row.rssAfterMb} MB; peak virtual ${row.vmPeakMb.join(' → ')} MB; peak resident ${row.vmHwmMb.join(' → ')} MB`);
  }
} finally {
  await cluster.stop();
}

writeReport('hostile-limits', { benchmark: 'hostile-limits', label: values.label, date: new Date().toISOString(), capSeconds: capMs / 1000, stalls: stallRows, shapes: shapeRows }, [
  `# Stalled clients and hostile shapes (${values.label})`, '',
  `${new Date().toISOString()}; each stall waited for at most ${capMs / 1000} s; one gateway, one node, 127.0.0.1.`, '',
  '| stall | held for | answer |', '| --- | --- | --- |',
  ...stallRows.map((r) => `| ${r.name} | ${r.capped ? `> ${capMs / 1000} s (still open)` : `${(r.ms / 1000).toFixed(2)} s`} | ${r.answer || '–'} |`), '',
  '| shape (news2 REST) | status | ms | gateway RSS before → after (MB) | peak virtual size before → after (MB) | peak resident before → after (MB) |', '| --- | --- | --- | --- | --- | --- |',
  ...shapeRows.map((r) => `| ${r.shape} | ${r.status} | ${r.ms} | ${r.rssBeforeMb} → ${r.rssAfterMb} | ${r.vmPeakMb.join(' → ')} | ${r.vmHwmMb.join(' → ')} |`), '',
].join('\n'));
