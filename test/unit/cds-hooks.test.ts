import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CdsError } from '../../src/errors.js';
import { news2CdsService } from '../../src/cli/dev-config.js';
import { loadGatewayConfig } from '../../src/config/load.js';
import type { CdsServiceConfig } from '../../src/config/schema.js';
import { featureRow, observationsIn } from '../../src/cds-hooks/observations.js';
import { cardForMissingData, cardsFromOutputs } from '../../src/cds-hooks/cards.js';
import { parseFeedback, parseHookRequest } from '../../src/cds-hooks/hook-request.js';
import { renderTemplate } from '../../src/cds-hooks/prefetch.js';
import { join } from 'node:path';
import { ROOT } from '../helpers/cluster.js';

const service = loadGatewayConfig(join(ROOT, 'config/examples/gateway.json')).cdsHooks!.services['news2-deterioration'] as CdsServiceConfig;
const NOW = Date.parse('2026-11-27T12:00:00Z');
const hoursAgo = (h: number) => new Date(NOW - h * 3_600_000).toISOString();
const obs = (code: string, value: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Observation', status: 'final', subject: { reference: 'Patient/p1' }, effectiveDateTime: hoursAgo(1),
  code: { coding: [{ system: 'http://loinc.org', code }] }, ...value, ...extra,
});
const q = (value: number, code: string) => ({ valueQuantity: { value, code, system: 'http://unitsofmeasure.org' } });
const row = (observations: unknown[]) => featureRow(observationsIn([{ resourceType: 'Bundle', entry: observations.map((resource) => ({ resource })) }]), 'p1', service.input, NOW);
const complete = () => [
  obs('9279-1', q(20, '/min')), obs('59408-5', q(96, '%')), obs('3151-8', q(0, 'L/min')),
  obs('85354-9', { component: [{ code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, ...q(120, 'mm[Hg]') }] }),
  obs('8867-4', q(80, '/min')), obs('67775-7', { valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '248234008' }] } }),
  obs('8310-5', q(98.6, '[degF]')),
];

describe('FHIR Observations to the NEWS2 input row', () => {
  it('reads every column, from components too, converting °F to °C and reading oxygen flow 0 as air', () => {
    const r = row(complete());
    expect(r.missing).toEqual([]);
    expect(r.values.map((v) => [v.label, Math.round(v.value * 1000) / 1000])).toEqual([
      ['respiration_rate', 20], ['spo2_scale1', 96], ['supplemental_oxygen', 0], ['systolic_bp', 120], ['pulse', 80], ['consciousness_cvpu', 0], ['temperature', 37],
    ]);
  });

  it('the latest usable observation wins; stale, future, unusable-status and unit-less ones are never used', () => {
    const observations = [
      ...complete(),
      obs('9279-1', q(30, '/min'), { effectiveDateTime: hoursAgo(0.5) }),
      obs('9279-1', q(8, '/min'), { effectiveDateTime: hoursAgo(0.1), status: 'entered-in-error' }),
      obs('9279-1', q(9, '/min'), { effectiveDateTime: new Date(NOW + 3_600_000).toISOString() }),
      obs('8867-4', { valueQuantity: { value: 200 } }, { effectiveDateTime: hoursAgo(0.1) }),
    ];
    const r = row(observations);
    expect(r.values.find((v) => v.label === 'respiration_rate')!.value).toBe(30);
    expect(r.values.find((v) => v.label === 'pulse')!.value).toBe(80);
    const stale = row(complete().map((o) => ({ ...o, effectiveDateTime: hoursAgo(25) })));
    expect(stale.values).toEqual([]);
    expect(stale.missing).toHaveLength(7);
  });

  it('a column with no observation is missing, never filled in; another patient\'s observations are counted and ignored', () => {
    const r = row([...complete().filter((o) => o.code.coding[0]!.code !== '67775-7'), obs('9279-1', q(40, '/min'), { subject: { reference: 'Patient/p2' }, effectiveDateTime: hoursAgo(0.1) })]);
    expect(r.missing).toEqual(['consciousness_cvpu']);
    expect(r.otherPatients).toBe(1);
    expect(r.values.find((v) => v.label === 'respiration_rate')!.value).toBe(20);
  });

  it('never throws on arbitrary JSON in the prefetch', () => {
    fc.assert(fc.property(fc.array(fc.jsonValue()), (values) => {
      const r = featureRow(observationsIn(values), 'p1', service.input, NOW);
      expect(r.values.length + r.missing.length).toBe(7);
    }));
  });
});

describe('cards', () => {
  const outputs = (score: number, risk: number) => [
    { name: 'news2_score', datatype: 'FP32' as const, shape: [1, 1], data: Float32Array.of(score) },
    { name: 'risk', datatype: 'INT64' as const, shape: [1, 1], data: BigInt64Array.of(BigInt(risk)) },
  ];
  it('summary from outputs and labels, indicator by risk band, source, a fresh uuid', () => {
    const [a] = cardsFromOutputs(service.cards, outputs(6, 2));
    const [b] = cardsFromOutputs(service.cards, outputs(0, 0));
    expect(a).toMatchObject({ summary: 'NEWS2 6: medium clinical risk', indicator: 'warning', source: { label: service.cards.source.label } });
    expect(b).toMatchObject({ summary: 'NEWS2 0: low clinical risk', indicator: 'info' });
    expect(a!.uuid).not.toBe(b!.uuid);
  });
  it('a minimum band yields no card below it; summaries are cut to 140 characters', () => {
    expect(cardsFromOutputs({ ...service.cards, minimum: 1 }, outputs(0, 0))).toEqual([]);
    const [long] = cardsFromOutputs({ ...service.cards, summary: `${'x'.repeat(200)} {{news2_score}}` }, outputs(3, 1));
    expect(long!.summary.length).toBe(140);
    expect(cardForMissingData(service.cards, service.title, ['respiration_rate'], 24)[0]!.summary.length).toBeLessThanOrEqual(140);
    expect(cardForMissingData({ ...service.cards, whenDataMissing: 'none' }, service.title, ['pulse'], 24)).toEqual([]);
  });
});

describe('hook requests and prefetch templates', () => {
  // The spec's patient-view example (CDS Hooks 2.0, "HTTP Request" example), with its FHIR server and authorization.
  const specExample = {
    hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea',
    fhirServer: 'https://fhir.example.org',
    hook: 'patient-view',
    fhirAuthorization: { access_token: 'some-opaque-fhir-access-token', token_type: 'Bearer', expires_in: 300, scope: 'user/Patient.read user/Observation.read', subject: 'cds-service4' },
    context: { userId: 'Practitioner/example', patientId: '1288992', encounterId: '89284' },
    prefetch: { patientToGreet: { resourceType: 'Patient', gender: 'male', birthDate: '1925-12-23', id: '1288992', active: true } },
  };
  it('accepts the spec example and renders templates from its context, URL-encoded', () => {
    const request = parseHookRequest(specExample, 'patient-view');
    expect(renderTemplate('Observation?patient={{context.patientId}}&encounter={{context.encounterId}}', request)).toBe('Observation?patient=1288992&encounter=89284');
    expect(renderTemplate('Practitioner/{{userPractitionerId}}', request)).toBe('Practitioner/example');
    expect(renderTemplate('Observation?x={{context.medications}}', request)).toBeUndefined();
  });
  it('an optional field sent as null is absent (EHR SDKs write unset fields as null); a required one is still refused', () => {
    const request = parseHookRequest({ ...specExample, fhirServer: null, fhirAuthorization: null, prefetch: null, extension: null, context: { ...specExample.context, encounterId: null } }, 'patient-view');
    expect(request).not.toHaveProperty('fhirServer');
    expect(request).not.toHaveProperty('fhirAuthorization');
    expect(request.prefetch).toEqual({});
    expect(request.context.encounterId).toBeUndefined();
    expect(renderTemplate('Observation?patient={{context.patientId}}&encounter={{context.encounterId}}', request)).toBeUndefined();
    expect(parseHookRequest({ ...specExample, fhirAuthorization: { ...specExample.fhirAuthorization, patient: null } }, 'patient-view').fhirAuthorization).not.toHaveProperty('patient', null);
    expect(() => parseHookRequest({ ...specExample, context: { ...specExample.context, patientId: null } }, 'patient-view')).toThrow(/context.patientId/);
    expect(() => parseHookRequest({ ...specExample, hookInstance: null }, 'patient-view')).toThrow(CdsError);
    // Absent authorization with a server is fine; authorization without a server is still refused (cds-r-1).
    expect(() => parseHookRequest({ ...specExample, fhirServer: null }, 'patient-view')).toThrow(/fhirServer is required/);
  });
  it('feedback with its optional fields null reads as without them; an accepted card still needs its suggestions', () => {
    const card = '9368d37b-283f-44a0-93ea-547cebab93ed';
    const at = '2026-12-06T10:00:00Z';
    expect(parseFeedback({ feedback: [{ card, outcome: 'overridden', outcomeTimestamp: at, acceptedSuggestions: null, overrideReason: { reason: { code: 'x', system: null, display: null }, userComment: null } }] }))
      .toEqual(parseFeedback({ feedback: [{ card, outcome: 'overridden', outcomeTimestamp: at, overrideReason: { reason: { code: 'x' } } }] }));
    expect(parseFeedback({ feedback: [{ card, outcome: 'overridden', outcomeTimestamp: at, overrideReason: null }] })[0]!.overrideReason).toBeUndefined();
    expect(() => parseFeedback({ feedback: [{ card, outcome: 'accepted', outcomeTimestamp: at, acceptedSuggestions: null }] })).toThrow(/acceptedSuggestions is required/);
  });
  it('refuses anything outside the spec with a CdsError, whatever the input', () => {
    fc.assert(fc.property(fc.jsonValue(), (body) => {
      try {
        parseHookRequest(body, 'patient-view');
      } catch (err) {
        expect(err).toBeInstanceOf(CdsError);
      }
      try {
        parseFeedback(body);
      } catch (err) {
        expect(err).toBeInstanceOf(CdsError);
      }
    }));
  });
  it('the worked example config is the one the dev gateway runs', () => {
    expect(news2CdsService('patient-view').model).toBe('news2');
  });
});
