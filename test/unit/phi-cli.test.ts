import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cluster.js';

function run(args: string[], stdin: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    child.stdin!.end(stdin);
  });
}

describe('cdsgate phi redact', () => {
  it('redacts JSON Lines of text with spans into the original', async () => {
    const text = 'Seen by Dr. Alvarez on 03/04/2021, call 617-555-0123.';
    const out = await run(['phi', 'redact'], `${JSON.stringify({ id: 'n1', text })}\n`);
    expect(out.code).toBe(0);
    const line = JSON.parse(out.stdout);
    expect(line.text).toBe('Seen by Dr. [NAME] on [DATE], call [PHONE].');
    expect(line.spans.map((s: { start: number; end: number }) => text.slice(s.start, s.end))).toEqual(['Alvarez', '03/04/2021', '617-555-0123']);
  });

  it('redacts FHIR with keyed pseudonyms', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-phi-'));
    writeFileSync(join(dir, 'k'), randomBytes(32).toString('base64'));
    const out = await run(['phi', 'redact', '--fhir', '--key-file', join(dir, 'k'), '--key-id', 'k1'],
      '{"resourceType":"Patient","id":"x","identifier":[{"value":"MRN-1"}],"name":[{"family":"Doe"}],"birthDate":"1961-04-12","address":[{"city":"Boston","postalCode":"02115"}]}\n');
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ resourceType: 'Patient', birthDate: '1961', address: [{ postalCode: '021' }], identifier: [{ value: expect.stringMatching(/^psn_k1_/) }] });
    expect(out.stdout).not.toMatch(/Doe|Boston|MRN-1|02115/);
  });

  it('names a bad line and exits non-zero', async () => {
    const out = await run(['phi', 'redact'], '{"id":"ok","text":"fine"}\nnot json\n');
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/line 2 is not valid JSON/);
  });
});
