import type { PhiClass } from '../config/schema.js';
import type { InferRequest } from '../kserve/types.js';
import type { Tensor } from '../tensor/datatypes.js';
import { tensorToRaw } from '../tensor/raw.js';
import type { Pseudonymizer } from './pseudonym.js';
import { redactText, type PhiSpan } from './text-redactor.js';
import { redactFhir } from './fhir-redactor.js';

export interface RequestDescription {
  /** What the audit record may say about the request: no PHI in clear. */
  view: { id?: string; inputs: InputView[]; outputs: string[] };
  /** Keyed pseudonyms of the patients the request concerns. */
  patients: string[];
  /** HMAC over every input tensor (names, types, shapes, bytes). */
  inputDigest: string;
}

type InputView =
  | { name: string; datatype: string; shape: number[]; phi: 'none' }
  | { name: string; datatype: string; shape: number[]; phi: 'identifier'; pseudonyms: string[] }
  | { name: string; datatype: string; shape: number[]; phi: 'text'; redacted: string[] }
  | { name: string; datatype: string; shape: number[]; phi: 'fhir'; redacted: unknown[] };

const utf8 = new TextDecoder();

/**
 * The audit view of a request, driven by the model's declaration of which
 * inputs carry PHI. Values of undeclared (`none`) inputs are not recorded at
 * all (the digest proves them); identifiers become pseudonyms; free text goes
 * through the text redactor and FHIR through the FHIR redactor. A tensor name
 * is recorded as it is only when the model is known to have it (`knownNames`);
 * any other name is client text and is recorded as its pseudonym.
 */
/** `extraSpans`: spans a configured NER model found in a text element, to join the redactor's. */
export function describeRequest(request: InferRequest, phiInputs: Record<string, PhiClass>, psn: Pseudonymizer, knownNames: ReadonlySet<string>, extraSpans: (text: string) => readonly PhiSpan[] = () => []): RequestDescription {
  const patients = new Set<string>();
  const nameView = (name: string) => (knownNames.has(name) ? name : psn.pseudonym('tensor-name', name));
  const inputs = request.inputs.map((t): InputView => {
    const name = nameView(t.name);
    const base = { name, datatype: t.datatype, shape: t.shape };
    const phi = phiInputs[t.name] ?? 'none';
    if (phi === 'identifier') {
      const pseudonyms = elementsAsText(t).map((v) => psn.pseudonym('patient', v));
      pseudonyms.forEach((p) => patients.add(p));
      return { ...base, phi, pseudonyms };
    }
    if (phi === 'text') return { ...base, phi, redacted: elementsAsText(t).map((s) => redactText(s, extraSpans(s)).text) };
    if (phi === 'fhir') {
      const resources = elementsAsText(t).map(parseJson);
      for (const id of resources.flatMap((r) => (r ? patientIdentifiers(r) : []))) patients.add(psn.pseudonym('patient', id));
      return { ...base, phi, redacted: resources.map((r) => (r ? redactFhir(r, { pseudonym: (kind, v) => psn.pseudonym(kind, v) }) : '[not a JSON object]')) };
    }
    return { ...base, phi: 'none' };
  });
  return {
    view: { ...(request.id ? { id: psn.pseudonym('request-id', request.id) } : {}), inputs, outputs: request.outputs.map(nameView) },
    patients: [...patients],
    inputDigest: psn.inputDigest(request.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, bytes: tensorToRaw(t) }))),
  };
}

function elementsAsText(t: Tensor): string[] {
  if (Array.isArray(t.data)) return t.data.map((b) => utf8.decode(b));
  return Array.from(t.data as ArrayLike<number | bigint>, String);
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The identifying keys of every Patient in a resource or Bundle: its medical
 * record number(s) (identifier type MR), so a FHIR input and an MRN input for
 * the same patient get the same pseudonym; failing that, its logical id.
 */
export function patientIdentifiers(resource: Record<string, unknown>): string[] {
  if (resource.resourceType === 'Bundle' && Array.isArray(resource.entry)) {
    return resource.entry.flatMap((e) => {
      const r = (e as { resource?: unknown }).resource;
      return r && typeof r === 'object' ? patientIdentifiers(r as Record<string, unknown>) : [];
    });
  }
  if (resource.resourceType !== 'Patient') return [];
  const identifiers = Array.isArray(resource.identifier) ? (resource.identifier as Array<Record<string, unknown>>) : [];
  const mrns = identifiers
    .filter((id) => ((id.type as { coding?: Array<{ code?: string }> } | undefined)?.coding ?? []).some((c) => c.code === 'MR'))
    .map((id) => id.value)
    .filter((v): v is string => typeof v === 'string');
  if (mrns.length) return mrns;
  return typeof resource.id === 'string' ? [`Patient/${resource.id}`] : [];
}

/**
 * The Patient ids a FHIR resource or Bundle is about, for SMART launch
 * context: each Patient's id, and every reference to a Patient
 * ("Patient/123", an absolute URL ending so, or a Bundle entry's fullUrl that
 * is a Patient). A request allowed through a patient/ scope may concern only
 * the token's patient.
 */
export function fhirPatientIds(resource: Record<string, unknown>): string[] {
  const ids = new Set<string>();
  const byFullUrl = new Map<string, string>();
  if (resource.resourceType === 'Bundle' && Array.isArray(resource.entry)) {
    for (const e of resource.entry as Array<{ fullUrl?: unknown; resource?: { resourceType?: unknown; id?: unknown } }>) {
      if (typeof e?.fullUrl === 'string' && e.resource?.resourceType === 'Patient' && typeof e.resource.id === 'string') byFullUrl.set(e.fullUrl, e.resource.id);
    }
  }
  const walk = (value: unknown, depth: number): void => {
    if (depth > 64 || value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) { for (const v of value) walk(v, depth + 1); return; }
    const o = value as Record<string, unknown>;
    if (o.resourceType === 'Patient' && typeof o.id === 'string') ids.add(o.id);
    if (typeof o.reference === 'string') {
      const direct = /(?:^|\/)Patient\/([A-Za-z0-9.-]{1,64})(?:\/_history\/[^/]*)?$/.exec(o.reference)?.[1];
      const viaBundle = byFullUrl.get(o.reference);
      if (direct ?? viaBundle) ids.add((direct ?? viaBundle)!);
    }
    for (const v of Object.values(o)) walk(v, depth + 1);
  };
  walk(resource, 0);
  return [...ids];
}
