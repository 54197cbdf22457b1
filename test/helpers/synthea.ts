import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const SYNTHEA = resolve(import.meta.dirname, '../../../shared/data/synthea');

export interface SyntheaPatient {
  file: string;
  bundle: Record<string, any>;
  patient: Record<string, any>;
  mrn: string;
  /** Every identifying string the Patient resource holds, as the Safe Harbor test must not find it. */
  identifiers: string[];
  notes: string[];
}

/** Every Synthea patient bundle in ../shared/data/synthea (original, not the pre-anonymised copies). */
export function syntheaPatients(): SyntheaPatient[] {
  const dirs = ['google-fhir-data-pipes', 'ms-anonymizer-samples', 'nimbus-covid-juvenile/original'];
  return dirs.flatMap((d) => readdirSync(join(SYNTHEA, d)).filter((f) => f.endsWith('.json') && !/Information/.test(f)).map((f) => join(SYNTHEA, d, f)))
    .map((file) => {
      const bundle = JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;
      const patient = bundle.entry.map((e: any) => e.resource).find((r: any) => r.resourceType === 'Patient');
      const mrn = patient.identifier.find((i: any) => i.type?.coding?.some((c: any) => c.code === 'MR'))?.value ?? patient.id;
      const ids: string[] = [];
      for (const n of patient.name ?? []) ids.push(...(n.given ?? []), n.family); // prefixes (Mr., Mrs.) are titles, not identifiers
      ids.push(patient.birthDate);
      for (const a of patient.address ?? []) ids.push(...(a.line ?? []), a.city, a.postalCode);
      for (const t of patient.telecom ?? []) ids.push(t.value);
      for (const i of patient.identifier ?? []) ids.push(i.value);
      for (const x of patient.extension ?? []) {
        if (/mothersMaidenName/.test(x.url)) ids.push(...String(x.valueString).split(' '));
        if (/birthPlace/.test(x.url)) ids.push(x.valueAddress?.city);
      }
      const notes = bundle.entry.map((e: any) => e.resource).filter((r: any) => r.resourceType === 'DocumentReference')
        .flatMap((r: any) => r.content.map((c: any) => Buffer.from(c.attachment.data ?? '', 'base64').toString('utf8')));
      return { file, bundle, patient, mrn, identifiers: ids.filter((v): v is string => typeof v === 'string' && v.length >= 3), notes };
    });
}
