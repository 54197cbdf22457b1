import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { redactFhir } from '../../src/phi/fhir-redactor.js';
import { redactText } from '../../src/phi/text-redactor.js';
import { Pseudonymizer } from '../../src/phi/pseudonym.js';
import { syntheaPatients } from '../helpers/synthea.js';

const psn = Pseudonymizer.fromSecret(randomBytes(32), 't1');
const pseudonym = (kind: string, v: string) => psn.pseudonym(kind, v);
const patients = syntheaPatients();

describe('FHIR redactor on every Synthea patient', () => {
  it('has the corpus', () => {
    expect(patients.length).toBeGreaterThanOrEqual(24);
  });

  for (const p of patients) {
    it(`${p.file.split('/').slice(-2).join('/')}: no identifier of the patient survives`, () => {
      const out = JSON.stringify(redactFhir(p.bundle, { pseudonym }));
      const leaked = p.identifiers.filter((id) => out.includes(id));
      expect(leaked).toEqual([]);
      // Clinical content stays: coded terminology and its display text.
      expect(out).toMatch(/"system":"http:\/\/(loinc\.org|snomed\.info\/sct|hl7\.org\/fhir\/sid\/cvx)","code":"[^"]+","display":"[^"[]+"/);
      expect(out).not.toMatch(/"text":"\[NAME\]"/);
    });
  }

  it('keeps the year of dates, three ZIP digits (000 when restricted), and pseudonymises identifiers stably', () => {
    const patient = {
      resourceType: 'Patient', id: 'abc', birthDate: '1961-04-12', gender: 'female',
      identifier: [{ system: 'urn:mrn', value: 'MRN123', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] } }],
      address: [{ line: ['1 Main St'], city: 'Springfield', state: 'MA', postalCode: '01970', country: 'US' }, { postalCode: '03601' }],
      name: [{ family: 'Doe', given: ['Jane'] }], telecom: [{ system: 'phone', value: '555-0100' }],
    };
    const out = redactFhir(patient, { pseudonym, now: new Date('2026-01-01') }) as any;
    expect(out.birthDate).toBe('1961');
    expect(out.address).toEqual([{ state: 'MA', country: 'US', postalCode: '019' }, { postalCode: '000' }]);
    expect(out.name).toBeUndefined();
    expect(out.telecom).toBeUndefined();
    expect(out.identifier[0].value).toBe(psn.pseudonym('identifier', 'MRN123'));
    expect(out.id).toBe(psn.pseudonym('fhir-id', 'abc'));
    expect((redactFhir({ resourceType: 'Patient', birthDate: '1930-05-01' }, { now: new Date('2026-01-01') }) as any).birthDate).toBeUndefined();
  });

  it('scrubs the notes (DocumentReference text) it carries', () => {
    const p = patients.find((x) => x.notes.length > 0)!;
    for (const note of p.notes.slice(0, 5)) {
      const scrubbed = redactText(note).text;
      for (const id of p.identifiers) expect(scrubbed).not.toContain(id);
    }
  });
});
