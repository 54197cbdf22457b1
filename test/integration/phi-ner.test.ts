import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, requestRecords, httpsCall, rid, startCluster, type Cluster } from '../helpers/cluster.js';
import { buildNerModel } from '../helpers/ner-model.js';
import { repositoryWithProbes } from '../helpers/phi-probe.js';

/**
 * The pluggable NER model: an ONNX token classifier on disk (here one the
 * test builds) whose spans join the rules' and the tagger's — in `cdsgate phi
 * redact` and in the gateway's audit view and de-identified requests.
 */
const ner = buildNerModel();
const NOTE = 'visited by brick house today. brickton at the house.';

const redact = (args: string[], text: string) => {
  const out = execFileSync(process.execPath, [CLI, 'phi', 'redact', ...args], { input: `${JSON.stringify({ id: '1', text })}\n`, encoding: 'utf8' });
  return JSON.parse(out) as { text: string; spans: Array<{ type: string }> };
};

describe('a pluggable NER model', () => {
  it('cdsgate phi redact --ner adds the model\'s spans (names the rules and the tagger cannot know)', () => {
    expect(redact([], NOTE).text).toBe(NOTE);
    const withModel = redact(['--ner', ner.dir, '--ner-sha256', ner.sha256], NOTE);
    expect(withModel.text).toBe('visited by [NAME] today. [NAME] at the [NAME].');
  });

  it('a model file that is not the pinned one is refused', () => {
    expect(() => execFileSync(process.execPath, [CLI, 'phi', 'redact', '--ner', ner.dir, '--ner-sha256', '0'.repeat(64)], { input: '{"id":"1","text":"x"}\n', encoding: 'utf8', stdio: 'pipe' }))
      .toThrow(/does not match the pinned/);
  });

  describe('in the gateway (phi.ner)', () => {
    let cluster: Cluster;
    beforeAll(async () => {
      cluster = await startCluster({
        nodes: 1, modelRepository: repositoryWithProbes(),
        gatewayPatch: (c) => {
          c.phi.ner = { dir: ner.dir, sha256: ner.sha256 };
          c.models['phi-probe'] = { pool: 'default', allowRoles: ['clinician'], phiInputs: { mrn: 'identifier', note: 'text', patient: 'fhir' } };
        },
      });
    }, 60_000);
    afterAll(async () => { await cluster?.stop(); });

    it('the audit view of a free-text input carries the model\'s redactions', async () => {
      const res = await httpsCall(cluster.gateway.ports.rest!, '/v2/models/phi-probe/infer', {
        ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token: await cluster.token(['clinician']), headers: { 'x-request-id': rid('ner') },
        body: { inputs: [
          { name: 'mrn', datatype: 'BYTES', shape: [1, 1], data: ['MRN-1'] },
          { name: 'note', datatype: 'BYTES', shape: [1, 1], data: [NOTE] },
          { name: 'patient', datatype: 'BYTES', shape: [1, 1], data: ['{"resourceType":"Patient","id":"MRN-1"}'] },
        ] },
      });
      expect(res.status, res.body).toBe(200);
      const record = requestRecords(cluster.secrets.auditDir).find((r) => r.requestId === rid('ner'))!;
      const note = (record.request.inputs as Array<{ name: string; redacted?: string[] }>).find((i) => i.name === 'note')!;
      expect(note.redacted).toEqual(['visited by [NAME] today. [NAME] at the [NAME].']);
    });
  });
});
