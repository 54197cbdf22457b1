/**
 * Scores the text redactor on ../shared/data/phi-text/:
 *   - presidio-synth: 1,500 synthetic sentences with gold spans (generic PII);
 *   - synthea-notes-silver: 357 Synthea notes, silver spans (names, dates).
 * A gold span is found when at least 90% of its characters are covered by
 * redacted spans. A redacted span is correct when at least half of its
 * characters fall inside gold spans. Writes load-tests/reports/phi-bench.{json,md}.
 *
 *   npm run bench:phi
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPhi, setTaggerEnabled, type PhiSpan } from '../src/phi/text-redactor.js';
import { generateNotes } from '../models/build/phi-notes.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const DATA = resolve(ROOT, '..', 'shared', 'data', 'phi-text');

interface Doc { text: string; gold: Array<{ start: number; end: number; type: string }> }

/** Presidio types that are not Safe Harbor identifiers: scored per type, left out of the headline. */
const NOT_SAFE_HARBOR = new Set(['ORGANIZATION', 'TITLE', 'NRP', 'AGE', 'YEAR_ONLY']);

function load(): Record<string, Doc[]> {
  const presidio = (JSON.parse(readFileSync(join(DATA, 'presidio-synth', 'synth_dataset_v2.json'), 'utf8')) as Array<{ full_text: string; spans: Array<{ entity_type: string; start_position: number; end_position: number }> }>)
    .map((r) => ({ text: r.full_text, gold: r.spans.map((s) => ({ start: s.start_position, end: s.end_position, type: s.entity_type })) }));
  const synthea = readFileSync(join(DATA, 'synthea-notes-silver.jsonl'), 'utf8').split('\n').filter(Boolean)
    .map((l) => JSON.parse(l) as { text: string; spans: Array<{ start: number; end: number; type: string }> })
    .map((r) => ({ text: r.text, gold: r.spans.map((s) => ({ start: s.start, end: s.end, type: s.type })) }));
  // The generator's two families: `train` is what the tagger learns from (and rules may be tuned on);
  // `heldout` has other templates, styles and names and is only ever measured here. Seeds differ from training's.
  return {
    'generated-heldout': generateNotes('heldout', 400, 90210).map((n) => ({ text: n.text, gold: n.spans })),
    // The same family with a seed whose notes and misses nobody reads: the rules were written from 90210's misses
    // (by class), so this is the one that shows whether they carry over to other names and values.
    'generated-heldout-unseen': generateNotes('heldout', 1000, UNSEEN_SEED).map((n) => ({ text: n.text, gold: n.spans })),
    'presidio-synth': presidio, 'synthea-notes': synthea,
    'generated-train': generateNotes('train', 400, 31337).map((n) => ({ text: n.text, gold: n.spans })),
  };
}

/** Which corpora the redactor's rules or tagger were built or tuned on: the rest are held out. */
const TUNED_ON = new Set(['presidio-synth', 'synthea-notes', 'generated-train']);
/** Held out, and never inspected: the report gives its figures, never its misses or false positives. */
const UNINSPECTED = new Set(['generated-heldout-unseen']);
const UNSEEN_SEED = 4051;
const label = (name: string) => (TUNED_ON.has(name) ? 'tuned' : UNINSPECTED.has(name) ? '**held out, never inspected**' : '**held out** from training; its misses were read while writing rules');

interface Tally { gold: number; found: number }
interface Score {
  perType: Record<string, Tally>; predicted: number; correct: number; misses: Array<{ type: string; text: string }>; falsePositives: string[];
  /** Per predicted type: how many, how many correct (precision per type). */
  perPredicted: Record<string, { predicted: number; correct: number }>;
  /** Words outside every gold span, and how many of them a predicted span touched. */
  plainWords: number; plainWordsTouched: number;
}

function score(docs: Doc[]): Score {
  const s: Score = { perType: {}, predicted: 0, correct: 0, misses: [], falsePositives: [], perPredicted: {}, plainWords: 0, plainWordsTouched: 0 };
  for (const doc of docs) {
    const predicted: PhiSpan[] = findPhi(doc.text);
    const covered = new Uint8Array(doc.text.length);
    for (const p of predicted) covered.fill(1, p.start, p.end);
    const inGold = new Uint8Array(doc.text.length);
    for (const g of doc.gold) inGold.fill(1, g.start, g.end);
    for (const g of doc.gold) {
      // Safe Harbor lets the year stay: a gold date that is only a year is scored apart.
      const type = /DATE/.test(g.type) && /^\s*(?:1[89]|20)\d\d\s*$/.test(doc.text.slice(g.start, g.end)) ? 'YEAR_ONLY' : g.type;
      const t = (s.perType[type] ??= { gold: 0, found: 0 });
      t.gold++;
      let hit = 0;
      for (let i = g.start; i < g.end; i++) hit += covered[i]!;
      const len = g.end - g.start;
      // Whitespace and punctuation inside a gold span need not be covered.
      const significant = [...doc.text.slice(g.start, g.end)].filter((c) => /[\p{L}\p{N}]/u.test(c)).length || len;
      let sigHit = 0;
      for (let i = g.start; i < g.end; i++) if (covered[i] && /[\p{L}\p{N}]/u.test(doc.text[i]!)) sigHit++;
      if (sigHit >= 0.9 * significant || hit >= 0.9 * len) t.found++;
      else s.misses.push({ type, text: doc.text.slice(g.start, g.end) });
    }
    for (const p of predicted) {
      s.predicted++;
      const per = (s.perPredicted[p.type] ??= { predicted: 0, correct: 0 });
      per.predicted++;
      let inside = 0;
      for (let i = p.start; i < p.end; i++) inside += inGold[i]!;
      if (inside >= 0.5 * (p.end - p.start)) { s.correct++; per.correct++; } else s.falsePositives.push(doc.text.slice(p.start, p.end));
    }
    for (const w of doc.text.matchAll(/[\p{L}\p{N}]+/gu)) {
      let gold = false, touched = false;
      for (let i = w.index; i < w.index + w[0].length; i++) { gold ||= inGold[i] === 1; touched ||= covered[i] === 1; }
      if (gold) continue;
      s.plainWords++;
      if (touched) s.plainWordsTouched++;
    }
  }
  return s;
}

const ratio = (a: number, b: number) => (b === 0 ? 1 : a / b);
const fmt = (x: number) => x.toFixed(3);

const results: Record<string, unknown> = {};
const md: string[] = ['# PHI text redactor benchmark', '', `${new Date().toISOString()}; gold span found = ≥90% of its letters/digits covered; predicted span correct = ≥50% inside gold. Corpora marked *tuned* were used to build or tune the rules or to train the tagger; *held out* ones never were.`, ''];
for (const [name, docs] of Object.entries(load())) {
  const s = score(docs);
  const headline = Object.entries(s.perType).filter(([t]) => !NOT_SAFE_HARBOR.has(t)).reduce((a, [, t]) => ({ gold: a.gold + t.gold, found: a.found + t.found }), { gold: 0, found: 0 });
  const all = Object.values(s.perType).reduce((a, t) => ({ gold: a.gold + t.gold, found: a.found + t.found }), { gold: 0, found: 0 });
  const precision = ratio(s.correct, s.predicted);
  const touched = ratio(s.plainWordsTouched, s.plainWords);
  results[name] = {
    documents: docs.length, heldOut: !TUNED_ON.has(name), nonPhiWordsTouched: touched,
    precisionPerType: Object.fromEntries(Object.entries(s.perPredicted).map(([t, v]) => [t, { ...v, precision: ratio(v.correct, v.predicted) }])), recallSafeHarbor: ratio(headline.found, headline.gold), recallAllTypes: ratio(all.found, all.gold), precision,
    perType: Object.fromEntries(Object.entries(s.perType).map(([t, v]) => [t, { ...v, recall: ratio(v.found, v.gold) }])),
    ...(UNINSPECTED.has(name) ? {} : { sampleMisses: s.misses.filter((m) => !NOT_SAFE_HARBOR.has(m.type)).slice(0, 60), sampleFalsePositives: s.falsePositives.slice(0, 40) }),
  };
  md.push(`## ${name} (${docs.length} documents, ${label(name)})`, '',
    `Recall, Safe Harbor types: **${fmt(ratio(headline.found, headline.gold))}** (${headline.found}/${headline.gold}); all types: ${fmt(ratio(all.found, all.gold))}. Precision: **${fmt(precision)}** (${s.correct}/${s.predicted}). Non-PHI words touched: ${(touched * 100).toFixed(1)}% (${s.plainWordsTouched}/${s.plainWords}).`, '',
    `Precision by predicted type: ${Object.entries(s.perPredicted).sort((a, b) => b[1].predicted - a[1].predicted).map(([t, v]) => `${t} ${fmt(ratio(v.correct, v.predicted))} (${v.predicted})`).join(', ')}.`, '',
    '| type | gold | found | recall | in headline |', '| --- | --- | --- | --- | --- |',
    ...Object.entries(s.perType).sort((a, b) => b[1].gold - a[1].gold).map(([t, v]) => `| ${t} | ${v.gold} | ${v.found} | ${fmt(ratio(v.found, v.gold))} | ${NOT_SAFE_HARBOR.has(t) ? 'no' : 'yes'} |`), '');
}
// Cost on the request path: the time to redact a 2 KB note (median of 200 runs, after warm-up), and per KB.
{
  const notes = generateNotes('heldout', 50, 7).map((n) => n.text);
  let note = '';
  for (let i = 0; note.length < 2048; i++) note += `${notes[i % notes.length]}\n\n`;
  note = note.slice(0, 2048);
  // Wall-clock p50/p99 (what a request waits), and CPU time per note from process.cpuUsage (steadier on a shared machine).
  const p50Of = () => {
    for (let i = 0; i < 50; i++) findPhi(note);
    const times: number[] = [];
    const cpuBefore = process.cpuUsage();
    for (let i = 0; i < 400; i++) { const t = performance.now(); findPhi(note); times.push(performance.now() - t); }
    const cpu = process.cpuUsage(cpuBefore);
    times.sort((a, b) => a - b);
    return { p50: times[200]!, p99: times[396]!, cpuMs: (cpu.user + cpu.system) / 1000 / 400 };
  };
  const withTagger = p50Of();
  setTaggerEnabled(false);
  const rulesOnly = p50Of();
  const heldOutRulesOnly = score(load()['generated-heldout']!);
  setTaggerEnabled(true);
  const rulesRecall = Object.values(heldOutRulesOnly.perType).reduce((a, t) => ({ gold: a.gold + t.gold, found: a.found + t.found }), { gold: 0, found: 0 });
  results.cost = { noteBytes: note.length, p50Ms: withTagger.p50, p99Ms: withTagger.p99, cpuMs: withTagger.cpuMs, msPerKb: withTagger.p50 / (note.length / 1024), rulesOnlyP50Ms: rulesOnly.p50, rulesOnlyCpuMs: rulesOnly.cpuMs };
  results.rulesOnlyHeldOut = { recall: ratio(rulesRecall.found, rulesRecall.gold), precision: ratio(heldOutRulesOnly.correct, heldOutRulesOnly.predicted) };
  md.push('## Cost, and what the tagger adds', '',
    `Redacting a 2 KB note: p50 **${withTagger.p50.toFixed(3)} ms**, p99 ${withTagger.p99.toFixed(3)} ms (${(withTagger.p50 / 2).toFixed(3)} ms per KB), CPU ${withTagger.cpuMs.toFixed(3)} ms per note; rules alone p50 ${rulesOnly.p50.toFixed(3)} ms, CPU ${rulesOnly.cpuMs.toFixed(3)} ms. One thread, 400 runs after warm-up.`, '',
    `Held-out corpus with rules alone: recall ${fmt(ratio(rulesRecall.found, rulesRecall.gold))}, precision ${fmt(ratio(heldOutRulesOnly.correct, heldOutRulesOnly.predicted))} (rules and tagger: see the first table).`, '');
}
md.push('Types left out of the headline are not Safe Harbor identifiers as such: ORGANIZATION, TITLE (Mr., Dr.), NRP (nationality, religion, politics), AGE (only ages over 89 must go) and YEAR_ONLY (gold dates that are a bare year, which Safe Harbor allows to stay).', '');
const dir = join(ROOT, 'load-tests', 'reports');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'phi-bench.json'), JSON.stringify(results, null, 2));
writeFileSync(join(dir, 'phi-bench.md'), md.join('\n'));
console.log(md.join('\n'));
