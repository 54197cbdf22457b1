import type { CdsServiceConfig } from '../config/schema.js';

type Feature = CdsServiceConfig['input']['features'][number];
type Json = Record<string, unknown>;

/** One input column's value, and the Observation it came from. */
export interface FeatureValue { label: string; value: number; observation: Json; effective: string }

export interface FeatureRow {
  values: FeatureValue[];
  /** Labels with no usable, recent Observation. */
  missing: string[];
  /** Observations about someone other than the context's patient: never used. */
  otherPatients: number;
}

const USABLE_STATUS = new Set(['final', 'amended', 'corrected', 'preliminary']);
const LOINC = 'http://loinc.org';

/** Every Observation in the prefetch values: a Bundle's entries, or a resource itself. */
export function observationsIn(values: unknown[]): Json[] {
  const found: Json[] = [];
  for (const value of values) {
    if (!value || typeof value !== 'object') continue;
    const v = value as Json;
    if (v.resourceType === 'Observation') found.push(v);
    if (v.resourceType === 'Bundle' && Array.isArray(v.entry)) {
      for (const e of v.entry as unknown[]) {
        const r = (e as Json | null)?.resource as Json | undefined;
        if (r?.resourceType === 'Observation') found.push(r);
      }
    }
  }
  return found;
}

const codes = (concept: unknown): Array<{ system?: unknown; code?: unknown }> =>
  Array.isArray((concept as Json | undefined)?.coding) ? ((concept as Json).coding as Array<{ system?: unknown; code?: unknown }>) : [];
const hasLoinc = (concept: unknown, wanted: readonly string[]) => codes(concept).some((c) => c.system === LOINC && typeof c.code === 'string' && wanted.includes(c.code));

/** When the observation was true: effective[x], else issued. */
function effectiveTime(o: Json): string | undefined {
  const period = o.effectivePeriod as Json | undefined;
  const t = o.effectiveDateTime ?? o.effectiveInstant ?? period?.end ?? period?.start ?? o.issued;
  return typeof t === 'string' && !Number.isNaN(Date.parse(t)) ? t : undefined;
}

/** The value an Observation (or its component) gives a feature, in the model's units; undefined when it gives none usable. */
function valueOf(holder: Json, feature: Feature): number | undefined {
  const q = holder.valueQuantity as Json | undefined;
  if (q && typeof q.value === 'number' && Number.isFinite(q.value)) {
    if (feature.above !== undefined) return q.value > feature.above ? 1 : 0;
    if (!feature.units) return undefined; // no unit table: a quantity cannot be trusted to be in the model's unit
    const unit = [q.code, q.unit].find((u): u is string => typeof u === 'string' && feature.units![u] !== undefined);
    if (unit === undefined) return undefined;
    const { factor, offset } = feature.units[unit]!;
    return q.value * factor + offset;
  }
  if (typeof holder.valueBoolean === 'boolean') return holder.valueBoolean ? 1 : 0;
  if (holder.valueCodeableConcept && feature.codes) {
    for (const c of codes(holder.valueCodeableConcept)) if (typeof c.code === 'string' && feature.codes[c.code] !== undefined) return feature.codes[c.code];
  }
  return undefined;
}

/**
 * The model's input row from FHIR: for each feature, the latest usable
 * Observation (status final/amended/corrected/preliminary, about this
 * patient, no older than maxAgeHours) with that LOINC code on it or on one of
 * its components. A feature without one is missing — never filled in.
 */
export function featureRow(observations: Json[], patientId: string, input: CdsServiceConfig['input'], now = Date.now()): FeatureRow {
  const oldest = now - input.maxAgeHours * 3_600_000;
  let otherPatients = 0;
  const usable = observations.filter((o) => {
    if (!USABLE_STATUS.has(String(o.status))) return false;
    const subject = (o.subject as Json | undefined)?.reference;
    if (typeof subject !== 'string' || !(subject === `Patient/${patientId}` || subject.endsWith(`/Patient/${patientId}`))) {
      otherPatients++;
      return false;
    }
    return true;
  });
  const values: FeatureValue[] = [];
  const missing: string[] = [];
  for (const feature of input.features) {
    let best: FeatureValue | undefined;
    for (const o of usable) {
      const effective = effectiveTime(o);
      if (!effective) continue;
      const at = Date.parse(effective);
      if (at < oldest || at > now + 300_000 || (best && at <= Date.parse(best.effective))) continue;
      const holders = hasLoinc(o.code, feature.loinc) ? [o] : [];
      if (Array.isArray(o.component)) holders.push(...(o.component as Json[]).filter((c) => hasLoinc(c?.code, feature.loinc)));
      for (const h of holders) {
        const value = valueOf(h, feature);
        if (value !== undefined) { best = { label: feature.label, value, observation: o, effective }; break; }
      }
    }
    if (best) values.push(best);
    else missing.push(feature.label);
  }
  return { values, missing, otherPatients };
}
