import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestRecords, httpsCall, rid, startCluster, type Cluster } from '../helpers/cluster.js';
import { repositoryWithProbes } from '../helpers/phi-probe.js';

/**
 * SMART scopes and launch context through the gateway: a model opened by scopes
 * alone (no roles), and a patient/ scope that binds each request to the
 * token's patient, checked against the model's identifier input (mrn).
 */
let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({
    nodes: 1,
    modelRepository: repositoryWithProbes(),
    gatewayPatch: (c) => {
      c.models['phi-probe'] = {
        pool: 'default', allowRoles: [], scopes: ['patient/Observation.rs', 'user/Observation.rs'],
        phiInputs: { mrn: 'identifier', note: 'text', patient: 'fhir' },
      };
    },
  });
}, 60_000);
afterAll(async () => { await cluster?.stop(); });

// The FHIR input is about the same patient as the identifier input unless a test says otherwise.
const body = (mrn: string, fhir = JSON.stringify({ resourceType: 'Patient', id: mrn })) => ({
  inputs: [
    { name: 'mrn', datatype: 'BYTES', shape: [1, 1], data: [mrn] },
    { name: 'note', datatype: 'BYTES', shape: [1, 1], data: ['stable'] },
    { name: 'patient', datatype: 'BYTES', shape: [1, 1], data: [fhir] },
  ],
});
const call = (token: string, mrn: string, id: string, fhir?: string) => httpsCall(cluster.gateway.ports.rest!, '/v2/models/phi-probe/infer', {
  ca: cluster.pki.ca, identity: cluster.pki.apps.smart, token, body: body(mrn, fhir), headers: { 'x-request-id': rid(id) },
});

describe('SMART scopes and launch context (real processes)', () => {
  it('a patient/ scope serves its own patient, and refuses another with 403, audited', async () => {
    const token = await cluster.token([], { claims: { scope: 'launch/patient patient/Observation.read openid', patient: 'MRN-0042' } });
    expect((await call(token, 'MRN-0042', 'own')).status).toBe(200);
    const other = await call(token, 'MRN-0099', 'other');
    expect(other.status).toBe(403);
    expect(other.json().error).toMatch(/acts for one patient/);
    const record = requestRecords(join(cluster.dir, 'audit')).find((r) => r.requestId === rid('other'))!;
    expect(record).toMatchObject({ outcome: 'failure', status: 'permission_denied' });
    expect(JSON.stringify(record)).not.toContain('MRN-0099');
  });

  it('a FHIR input about another patient (a Patient resource, a subject reference, a Bundle entry) is refused under a patient/ scope', async () => {
    const token = await cluster.token([], { claims: { scope: 'patient/Observation.rs', patient: 'MRN-0042' } });
    const observation = (subject: string) => JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: subject } });
    expect((await call(token, 'MRN-0042', 'fhir-own', observation('Patient/MRN-0042'))).status).toBe(200);
    expect((await call(token, 'MRN-0042', 'fhir-other-patient', JSON.stringify({ resourceType: 'Patient', id: 'MRN-0099' }))).status).toBe(403);
    expect((await call(token, 'MRN-0042', 'fhir-other-subject', observation('https://fhir.example.org/r4/Patient/MRN-0099'))).status).toBe(403);
    const bundle = JSON.stringify({
      resourceType: 'Bundle', type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:1f0c', resource: { resourceType: 'Patient', id: 'MRN-0099' } },
        { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:1f0c' } } },
      ],
    });
    expect((await call(token, 'MRN-0042', 'fhir-bundle', bundle)).status).toBe(403);
    expect((await call(token, 'MRN-0042', 'fhir-unreadable', 'not json')).status).toBe(403);
  });

  it('a user/ scope is not bound to one patient; no covering scope is 403; a patient/ scope without a patient claim is 403', async () => {
    const user = await cluster.token([], { claims: { scope: 'user/*.rs' } });
    expect((await call(user, 'MRN-0099', 'user')).status).toBe(200);
    const wrong = await cluster.token([], { claims: { scope: 'patient/Condition.rs', patient: 'MRN-0042' } });
    expect((await call(wrong, 'MRN-0042', 'wrong')).status).toBe(403);
    const noPatient = await cluster.token([], { claims: { scope: 'patient/Observation.rs' } });
    expect((await call(noPatient, 'MRN-0042', 'nopatient')).status).toBe(403);
  });
});
