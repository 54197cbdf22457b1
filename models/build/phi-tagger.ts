/**
 * Trains the PHI token tagger and writes models/phi-tagger/weights.json.
 * Deterministic: the same data and seed give the same bytes (the SHA-256 is
 * printed and pinned in models/phi-tagger/MODEL_CARD.md; a test rebuilds it).
 *
 * Training data (see the card): the generator's `train` family, the
 * presidio-synth sentences and the Synthea notes in ../shared/data/phi-text.
 * The generator's `heldout` family is never used here.
 *
 *   npm run phi:train
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tagsFromSpans, trainTagger, type Tag, type TaggedText } from '../../src/phi/token-tagger.js';
import { generateNotes } from './phi-notes.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const DATA = resolve(ROOT, '..', 'shared', 'data', 'phi-text');
export const TAGGER_FILE = join(ROOT, 'models', 'phi-tagger', 'weights.json');

/** Gold types as the tagger's tags; structured identifiers (dates, phones, ids) stay with the rules. */
const TAG_OF: Record<string, Tag> = {
  NAME: 'NAME', PERSON: 'NAME',
  LOCATION: 'LOCATION', GPE: 'LOCATION', STREET_ADDRESS: 'LOCATION', ADDRESS: 'LOCATION', ZIP: 'LOCATION', ORGANIZATION: 'LOCATION',
  AGE_OVER_89: 'AGE',
};

export function trainingSet(): TaggedText[] {
  const toTagged = (text: string, spans: Array<{ start: number; end: number; type: string }>) =>
    tagsFromSpans(text, spans.flatMap((s) => (TAG_OF[s.type] ? [{ start: s.start, end: s.end, tag: TAG_OF[s.type]! }] : [])));
  const generated = generateNotes('train', 2000, 1).map((n) => toTagged(n.text, n.spans));
  const presidio = (JSON.parse(readFileSync(join(DATA, 'presidio-synth', 'synth_dataset_v2.json'), 'utf8')) as Array<{ full_text: string; spans: Array<{ entity_type: string; start_position: number; end_position: number }> }>)
    .map((r) => toTagged(r.full_text, r.spans.map((s) => ({ start: s.start_position, end: s.end_position, type: s.entity_type }))));
  const synthea = readFileSync(join(DATA, 'synthea-notes-silver.jsonl'), 'utf8').split('\n').filter(Boolean)
    .map((l) => JSON.parse(l) as { text: string; spans: Array<{ start: number; end: number; type: string }> })
    .map((r) => toTagged(r.text, r.spans));
  return [...generated, ...presidio, ...synthea];
}

export function buildTaggerBytes(): Buffer {
  const model = trainTagger(trainingSet(), 5, 20261127);
  return Buffer.from(`${JSON.stringify(model)}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  const bytes = buildTaggerBytes();
  writeFileSync(TAGGER_FILE, bytes);
  writeFileSync(join(ROOT, 'models', 'phi-tagger', 'manifest.json'), `${JSON.stringify({ file: 'weights.json', sha256: createHash('sha256').update(bytes).digest('hex'), version: 1, tags: ['O', 'NAME', 'LOCATION', 'AGE'] }, null, 2)}\n`);
  console.log(`wrote ${TAGGER_FILE}: ${(bytes.length / 1024).toFixed(0)} KiB, ${Object.keys((JSON.parse(bytes.toString()) as { weights: object }).weights).length} features, sha256 ${createHash('sha256').update(bytes).digest('hex')} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
