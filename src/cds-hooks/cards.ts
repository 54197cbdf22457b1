import { randomUUID } from 'node:crypto';
import type { CdsServiceConfig } from '../config/schema.js';
import type { Tensor } from '../tensor/datatypes.js';

export type Indicator = 'info' | 'warning' | 'critical';

/** A CDS Hooks 2.0 card (the fields cdsgate fills). */
export interface Card {
  uuid: string;
  summary: string;
  detail?: string;
  indicator: Indicator;
  source: { label: string; url?: string };
  links?: Array<{ label: string; url: string; type: 'absolute' | 'smart' }>;
}

const SUMMARY_MAX = 140;
const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);
const first = (t: Tensor): number => Number((t.data as ArrayLike<number | bigint>)[0]);
const format = (v: number) => (Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100));

/** Fills {{name}} from the outputs (first value, or its label) and the extra values; unknown names stay visible as "?". */
function fill(template: string, outputs: Tensor[], labels: Record<string, string[]>, extra: Record<string, string> = {}): string {
  return template.replace(/\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g, (_, name: string) => {
    if (extra[name] !== undefined) return extra[name]!;
    const tensor = outputs.find((t) => t.name === name);
    if (!tensor || !(tensor.data as ArrayLike<unknown>).length) return '?';
    const v = first(tensor);
    return labels[name]?.[v] ?? format(v);
  });
}

const base = (config: CdsServiceConfig['cards']) => ({
  source: { label: config.source.label, ...(config.source.url ? { url: config.source.url } : {}) },
  ...(config.links.length ? { links: config.links.map((l) => ({ label: l.label, url: l.url, type: l.type })) } : {}),
});

/** The service's card for a model answer, or none when the indicator output is below the configured minimum. */
export function cardsFromOutputs(config: CdsServiceConfig['cards'], outputs: Tensor[], extra: Record<string, string> = {}): Card[] {
  const indicatorTensor = outputs.find((t) => t.name === config.indicator.output);
  const level = indicatorTensor ? first(indicatorTensor) : Number.NaN;
  if (!Number.isInteger(level) || level < 0) return [];
  if (level < config.minimum) return [];
  const indicator = config.indicator.values[Math.min(level, config.indicator.values.length - 1)]!;
  return [{
    uuid: randomUUID(),
    summary: clip(fill(config.summary, outputs, config.labels, extra), SUMMARY_MAX),
    ...(config.detail ? { detail: fill(config.detail, outputs, config.labels, extra) } : {}),
    indicator,
    ...base(config),
  }];
}

/** The honest card when the model could not be run: what is missing, and that no score was computed. */
export function cardForMissingData(config: CdsServiceConfig['cards'], title: string, missing: string[], maxAgeHours: number): Card[] {
  if (config.whenDataMissing === 'none') return [];
  return [{
    uuid: randomUUID(),
    summary: clip(`${title}: not calculated — no recent ${missing.join(', ')}`, SUMMARY_MAX),
    detail: `No score was calculated: the record has no usable observation from the last ${maxAgeHours} hours for ${missing.map((m) => `**${m}**`).join(', ')}. `
      + 'Record the missing observations and the service will score them.',
    indicator: 'info',
    ...base(config),
  }];
}
