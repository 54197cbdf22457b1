/**
 * What the text redactor adds to a request's latency through the gateway: the
 * same 2 KB clinical note sent, one request at a time, to two routes of the
 * same echo model on the same node — one that declares the note free text
 * (redacted into the audit view) and one that declares it not PHI — in
 * alternation, over one kept-alive mTLS connection.
 *
 *   npm run bench:phi:latency [-- --requests 400]
 *
 * Writes load-tests/reports/phi-latency.{json,md}.
 */
import { Agent, request } from 'node:https';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { generateNotes } from '../models/build/phi-notes.js';
import { startCluster } from '../test/helpers/cluster.js';
import { repositoryWithProbes } from '../test/helpers/phi-probe.js';
import { median, writeReport } from './lib/measure.js';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '400' } } });
const perRoute = Number(values.requests);

const notes = generateNotes('heldout', 50, 7).map((n) => n.text);
let note = '';
for (let i = 0; note.length < 2048; i++) note += `${notes[i % notes.length]}\n\n`;
note = note.slice(0, 2048);

const cluster = await startCluster({
  nodes: 1,
  modelRepository: repositoryWithProbes(['phi-probe', 'phi-probe-plain']),
  gatewayPatch: (c) => {
    c.models['phi-probe'] = { pool: 'default', allowRoles: ['clinician'], phiInputs: { mrn: 'identifier', note: 'text', patient: 'fhir' } };
    c.models['phi-probe-plain'] = { pool: 'default', allowRoles: ['clinician'], phiInputs: { mrn: 'identifier', note: 'none', patient: 'fhir' } };
  },
});
try {
  const token = await cluster.token(['clinician'], { ttlSeconds: 3600 });
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: readFileSync(cluster.pki.ca), cert: readFileSync(cluster.pki.apps.ehr.cert), key: readFileSync(cluster.pki.apps.ehr.key), servername: 'localhost' });
  const body = Buffer.from(JSON.stringify({ inputs: [
    { name: 'mrn', datatype: 'BYTES', shape: [1, 1], data: ['MRN-00482913'] },
    { name: 'note', datatype: 'BYTES', shape: [1, 1], data: [note] },
    { name: 'patient', datatype: 'BYTES', shape: [1, 1], data: ['{}'] },
  ] }));
  const once = (model: string) => new Promise<number>((resolve, reject) => {
    const started = performance.now();
    const req = request({ agent, host: '127.0.0.1', port: cluster.gateway.ports.rest, method: 'POST', path: `/v2/models/${model}/infer`,
      headers: { 'content-type': 'application/json', 'content-length': body.length, authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - started) : reject(new Error(`${model}: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
  for (let i = 0; i < 50; i++) { await once('phi-probe'); await once('phi-probe-plain'); } // warm-up
  const redacted: number[] = [], plain: number[] = [];
  for (let i = 0; i < perRoute; i++) {
    // Alternate which goes first, so neither always follows the other.
    if (i % 2) { redacted.push(await once('phi-probe')); plain.push(await once('phi-probe-plain')); }
    else { plain.push(await once('phi-probe-plain')); redacted.push(await once('phi-probe')); }
  }
  agent.destroy();
  const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
  const r = { p50: median(redacted), p99: pct(redacted, 0.99) }, p = { p50: median(plain), p99: pct(plain, 0.99) };
  const added = r.p50 - p.p50;
  const fmt = (x: number) => x.toFixed(3);
  writeReport('phi-latency', { benchmark: 'phi-latency', date: new Date().toISOString(), requestsPerRoute: perRoute, noteBytes: note.length, machine: { cpus: cpus().length, node: process.version }, redacted: r, notRedacted: p, addedP50Ms: added }, [
    '# What the text redactor adds to a request (2 KB note, one connection)', '',
    `${new Date().toISOString()}; ${perRoute} requests per route, alternating; the same echo model on one node; the note declared free text (redacted into the audit view) or not PHI.`, '',
    '| route | p50 ms | p99 ms |', '| --- | --- | --- |',
    `| note redacted (text) | ${fmt(r.p50)} | ${fmt(r.p99)} |`,
    `| note not redacted (none) | ${fmt(p.p50)} | ${fmt(p.p99)} |`, '',
    `Added at p50 by redaction: **${fmt(added)} ms**.`, '',
  ].join('\n'));
} finally {
  await cluster.stop();
}
