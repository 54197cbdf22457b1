import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestRecords, auditText, httpsCall, rid, startCluster, stopProcess, waitFor, type Cluster } from '../helpers/cluster.js';
import { repositoryWithProbes } from '../helpers/phi-probe.js';
import { syntheaPatients, type SyntheaPatient } from '../helpers/synthea.js';

const PHI_INPUTS = { mrn: 'identifier', note: 'text', patient: 'fhir' };
const patients = syntheaPatients();

let cluster: Cluster;
let token: string;

beforeAll(async () => {
  cluster = await startCluster({
    nodes: 2,
    modelRepository: repositoryWithProbes(),
    gatewayPatch: (c) => {
      // node-0 serves identified data, node-1 only de-identified data.
      c.pools = {
        default: { nodes: ['node-0'] },
        identified: { nodes: ['node-0'], dataClass: 'identified' },
        deid: { nodes: ['node-1'], dataClass: 'deidentified' },
      };
      c.models['phi-probe'] = { pool: 'identified', allowRoles: ['clinician'], phiInputs: PHI_INPUTS };
      c.models['phi-probe-deid'] = { pool: 'deid', allowRoles: ['clinician'], phiInputs: PHI_INPUTS, receives: 'deidentified' };
    },
  });
  token = await cluster.token(['clinician']);
});
afterAll(async () => { await cluster?.stop(); });

function body(p: SyntheaPatient, id: string) {
  const note = p.notes[0] ?? `${p.patient.name?.[0]?.given?.[0]} ${p.patient.name?.[0]?.family} seen on ${p.patient.birthDate}.`;
  return {
    id,
    inputs: [
      { name: 'mrn', datatype: 'BYTES', shape: [1, 1], data: [p.mrn] },
      { name: 'note', datatype: 'BYTES', shape: [1, 1], data: [note] },
      { name: 'patient', datatype: 'BYTES', shape: [1, 1], data: [JSON.stringify(p.patient)] },
    ],
  };
}

const call = (model: string, p: SyntheaPatient, requestId: string) => httpsCall(cluster.gateway.ports.rest!, `/v2/models/${model}/infer`, {
  ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token, body: body(p, requestId), headers: { 'x-request-id': rid(requestId) },
});

describe('PHI through the gateway, every Synthea patient', () => {
  it('no identifier of any patient reaches a log line or an audit record; pseudonyms are stable per MRN', async () => {
    for (const [i, p] of patients.entries()) {
      const res = await call('phi-probe', p, `phi-${i}`);
      expect(res.status, res.body).toBe(200);
      // The identified pool got the data as sent (this is what "identified" means).
      expect(res.json().outputs.find((o: { name: string }) => o.name === 'mrn_seen').data).toEqual([p.mrn]);
    }
    const again = await call('phi-probe', patients[0]!, 'phi-again');
    expect(again.status).toBe(200);
    await waitFor(() => cluster.gateway.logs.some((l) => l.includes(`"${rid('phi-again')}"`)), 5000, 'the last log line');

    const logs = [...cluster.gateway.logs, ...cluster.nodes.flatMap((n) => n.logs)].join('\n');
    const audit = auditText(join(cluster.dir, 'audit'));
    // An identifier counts as leaked where it stands as itself, not inside a longer run of letters and digits:
    // a five-digit ZIP turns up inside hex hashes and signatures by chance (one run in a few hundred).
    const standsIn = (text: string, id: string) => new RegExp(`(?<![A-Za-z0-9])${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z0-9])`).test(text);
    for (const p of patients) {
      const leakedToLogs = p.identifiers.filter((id) => standsIn(logs, id));
      const leakedToAudit = p.identifiers.filter((id) => standsIn(audit, id));
      expect({ patient: p.file, leakedToLogs, leakedToAudit }).toEqual({ patient: p.file, leakedToLogs: [], leakedToAudit: [] });
    }
    const records = requestRecords(join(cluster.dir, 'audit'));
    const first = records.find((r) => r.requestId === rid('phi-0'))!;
    const repeat = records.find((r) => r.requestId === rid('phi-again'))!;
    expect(first.patients.length).toBeGreaterThan(0);
    expect(repeat.patients).toEqual(first.patients);
    expect(new Set(records.filter((r) => patients.some((_, i) => r.requestId === rid(`phi-${i}`))).map((r) => r.patients[0])).size).toBe(new Set(patients.map((p) => p.mrn)).size);
    // The redacted view is there, and useful: the note's clinical text survives redaction.
    expect(first.request.inputs.find((x: any) => x.name === 'note').redacted[0]).toMatch(/\[(NAME|DATE)\]/);
  });

  it('a de-identified pool never sees raw PHI: what node-1 received carries none of the identifiers', async () => {
    for (const [i, p] of patients.entries()) {
      const res = await call('phi-probe-deid', p, `deid-${i}`);
      expect(res.status, res.body).toBe(200);
      const seen = res.json().outputs.map((o: { data: string[] }) => o.data.join('\n')).join('\n');
      expect(p.identifiers.filter((id) => seen.includes(id)), p.file).toEqual([]);
      const mrnSeen = res.json().outputs.find((o: { name: string }) => o.name === 'mrn_seen').data[0];
      expect(mrnSeen).toMatch(/^psn_dev1_[a-z2-7]{26}$/);
      expect(res.json().id).toBe(`deid-${i}`); // the caller's own id comes back
    }
  });

  it('a node that fails while the audit view of a note is being made: 503, the record still has the redacted view, nothing unhandled', async () => {
    // Last in this file: it stops node-1, which serves only the de-identified pool.
    await stopProcess(cluster.nodes[1]!, 'SIGKILL');
    const p = patients[0]!;
    const res = await call('phi-probe-deid', p, 'deid-down');
    expect(res.status, res.body).toBe(503);
    const record = requestRecords(join(cluster.dir, 'audit')).find((r) => r.requestId === rid('deid-down'))!;
    expect(record.status).not.toBe('ok');
    expect(record.request.inputs.find((x: any) => x.name === 'note').redacted).toHaveLength(1);
    expect(p.identifiers.filter((id) => JSON.stringify(record).includes(id))).toEqual([]);
    // The gateway is still serving the identified pool.
    expect((await call('phi-probe', p, 'after-down')).status).toBe(200);
  });
});

