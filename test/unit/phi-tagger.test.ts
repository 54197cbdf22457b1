import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTaggerBytes } from '../../models/build/phi-tagger.js';
import { generateNotes } from '../../models/build/phi-notes.js';
import { findPhi, loadTagger, redactText } from '../../src/phi/text-redactor.js';
import { tagsFromSpans, taggedSpans, trainTagger } from '../../src/phi/token-tagger.js';
import { ROOT } from '../helpers/cluster.js';

describe('PHI token tagger', () => {
  it('npm run phi:train reproduces the pinned weights byte for byte', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'models', 'phi-tagger', 'manifest.json'), 'utf8')) as { sha256: string };
    expect(createHash('sha256').update(buildTaggerBytes()).digest('hex')).toBe(manifest.sha256);
    expect(createHash('sha256').update(readFileSync(join(ROOT, 'models', 'phi-tagger', 'weights.json'))).digest('hex')).toBe(manifest.sha256);
  }, 120_000);

  it('learns: a tagger trained on a few notes tags names it never saw in a sentence shaped like them', () => {
    const train = generateNotes('train', 300, 5).map((n) => tagsFromSpans(n.text, n.spans.flatMap((s) => (s.type === 'NAME' ? [{ ...s, tag: 'NAME' as const }] : []))));
    const model = trainTagger(train, 3, 1);
    const text = 'Daughter Wanjiru called at 5 pm. Patient Kiplagat, Svetlana seen with her husband.';
    const found = taggedSpans(model, text).filter((s) => s.type === 'NAME').map((s) => text.slice(s.start, s.end));
    expect(found).toEqual(expect.arrayContaining(['Wanjiru']));
  });

  it('finds in held-out notes what the rules alone miss, and the redactor keeps clinical content', () => {
    const text = 'Chaplain visit. Met Zeynep at bedside, devout, attends services in Sheboygan. Grandson Bongani Uwimana visiting.';
    const redacted = redactText(text).text;
    expect(redacted).not.toMatch(/Zeynep|Sheboygan|Bongani|Uwimana/);
    expect(redacted).toMatch(/^Chaplain visit\. .* at bedside, devout, attends services in \[LOCATION\]\. Grandson \[NAME\] visiting\.$/);
    const vitals = 'BP 132/84, HR 96, RR 22, SpO2 93% on 2 L, T 38.4 C, Na 134, K 5.1, glucose 95 mg/dL.';
    expect(findPhi(vitals)).toEqual([]);
  });

  it('the loaded weights are the pinned ones', () => {
    expect(Object.keys(loadTagger().weights).length).toBeGreaterThan(1000);
  });
});
