import { isAscii, tagTokensAscii } from './ascii-scan.js';
import { CLINICAL_TERMS, FUNCTION_WORDS, isCommonWord, isFirstName } from './lexicon.js';

/**
 * A learned PHI token tagger: an averaged perceptron over token shape,
 * affixes, a ±2 word window, lexicon membership and the previous tag,
 * decoded greedily left to right. It finds what rules cannot list — names
 * from any culture, places, institutions, ages in words — from the way they
 * sit in text. Trained by models/build/phi-tagger.ts; its weights are a
 * versioned file (models/phi-tagger/weights.json) with a card.
 */
export const TAGS = ['O', 'NAME', 'LOCATION', 'AGE'] as const;
export type Tag = (typeof TAGS)[number];

export interface TaggerWeights {
  version: number;
  tags: readonly Tag[];
  /** feature → one weight per tag (in `tags` order). */
  weights: Record<string, number[]>;
}

export interface TagToken { text: string; start: number; end: number }

/** Words (letters with inner apostrophes, hyphens, digits), numbers, and single punctuation marks. */
const TOKEN = /[\p{L}][\p{L}\p{M}\d'’-]*|\d+(?:[.,:/-]\d+)*[A-Za-z]*|[^\s\p{L}\d]/gu;

export function tokenize(text: string): TagToken[] {
  if (isAscii(text)) return tagTokensAscii(text).map(({ start, end }) => ({ text: text.slice(start, end), start, end }));
  const tokens: TagToken[] = [];
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(text); m; m = TOKEN.exec(text)) tokens.push({ text: m[0], start: m.index, end: m.index + m[0].length });
  return tokens;
}

/** Xxxx → Xx, 1234 → d, Dr. → Xx. : the shape with runs collapsed. */
function shape(word: string): string {
  return word.replace(/\p{Lu}/gu, 'X').replace(/\p{Ll}/gu, 'x').replace(/\d/g, 'd').replace(/(.)\1+/g, '$1');
}

const TITLE = /^(?:dr|mr|mrs|ms|miss|mx|prof|sr|fr|rev)$/i;
const RELATION = /^(?:daughter|dtr|son|wife|husband|spouse|partner|mother|mom|father|dad|sister|brother|aunt|uncle|niece|nephew|cousin|grandson|granddaughter|grandmother|grandfather|friend|neighbor|proxy|guardian)$/i;
const INSTITUTION = /^(?:hospital|clinic|center|centre|home|hospice|institute|university|college|school|church|pharmacy|library|transit|foods|freight|logistics|co|corp|inc|llc|company|group|union|systems|mining|construction|plumbing|fisheries|works|living|care|medical|health|regional|community|county|memorial|general)$/i;

function lexicon(lower: string): string[] {
  const f: string[] = [];
  if (isFirstName(lower)) f.push('lex=first');
  if (isCommonWord(lower)) f.push('lex=common');
  if (CLINICAL_TERMS.has(lower)) f.push('lex=clinical');
  if (FUNCTION_WORDS.has(lower)) f.push('lex=function');
  if (INSTITUTION.test(lower)) f.push('lex=institution');
  if (TITLE.test(lower)) f.push('lex=title');
  if (RELATION.test(lower)) f.push('lex=relation');
  return f;
}

/** What each token looks like on its own, computed once per text. */
interface TokenView { lower: string; shape: string; lex: string[] }

function viewOne(t: TagToken): TokenView {
  const lower = t.text.toLowerCase();
  return { lower, shape: shape(t.text), lex: /\p{L}/u.test(t.text) ? lexicon(lower) : [] };
}

function view(tokens: TagToken[]): TokenView[] {
  return tokens.map(viewOne);
}

/*
 * Features come in groups so that decoding can sum cached per-word vectors
 * instead of looking up every feature string for every token: what a token
 * contributes as itself, and as the word k places before or after, depends
 * only on its own text.
 */
function selfFeatures(v: TokenView): string[] {
  const f = ['b', `w=${v.lower}`, `s=${v.shape}`, `p3=${v.lower.slice(0, 3)}`, `s3=${v.lower.slice(-3)}`, `s2=${v.lower.slice(-2)}`];
  for (const l of v.lex) f.push(l, `${l}|s=${v.shape}`);
  if (v.lex.length === 0 && /\p{L}/u.test(v.lower)) f.push(`nolex|s=${v.shape}`);
  return f;
}

const OFFSETS = [-2, -1, 1, 2] as const;

function contextFeatures(k: number, o: TokenView | undefined): string[] {
  const f = [`w${k}=${o ? o.lower : '<>'}`];
  if (o && (k === -1 || k === 1)) {
    f.push(`s${k}=${o.shape}`);
    for (const l of o.lex) f.push(`${k}${l}`);
  }
  return f;
}

const prevFeatures = (prev: Tag, v: TokenView) => [`pt=${prev}`, `pt|s=${prev}|${v.shape}`];

/** A line break before token i (list items, letter headers): only the gap between the two tokens is read. */
function newLine(tokens: TagToken[], i: number, text: string): boolean {
  if (i === 0) return true;
  for (let p = tokens[i - 1]!.end; p < tokens[i]!.start; p++) if (text.charCodeAt(p) === 10) return true;
  return false;
}

/** The features of token i given the previous tag (training's view; decoding sums the same groups from caches). */
function features(tokens: TagToken[], views: TokenView[], i: number, prevTag: Tag, text: string): string[] {
  const f = [...selfFeatures(views[i]!), ...prevFeatures(prevTag, views[i]!)];
  for (const k of OFFSETS) f.push(...contextFeatures(k, views[i + k]));
  if (newLine(tokens, i, text)) f.push('nl');
  return f;
}

function argmax(scores: Float64Array): number {
  let best = 0;
  for (let t = 1; t < scores.length; t++) if (scores[t]! > scores[best]!) best = t;
  return best;
}

const CACHE_LIMIT = 100_000;

/**
 * Everything a word contributes to a score, whatever its position, in one
 * array of 4 weights per group: as itself [0–3], as the word at each offset
 * -2, -1, +1, +2 [4–19], and after each previous tag in TAGS order [20–35].
 */
const GROUP = { self: 0, context: 4, prev: 20, length: 36 } as const;

/**
 * Weights ready for decoding: a Map of feature vectors, and per distinct word
 * (bounded; cleared when full) its summed vector for each feature group, so
 * decoding a token is one Map lookup and a few additions. Decoding is written
 * for the four TAGS (every model has them), with the scores in locals.
 */
class CompiledTagger {
  private readonly weights: Map<string, Float64Array>;
  private readonly words = new Map<string, Float64Array>();
  /** What "no word here" contributes at each offset (the edges of the text), in the context layout. */
  private readonly outside = new Float64Array(GROUP.length);
  private readonly nl: Float64Array;

  constructor(readonly model: TaggerWeights) {
    if (model.tags.length !== TAGS.length || model.tags.some((t, i) => t !== TAGS[i])) throw new Error(`PHI tagger weights: tags must be ${TAGS.join(', ')}`);
    this.weights = new Map(Object.entries(model.weights).map(([k, v]) => [k, Float64Array.from(v)]));
    OFFSETS.forEach((k, j) => this.sumInto(this.outside, GROUP.context + 4 * j, contextFeatures(k, undefined)));
    this.nl = this.weights.get('nl') ?? new Float64Array(4);
  }

  private sumInto(out: Float64Array, at: number, features: string[]): void {
    for (const f of features) {
      const w = this.weights.get(f);
      if (w) for (let t = 0; t < 4; t++) out[at + t]! += w[t]!;
    }
  }

  private wordOf(token: TagToken): Float64Array {
    let w = this.words.get(token.text);
    if (!w) {
      // A token's view (shape, lexicon) is worked out only for a word not seen before.
      const v = viewOne(token);
      w = new Float64Array(GROUP.length);
      this.sumInto(w, GROUP.self, selfFeatures(v));
      OFFSETS.forEach((k, j) => this.sumInto(w!, GROUP.context + 4 * j, contextFeatures(k, v)));
      TAGS.forEach((t, p) => this.sumInto(w!, GROUP.prev + 4 * p, prevFeatures(t, v)));
      if (this.words.size >= CACHE_LIMIT) this.words.clear();
      this.words.set(token.text, w);
    }
    return w;
  }

  tag(text: string, tokens: TagToken[]): Tag[] {
    const words = tokens.map((t) => this.wordOf(t));
    const tags: Tag[] = new Array(tokens.length);
    const n = tokens.length, nl = this.nl;
    let prev = 0; // 'O'
    for (let i = 0; i < n; i++) {
      const w = words[i]!;
      let s0 = w[0]!, s1 = w[1]!, s2 = w[2]!, s3 = w[3]!;
      // The four neighbours (OFFSETS: -2, -1, +1, +2), or what stands for the edge of the text.
      for (let j = 0; j < 4; j++) {
        const at = i + OFFSETS[j]!;
        const c = at >= 0 && at < n ? words[at]! : this.outside;
        const o = GROUP.context + 4 * j;
        s0 += c[o]!; s1 += c[o + 1]!; s2 += c[o + 2]!; s3 += c[o + 3]!;
      }
      const p = GROUP.prev + 4 * prev;
      s0 += w[p]!; s1 += w[p + 1]!; s2 += w[p + 2]!; s3 += w[p + 3]!;
      if (newLine(tokens, i, text)) { s0 += nl[0]!; s1 += nl[1]!; s2 += nl[2]!; s3 += nl[3]!; }
      // argmax, the first of equals winning (as a loop over the tags would).
      let best = 0, top = s0;
      if (s1 > top) { best = 1; top = s1; }
      if (s2 > top) { best = 2; top = s2; }
      if (s3 > top) best = 3;
      tags[i] = TAGS[best]!;
      prev = best;
    }
    return tags;
  }
}

const compiled = new WeakMap<TaggerWeights, CompiledTagger>();

/** Tags for every token, left to right. */
export function tagTokens(model: TaggerWeights, text: string, tokens: TagToken[] = tokenize(text)): Tag[] {
  let c = compiled.get(model);
  if (!c) compiled.set(model, (c = new CompiledTagger(model)));
  return c.tag(text, tokens);
}

/** Consecutive tokens with the same tag become one span (what separates them is only spaces or in-name punctuation). */
export function taggedSpans(model: TaggerWeights, text: string): Array<{ start: number; end: number; type: Exclude<Tag, 'O'> }> {
  const tokens = tokenize(text);
  const tags = tagTokens(model, text, tokens);
  const out: Array<{ start: number; end: number; type: Exclude<Tag, 'O'> }> = [];
  for (let i = 0; i < tokens.length; i++) {
    const tag = tags[i]!;
    if (tag === 'O') continue;
    const last = out[out.length - 1];
    if (last && last.type === tag && /^[ .,'’-]{0,2}$/.test(text.slice(last.end, tokens[i]!.start)) && !text.slice(last.end, tokens[i]!.start).includes('\n')) {
      last.end = tokens[i]!.end;
    } else {
      out.push({ start: tokens[i]!.start, end: tokens[i]!.end, type: tag });
    }
  }
  // A span of punctuation alone is noise.
  return out.filter((s) => /[\p{L}\d]/u.test(text.slice(s.start, s.end)));
}

/** One training example: a text and the tag of each of its tokens. */
export interface TaggedText { text: string; tokens: TagToken[]; tags: Tag[] }

/**
 * Averaged perceptron training (Collins 2002), deterministic for a seed:
 * each epoch visits the texts in a seeded order, predicts greedily with the
 * gold previous tag, and on a mistake moves the weights; the averaged weights
 * are returned, rounded and pruned so the artifact is small and stable.
 */
export function trainTagger(examples: TaggedText[], epochs: number, seed: number): TaggerWeights {
  const L = TAGS.length;
  const weights = new Map<string, Float64Array>();
  const totals = new Map<string, Float64Array>();
  const stamps = new Map<string, Float64Array>();
  let clock = 0;
  const update = (feature: string, tag: number, delta: number) => {
    let w = weights.get(feature), tot = totals.get(feature), st = stamps.get(feature);
    if (!w) { w = new Float64Array(L); tot = new Float64Array(L); st = new Float64Array(L); weights.set(feature, w); totals.set(feature, tot); stamps.set(feature, st); }
    tot![tag]! += (clock - st![tag]!) * w[tag]!;
    st![tag] = clock;
    w[tag]! += delta;
  };
  let state = seed >>> 0;
  const random = () => { state = (Math.imul(state, 1664525) + 1013904223) >>> 0; return state / 4294967296; };
  const order = examples.map((_, i) => i);
  const scores = new Float64Array(L);
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) { const j = Math.floor(random() * (i + 1)); [order[i], order[j]] = [order[j]!, order[i]!]; }
    for (const index of order) {
      const ex = examples[index]!;
      const views = view(ex.tokens);
      for (let i = 0; i < ex.tokens.length; i++) {
        clock++;
        const prev = i === 0 ? 'O' : ex.tags[i - 1]!;
        const feats = features(ex.tokens, views, i, prev, ex.text);
        scores.fill(0);
        for (const feature of feats) {
          const w = weights.get(feature);
          if (w) for (let t = 0; t < L; t++) scores[t]! += w[t]!;
        }
        const guess = argmax(scores);
        const truth = TAGS.indexOf(ex.tags[i]!);
        if (guess === truth) continue;
        for (const feature of feats) { update(feature, truth, 1); update(feature, guess, -1); }
      }
    }
  }
  const averaged: Record<string, number[]> = {};
  for (const [feature, w] of [...weights.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const tot = totals.get(feature)!, st = stamps.get(feature)!;
    const avg = Array.from(w, (value, t) => Math.round(((tot[t]! + (clock - st[t]!) * value) / clock) * 1e4) / 1e4);
    if (avg.some((x) => Math.abs(x) >= 1e-4)) averaged[feature] = avg;
  }
  return { version: 1, tags: TAGS, weights: averaged };
}

/** Gold spans onto tokens: a token is tagged when most of its characters are inside a span of a tagged type. */
export function tagsFromSpans(text: string, spans: Array<{ start: number; end: number; tag: Tag }>): TaggedText {
  const tokens = tokenize(text);
  const tags = tokens.map((t) => {
    const span = spans.find((s) => s.start < t.end && s.end > t.start && Math.min(s.end, t.end) - Math.max(s.start, t.start) >= (t.end - t.start) / 2);
    return span ? span.tag : 'O';
  });
  return { text, tokens, tags };
}
