import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { SignJWT, UnsecuredJWT, importJWK, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_EHR_ISSUER, mintCdsClientToken } from '../../src/auth/dev-issuer.js';
import { exampleHookRequest } from '../../src/cli/start.js';
import { requestRecords, auditText, httpsCall, makeMaterial, scrapeMetrics, startCluster, type Cluster, type Material } from '../helpers/cluster.js';
import { syntheaPatients } from '../helpers/synthea.js';

/**
 * The CDS Hooks 2.0 door on a real gateway and node. The FHIR server is a
 * FIXTURE (no FHIR server from the npm registry runs here without a database
 * or Java): an HTTPS server that answers Observation searches from the Synthea
 * bundles in ../shared/data/synthea, rewriting their transaction-bundle
 * urn:uuid subjects to Patient/<id> as a server would once it stored them.
 */
let material: Material;
let cluster: Cluster;
let fhir: Server;
let fhirUrl: string;
const FHIR_TOKEN = `fhir-access-${randomUUID()}`;
const fhirRequests: Array<{ url: string; authorization: string | undefined }> = [];
/** What the fixture serves per patient id. */
const fhirData = new Map<string, unknown[]>();

const patient = syntheaPatients().find((p) => p.bundle.entry.some((e: any) => e.resource.resourceType === 'Observation' && e.resource.code?.coding?.some((c: any) => c.code === '9279-1')))!;
const syntheaId: string = patient.patient.id;

beforeAll(async () => {
  material = await makeMaterial();
  // Synthea's observations, subjects rewritten to Patient/<id>.
  fhirData.set(syntheaId, patient.bundle.entry.map((e: any) => e.resource).filter((r: any) => r.resourceType === 'Observation')
    .map((r: any) => ({ ...r, subject: { reference: `Patient/${syntheaId}` } })));
  // The worked example's seven recent observations, for a fetch that scores.
  const example = exampleHookRequest().prefetch as Record<string, { entry: Array<{ resource: Record<string, unknown> }> }>;
  fhirData.set('fetched-example', Object.values(example).flatMap((b) => b.entry.map((e) => ({ ...e.resource, subject: { reference: 'Patient/fetched-example' } }))));

  fhir = createServer({ cert: readFileSync(material.pki.gatewayServer.cert), key: readFileSync(material.pki.gatewayServer.key) }, (req, res) => {
    fhirRequests.push({ url: req.url!, authorization: req.headers.authorization });
    if (req.headers.authorization !== `Bearer ${FHIR_TOKEN}`) { res.writeHead(401).end(); return; }
    const url = new URL(req.url!, 'https://localhost');
    if (url.pathname !== '/fhir/Observation') { res.writeHead(404).end(); return; }
    const code = url.searchParams.get('code')?.split('|')[1];
    const observations = (fhirData.get(url.searchParams.get('patient') ?? '') ?? [])
      .filter((o: any) => !code || o.code?.coding?.some((c: any) => c.code === code));
    res.writeHead(200, { 'content-type': 'application/fhir+json' });
    res.end(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry: observations.map((resource) => ({ resource })) }));
  });
  await new Promise<void>((r) => fhir.listen(0, '127.0.0.1', r));
  fhirUrl = `https://localhost:${(fhir.address() as AddressInfo).port}/fhir`;
  cluster = await startCluster({ nodes: 1, material, gatewayPatch: (c) => { c.cdsHooks.clients[0].fhirServers = [fhirUrl]; } });
}, 90_000);
afterAll(async () => {
  await cluster?.stop();
  fhir?.close();
});

const base = () => `https://localhost:${cluster.gateway.ports.rest}`;
const serviceUrl = (id = 'news2-deterioration') => `${base()}/cds-services/${id}`;
const call = async (path: string, token: string | undefined, body?: unknown, method = body === undefined ? 'GET' : 'POST') =>
  httpsCall(cluster.gateway.ports.rest!, path, { ca: material.pki.ca, identity: material.pki.apps.ehr, method, ...(token ? { token } : {}), ...(body !== undefined ? { body } : {}) });
const token = (aud: string, extra: Parameters<typeof mintCdsClientToken>[1] extends infer O ? Partial<O> : never = {}) => mintCdsClientToken(material.ehr.privateJwk, { audience: aud, ...extra });
const invoke = async (body: unknown, id = 'news2-deterioration') => call(`/cds-services/${id}`, await token(serviceUrl(id)), body);
const hookRequest = (patch: Record<string, unknown> = {}) => ({ ...exampleHookRequest(), hookInstance: randomUUID(), ...patch });
const lastRecord = () => requestRecords(cluster.secrets.auditDir).at(-1)!;

describe('CDS Hooks: discovery, service, feedback', () => {
  it('discovery lists each configured service with hook, id, title, description and prefetch', async () => {
    const res = await call('/cds-services', await token(`${base()}/cds-services`));
    expect(res.status).toBe(200);
    const services = res.json().services as Array<Record<string, unknown>>;
    expect(services.map((s) => [s.id, s.hook])).toEqual([['news2-deterioration', 'patient-view'], ['news2-encounter-start', 'encounter-start']]);
    for (const s of services) {
      expect(typeof s.title).toBe('string');
      expect(typeof s.description).toBe('string');
      expect(Object.keys(s.prefetch as object)).toEqual(['vitals', 'responsiveness']);
    }
  });

  it('the worked example: prefetched vitals give a NEWS2 10, high-risk, critical card; the audit keeps pseudonyms and a card digest', async () => {
    const request = hookRequest();
    const res = await invoke(request);
    expect(res.status).toBe(200);
    const [card, ...rest] = res.json().cards as Array<Record<string, any>>;
    expect(rest).toEqual([]);
    expect(card!.summary).toBe('NEWS2 10: high clinical risk');
    expect(card!.summary.length).toBeLessThanOrEqual(140);
    expect(card!.indicator).toBe('critical');
    expect(card!.source.label).toMatch(/NEWS2/);
    expect(card!.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(card!.detail).toMatch(/respiration 24\/min/);
    const record = lastRecord();
    expect(record).toMatchObject({ door: 'cds-hooks', route: 'cds-service', outcome: 'success', model: { name: 'news2', version: '1' } });
    expect(record.cds).toMatchObject({ service: 'news2-deterioration', hook: 'patient-view', hookInstance: request.hookInstance, cards: [{ uuid: card!.uuid, indicator: 'critical' }] });
    expect(record.patients).toHaveLength(1);
    expect(record.patients[0]).not.toContain('example');
    expect(record.principal.sub).not.toContain('Practitioner/example');
    expect(record.principal.issuer).toBe(DEV_EHR_ISSUER);
    expect(JSON.stringify(record)).not.toContain(card!.summary);
  });

  it('context fields a hook does not define and request extensions are ignored, as EHRs add their own', async () => {
    const res = await invoke(hookRequest({ context: { userId: 'Practitioner/example', patientId: 'example', userPractitionerRoleId: 'r1' }, extension: { 'com.example.ehr': { tab: 'summary' } } }));
    expect(res.status).toBe(200);
    expect(res.json().cards[0].summary).toBe('NEWS2 10: high clinical risk');
  });

  it('encounter-start needs an encounterId; the other service answers it', async () => {
    const missing = await invoke(hookRequest({ hook: 'encounter-start' }), 'news2-encounter-start');
    expect(missing.status).toBe(400);
    expect(missing.json().error).toMatch(/context\.encounterId/);
    const ok = await invoke(hookRequest({ hook: 'encounter-start', context: { userId: 'Practitioner/example', patientId: 'example', encounterId: 'enc-1' } }), 'news2-encounter-start');
    expect(ok.status).toBe(200);
    expect(ok.json().cards[0].summary).toBe('NEWS2 10: high clinical risk');
  });

  it('missing prefetch is fetched from the FHIR server with the fhirAuthorization token, which never reaches logs or audit', async () => {
    fhirRequests.length = 0;
    const request = hookRequest({
      context: { userId: 'Practitioner/example', patientId: 'fetched-example' }, prefetch: { vitals: null },
      fhirServer: fhirUrl, fhirAuthorization: { access_token: FHIR_TOKEN, token_type: 'Bearer', expires_in: 300, scope: 'patient/Observation.rs', subject: 'cdsgate' },
    });
    const res = await invoke(request);
    expect(res.status).toBe(200);
    expect(res.json().cards[0].summary).toBe('NEWS2 10: high clinical risk');
    expect(fhirRequests.map((r) => r.url.split('?')[0])).toEqual(['/fhir/Observation', '/fhir/Observation']);
    expect(fhirRequests.every((r) => r.authorization === `Bearer ${FHIR_TOKEN}`)).toBe(true);
    expect(lastRecord().cds.fetched).toEqual(['vitals', 'responsiveness']);
    expect(auditText(cluster.secrets.auditDir)).not.toContain(FHIR_TOKEN);
    expect(cluster.gateway.logs.join('\n')).not.toContain(FHIR_TOKEN);
    expect(await scrapeMetrics(cluster.gateway.ports.admin!)).not.toContain(FHIR_TOKEN);
  });

  it('Synthea vitals from years ago are stale: an honest card naming what is missing, and no score', async () => {
    const res = await invoke(hookRequest({
      context: { userId: 'Practitioner/example', patientId: syntheaId }, prefetch: {},
      fhirServer: fhirUrl, fhirAuthorization: { access_token: FHIR_TOKEN, token_type: 'Bearer', expires_in: 300, scope: 'patient/Observation.rs', subject: 'cdsgate' },
    }));
    expect(res.status).toBe(200);
    const [card] = res.json().cards;
    expect(card.indicator).toBe('info');
    expect(card.summary).toMatch(/not calculated/);
    expect(card.summary).not.toMatch(/NEWS2 \d/);
    expect(lastRecord().cds.missing).toContain('respiration_rate');
    expect(lastRecord().model).toEqual({ name: 'news2' }); // the model was not run
    expect(auditText(cluster.secrets.auditDir)).not.toContain(syntheaId);
  });

  it('an observation about another patient in the prefetch is never used', async () => {
    const request = hookRequest() as any;
    for (const e of request.prefetch.vitals.entry) if (e.resource.id === 'rr') e.resource.subject.reference = 'Patient/someone-else';
    const res = await invoke(request);
    expect(res.json().cards[0].summary).toMatch(/not calculated — no recent respiration_rate/);
    expect(lastRecord().cds.ignoredOtherPatients).toBe(1);
  });

  it('412 when data is missing and there is no FHIR server to fetch it from, or one the client may not name', async () => {
    const none = await invoke(hookRequest({ prefetch: {} }));
    expect(none.status).toBe(412);
    expect(none.json().error).toMatch(/fhirServer and fhirAuthorization/);
    const elsewhere = await invoke(hookRequest({
      prefetch: {}, fhirServer: 'https://attacker.example/fhir',
      fhirAuthorization: { access_token: FHIR_TOKEN, token_type: 'Bearer', expires_in: 300, scope: 'patient/Observation.rs', subject: 'cdsgate' },
    }));
    expect(elsewhere.status).toBe(412);
    expect(elsewhere.json().error).toMatch(/not one this CDS client may send/);
    const narrow = await invoke(hookRequest({
      prefetch: {}, fhirServer: fhirUrl,
      fhirAuthorization: { access_token: FHIR_TOKEN, token_type: 'Bearer', expires_in: 300, scope: 'patient/Patient.rs', subject: 'cdsgate' },
    }));
    expect(narrow.status).toBe(412);
    expect(narrow.json().error).toMatch(/does not grant the FHIR access/);
    expect(lastRecord()).toMatchObject({ outcome: 'failure', code: 412 });
  });

  it('malformed hook requests are 400s naming the field, never echoing the value', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ hookInstance: 'not-a-uuid' }, /hookInstance/],
      [{ hook: 'order-sign' }, /answers the patient-view hook/],
      [{ context: { userId: 'Practitioner/x', patientId: '../Patient?_id=1' } }, /context\.patientId/],
      [{ context: { userId: 'Device/x', patientId: 'example' } }, /context\.userId/],
      [{ fhirAuthorization: { access_token: 'x', token_type: 'Bearer', expires_in: 1, scope: 's', subject: 'c' } }, /fhirServer/],
    ];
    for (const [patch, message] of cases) {
      const res = await invoke(hookRequest(patch));
      expect(res.status, JSON.stringify(patch)).toBe(400);
      expect(res.json().error).toMatch(message);
      expect(res.body).not.toContain('../Patient');
    }
    const array = await invoke([1, 2]);
    expect(array.status).toBe(400);
  });

  it('an unknown service is a 404 whose id the audit keeps only as a pseudonym', async () => {
    const res = await invoke(hookRequest(), 'jane-doe-1970');
    expect(res.status).toBe(404);
    expect(lastRecord().cds.service).toMatch(/^\(unknown\) /);
    expect(auditText(cluster.secrets.auditDir)).not.toContain('jane-doe-1970');
  });

  it('feedback: accepted and overridden outcomes are recorded (reason code, never the comment) and counted; malformed feedback is a 400', async () => {
    const url = `${serviceUrl()}/feedback`;
    const card = randomUUID();
    const res = await call('/cds-services/news2-deterioration/feedback', await token(url), {
      feedback: [
        { card, outcome: 'overridden', overrideReason: { reason: { system: 'http://example.org/reasons', code: 'already-escalated', display: 'Already escalated' }, userComment: 'Spoke to Dr Jane Smith' }, outcomeTimestamp: new Date().toISOString() },
        { card: randomUUID(), outcome: 'accepted', acceptedSuggestions: [], outcomeTimestamp: new Date().toISOString() },
      ],
    });
    expect(res.status).toBe(200);
    const record = lastRecord();
    expect(record.route).toBe('cds-feedback');
    expect(record.cds.feedback[0]).toEqual({ card, outcome: 'overridden', reason: 'http://example.org/reasons|already-escalated', comment: true });
    expect(auditText(cluster.secrets.auditDir)).not.toContain('Jane Smith');
    expect(await scrapeMetrics(cluster.gateway.ports.admin!)).toMatch(/cdsgate_cds_feedback_total\{service="news2-deterioration",outcome="overridden"\} 1/);
    const bad = await call('/cds-services/news2-deterioration/feedback', await token(url), { feedback: [{ card, outcome: 'ignored', outcomeTimestamp: 'yesterday' }] });
    expect(bad.status).toBe(400);
  });
});

describe('CDS Hooks: the client JWT rules (each attack fails)', () => {
  const body = () => hookRequest();
  const jwk = () => JSON.parse(readFileSync(material.ehr.privateJwk, 'utf8')) as JWK;
  const signed = async (claims: Record<string, unknown>, header: Record<string, unknown> = {}, alg = 'ES384') => {
    const key = await importJWK(jwk(), alg);
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: DEV_EHR_ISSUER, aud: serviceUrl(), iat: now, exp: now + 120, jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg, kid: jwk().kid!, typ: 'JWT', ...header }).sign(key);
  };
  const expect401 = async (tokenValue: string | undefined, message: RegExp) => {
    const res = await call('/cds-services/news2-deterioration', tokenValue, body());
    expect(res.status).toBe(401);
    expect(res.json().error).toMatch(message);
    expect(lastRecord()).toMatchObject({ door: 'cds-hooks', outcome: 'failure', status: 'unauthenticated' });
  };

  it('no token', async () => expect401(undefined, /Bearer <JWT>/));
  it('aud of another service, or of the discovery URL', async () => {
    await expect401(await token(serviceUrl('news2-encounter-start')), /exact URL called/);
    await expect401(await token(`${base()}/cds-services`), /exact URL called/);
  });
  it('aud on another host', async () => expect401(await token(serviceUrl().replace('localhost', 'cds.example.org')), /exact URL called/));
  it('a replayed jti', async () => {
    const once = await token(serviceUrl());
    expect((await call('/cds-services/news2-deterioration', once, body())).status).toBe(200);
    await expect401(once, /already used/);
  });
  it('a jku that is not on the allow-list', async () => expect401(await signed({}, { jku: 'https://attacker.example/jwks.json' }), /jku/));
  it('HS256 (a symmetric key) and alg none', async () => {
    const hmac = await new SignJWT({ iss: DEV_EHR_ISSUER, aud: serviceUrl(), jti: randomUUID() }).setProtectedHeader({ alg: 'HS256', kid: jwk().kid!, typ: 'JWT' })
      .setIssuedAt().setExpirationTime('2m').sign(new TextEncoder().encode('a shared secret a shared secret!!'));
    await expect401(hmac, /algorithm is not allowed/);
    const none = new UnsecuredJWT({ iss: DEV_EHR_ISSUER, aud: serviceUrl(), jti: randomUUID() }).setIssuedAt().setExpirationTime('2m').encode();
    await expect401(none, /algorithm is not allowed/);
  });
  it('expired', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expect401(await signed({ iat: now - 1000, exp: now - 600 }), /expired/);
  });
  it('missing jti, iat or exp', async () => {
    await expect401(await signed({ jti: undefined }), /"jti"/);
    await expect401(await signed({ iat: undefined }), /"iat"/);
    await expect401(await signed({ exp: undefined }), /"exp"/);
  });
  it('missing kid, or typ other than JWT', async () => {
    await expect401(await signed({}, { kid: undefined }), /kid/);
    await expect401(await signed({}, { typ: 'at+jwt' }), /typ/);
  });
  it('an issuer that is not a configured CDS client', async () => expect401(await signed({ iss: 'https://other-ehr.example' }), /not a configured CDS client/));
  it('a token signed by another key with the same kid', async () => {
    const other = await (await import('jose')).generateKeyPair('ES384');
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({ iss: DEV_EHR_ISSUER, aud: serviceUrl(), iat: now, exp: now + 60, jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES384', kid: jwk().kid!, typ: 'JWT' }).sign(other.privateKey);
    await expect401(forged, /signature is invalid/);
  });
  it('a KServe user token is not a CDS client token', async () => expect401(await cluster.token(['clinician']), /not a configured CDS client/));
  it('no client certificate: the handshake is refused before any of this', async () => {
    await expect(httpsCall(cluster.gateway.ports.rest!, '/cds-services', { ca: material.pki.ca })).rejects.toThrow();
  });
});
