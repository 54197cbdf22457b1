import type { AuditLine } from './record.js';
import { readAuditText } from './log.js';

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const SOURCE_TYPE = 'http://terminology.hl7.org/CodeSystem/security-source-type';
export const PSEUDONYM_SYSTEM = 'urn:cdsgate:patient-pseudonym';
export const MODEL_SYSTEM = 'urn:cdsgate:model';

type Json = Record<string, unknown>;

/** What an AuditEvent from a dispatch record with no record of its own after it says instead of an outcome. */
const UNFINISHED = 'unknown: the gateway stopped before this request\'s own record reached the disk';

/** BALP-style outcome: 0 success, 4 minor failure (the caller's), 8 serious failure (ours or a node's). */
const outcomeOf = (code: number): string => (code < 400 ? '0' : code < 500 ? '4' : '8');

/**
 * One audit record → one FHIR R4 AuditEvent in the shape of IHE BALP:
 * action E (execute), type Application Activity, subtype the route; agents
 * for the calling application (with network address), the user (requestor,
 * with the token id as policy and purpose of use) and the gateway; the gateway
 * as source observer; entities for each patient pseudonym and the model.
 */
export function toAuditEvent(r: AuditLine & { type: 'request' | 'dispatch' }, gateway: string): Json {
  const purposes = r.purposeOfUse.map((code) => ({ coding: [{ system: ACT_REASON, code }] }));
  const agents: Json[] = [];
  if (r.client) {
    agents.push({
      type: { coding: [{ system: DCM, code: '110153', display: 'Source Role ID' }] },
      who: { identifier: { value: r.client.name } },
      altId: r.client.thumbprint,
      requestor: r.principal === null,
      ...('remoteAddress' in r && r.remoteAddress ? { network: { address: r.remoteAddress.replace(/^::ffff:/, ''), type: '2' } } : {}),
    });
  }
  if (r.principal) {
    agents.push({
      who: { identifier: { system: r.principal.issuer, value: r.principal.sub } },
      ...(r.principal.clientId ? { altId: r.principal.clientId } : {}),
      role: r.principal.roles.map((role) => ({ text: role })),
      requestor: true,
      ...(r.principal.tokenId ? { policy: [r.principal.tokenId] } : {}),
      ...(purposes.length ? { purposeOfUse: purposes } : {}),
    });
  }
  agents.push({ type: { coding: [{ system: DCM, code: '110152', display: 'Destination Role ID' }] }, who: { display: gateway }, requestor: false });

  const entities: Json[] = r.patients.map((psn) => ({
    what: { identifier: { system: PSEUDONYM_SYSTEM, value: psn } },
    type: { system: ENTITY_TYPE, code: '1', display: 'Person' },
    role: { system: OBJECT_ROLE, code: '1', display: 'Patient' },
  }));
  if (r.model) {
    const details: Json[] = [];
    const model: { name: string; version?: string; sha256?: string } = r.model;
    if (model.sha256) details.push({ type: 'model-sha256', valueString: model.sha256 });
    if (r.inputDigest) details.push({ type: 'input-digest', valueString: r.inputDigest });
    if ('node' in r && r.node) details.push({ type: 'node', valueString: r.node });
    for (const node of r.sentTo ?? []) details.push({ type: 'sent-to-node', valueString: node });
    if (r.emergency) details.push({ type: 'emergency-access', valueString: r.breakTheGlass ? 'break-the-glass' : 'emergency-treatment' });
    entities.push({
      what: { identifier: { system: MODEL_SYSTEM, value: model.version ? `${model.name}/${model.version}` : model.name } },
      type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
      role: { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' },
      ...(details.length ? { detail: details } : {}),
    });
  }

  return {
    resourceType: 'AuditEvent',
    id: r.requestId.replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 64),
    type: { system: DCM, code: '110100', display: 'Application Activity' },
    subtype: [{ system: 'urn:cdsgate:route', code: r.route }],
    action: 'E',
    recorded: r.time,
    // A dispatch with no record of its own after it (the gateway stopped first): the access is known, its outcome is not.
    ...(r.type === 'request' ? { outcome: outcomeOf(r.code), outcomeDesc: r.status } : { outcomeDesc: UNFINISHED }),
    ...(purposes.length ? { purposeOfEvent: purposes } : {}),
    agent: agents,
    source: { observer: { display: gateway }, type: [{ system: SOURCE_TYPE, code: '4', display: 'Application Server' }] },
    ...(entities.length ? { entity: entities } : {}),
  };
}

/**
 * Every request record of the files, as AuditEvents (the chain's own records
 * are not events); after them, every dispatch record that no request record
 * followed, as an AuditEvent without an outcome. A dispatch record followed
 * by its request's record is not an event of its own.
 */
export function* exportAuditEvents(files: string[]): Generator<Json> {
  let gateway = 'cdsgate';
  const unfinished = new Map<string, AuditLine & { type: 'dispatch' }>();
  for (const file of files) {
    for (const line of readAuditText(file).text.split('\n')) {
      if (!line) continue;
      let record: AuditLine;
      try {
        record = JSON.parse(line) as AuditLine;
      } catch {
        continue; // an incomplete final line after a crash: never acknowledged, not an event
      }
      if (record.type === 'genesis') gateway = record.gateway;
      if (record.type === 'dispatch') unfinished.set(record.requestId, record);
      if (record.type === 'request') {
        unfinished.delete(record.requestId);
        yield toAuditEvent(record, gateway);
      }
    }
  }
  for (const record of unfinished.values()) yield toAuditEvent(record, gateway);
}
