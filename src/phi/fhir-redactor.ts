import { redactText } from './text-redactor.js';

/**
 * FHIR R4 de-identification by element rules, in the spirit of Microsoft's
 * FHIR anonymizer: what is known to be structure or terminology is kept,
 * what is known to identify is removed or pseudonymised, dates go to the
 * year, and every other string is treated as free text and scrubbed —
 * unknown elements are never passed through as they are.
 */
export interface FhirRedactOptions {
  /** Keyed pseudonyms for identifier values and resource ids; without it they are removed. */
  pseudonym?: (kind: string, value: string) => string;
  /** For the ages-over-89 rule; defaults to now. */
  now?: Date;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Safe Harbor: these three-digit ZIP prefixes cover under 20,000 people and become 000 (2000 Census list). */
const RESTRICTED_ZIP3 = new Set(['036', '059', '063', '102', '203', '556', '692', '790', '821', '823', '830', '831', '878', '879', '884', '890', '893']);

/** Elements removed outright wherever they appear. */
const REMOVE = new Set(['telecom', 'photo', 'contact', 'link', 'communication']);

/** Extensions that identify (mother's maiden name, birthplace, geolocation). */
const IDENTIFYING_EXTENSION = /mothersMaidenName|birthPlace|geolocation|patient-birthTime|us-core-direct|patient-nationality|patient-religion/i;

/** Structural and terminology elements whose string values are never PHI. */
const KEEP = new Set([
  'resourceType', 'system', 'code', 'unit', 'status', 'use', 'gender', 'url', 'version', 'profile', 'language', 'contentType', 'intent',
  'valueCode', 'comparator', 'mode', 'kind', 'priority', 'category', 'severity', 'criticality', 'clinicalStatus', 'verificationStatus',
  'state', 'country', 'currency', 'format', 'fhirComments', 'lastUpdated', 'versionId', 'method', 'type', 'outcome',
]);

const DATE = /^(\d{4})(?:-\d{2}(?:-\d{2}(?:T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?)?)?)?$/;

export function redactFhir(resource: unknown, options: FhirRedactOptions = {}): unknown {
  const now = options.now ?? new Date();
  const psn = options.pseudonym;

  const pseudonymId = (value: string): string | undefined => (psn ? psn('fhir-id', value) : undefined);

  const reference = (value: string): string | undefined => {
    const relative = /^([A-Z][A-Za-z]+)\/([^/]+)$/.exec(value);
    if (relative) return psn ? `${relative[1]}/${psn('fhir-id', relative[2]!)}` : undefined;
    const uuid = /^urn:uuid:(.+)$/.exec(value);
    if (uuid) return psn ? `urn:uuid:${psn('fhir-id', uuid[1]!)}` : undefined;
    return undefined; // absolute URLs to other servers identify too
  };

  const date = (value: string, key: string): string | undefined => {
    const year = Number(DATE.exec(value)![1]);
    if (key === 'birthDate' && now.getUTCFullYear() - year > 89) return undefined; // reveals an age over 89
    return String(year);
  };

  const postalCode = (value: string): string => {
    const zip3 = value.replace(/\D/g, '').slice(0, 3);
    return zip3.length === 3 && !RESTRICTED_ZIP3.has(zip3) ? zip3 : '000';
  };

  const scrub = (text: string): string => redactText(text).text;

  const narrative = (div: string): string =>
    `<div xmlns="http://www.w3.org/1999/xhtml">${scrub(div.replace(/<[^>]*>/g, ' ').replace(/&[a-z]+;/g, ' ').replace(/\s+/g, ' ').trim())}</div>`;

  const walk = (value: Json, key: string, parent: { [k: string]: Json } | undefined): Json | undefined => {
    if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
    if (typeof value === 'string') {
      if (key === 'id' || key === 'fullUrl') return key === 'fullUrl' ? reference(value) : pseudonymId(value);
      if (key === 'reference') return reference(value);
      if (key === 'postalCode') return postalCode(value);
      if (key === 'div') return narrative(value);
      if (key === 'data' && parent && /^text\//.test(String(parent.contentType ?? ''))) {
        return Buffer.from(scrub(Buffer.from(value, 'base64').toString('utf8'))).toString('base64');
      }
      if (key === 'data') return undefined; // images and other binary attachments: full-face photos and the like
      if (DATE.test(value) && value.length >= 4 && /date|time|period|start|end|issued|recorded|authored|onset|abatement|effective|occurrence|created|birth|death|when|instant|value/i.test(key)) {
        return date(value, key);
      }
      if (KEEP.has(key)) return value;
      if (key === 'display' && parent && typeof parent.code === 'string' && typeof parent.system === 'string') return value; // terminology text
      // A CodeableConcept's text that repeats one of its codings' displays is terminology too.
      if (key === 'text' && parent && Array.isArray(parent.coding)
        && parent.coding.some((c) => c && typeof c === 'object' && !Array.isArray(c) && c.display === value)) return value;
      return scrub(value); // unknown and free-text strings
    }
    if (Array.isArray(value)) {
      const out = value.map((v) => walk(v, key, parent)).filter((v) => v !== undefined) as Json[];
      return out.length ? out : undefined;
    }
    // An object
    if (key === 'extension' || key === 'modifierExtension') {
      if (typeof value.url === 'string' && IDENTIFYING_EXTENSION.test(value.url)) return undefined;
    }
    if (isHumanName(value) || key === 'name' && (value.family !== undefined || value.given !== undefined)) return undefined;
    const out: { [k: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) {
      if (REMOVE.has(k)) continue;
      if (k === 'name' && Array.isArray(v) && v.some((n) => n && typeof n === 'object' && isHumanName(n as { [k: string]: Json }))) continue;
      if (key === 'address' || k === 'valueAddress') {
        // handled below by the address rule
      }
      if (k === 'identifier' && Array.isArray(v)) {
        const ids = v.map((id) => identifier(id)).filter((id): id is { [k: string]: Json } => id !== undefined);
        if (ids.length) out[k] = ids;
        continue;
      }
      if ((k === 'address' || k === 'valueAddress') && v && typeof v === 'object') {
        const addresses = (Array.isArray(v) ? v : [v]).map((a) => address(a as { [k: string]: Json }));
        out[k] = Array.isArray(v) ? addresses : addresses[0]!;
        continue;
      }
      const w = walk(v, k, value);
      if (w !== undefined) out[k] = w;
    }
    return out;
  };

  const identifier = (id: Json): { [k: string]: Json } | undefined => {
    if (!id || typeof id !== 'object' || Array.isArray(id)) return undefined;
    const out: { [k: string]: Json } = {};
    if (id.system !== undefined) out.system = id.system;
    if (id.use !== undefined) out.use = id.use;
    if (id.type !== undefined) out.type = walk(id.type, 'type', id) ?? null;
    if (typeof id.value === 'string' && psn) out.value = psn('identifier', id.value);
    return out;
  };

  const address = (a: { [k: string]: Json }): { [k: string]: Json } => {
    const out: { [k: string]: Json } = {};
    for (const k of ['use', 'type', 'state', 'country'] as const) if (a[k] !== undefined) out[k] = a[k]!;
    if (typeof a.postalCode === 'string') out.postalCode = postalCode(a.postalCode);
    return out; // line, city, district, text, period and the geolocation extension are gone
  };

  return walk(resource as Json, '', undefined);
}

function isHumanName(v: { [k: string]: Json }): boolean {
  return 'family' in v || 'given' in v || ('text' in v && ('prefix' in v || 'suffix' in v));
}
