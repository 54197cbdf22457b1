import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findPhi, redactText } from '../../src/phi/text-redactor.js';
import { CLINICAL_TERMS, FUNCTION_WORDS } from '../../src/phi/lexicon.js';

/**
 * Seeded property tests of the free-text redactor: whatever the text, the
 * spans are well formed, and an identifier with a shape of its own (an
 * e-mail, an SSN, a dashed phone number, a dated day) never survives,
 * whatever clinical or hostile text surrounds it.
 */

// Words and pieces notes are made of, the cue words the rules look for among them, and characters that break patterns.
const pieces = fc.constantFrom(
  'Dr.', 'son', 'wife', 'Member:', 'Name:', 'in', 'from', 'corner of', 'and', 'on', 'Street', 'pager', 'ext.', 'pain', '4/10', '3/18',
  'Flagstaff', 'Mobile', 'Grace', 'Carpenter', 'barbara', 'de', 'Vries', 'G.', 'John:', 'Murphy', "Murphy's", 'sign', 'BP', '120/80',
  'mg', 'PO', 'BID', 'Mother', 'Deceased', 'the', 'was', 'seen', ',', '.', ';', ':', '\n', '  ', '\t', '(', ')', '"', '#', '-', '/',
  'é', 'İ', '’', '😀', '\u00a0', '94', '101', '7', '12345', 'MRN',
);
const noteText = fc.array(fc.oneof(pieces, fc.string({ maxLength: 6 })), { maxLength: 40 }).map((parts) => parts.join(' '));

// Identifiers every rule set must take whatever surrounds them. Each is generated afresh, not from a list.
const digits = (n: number) => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: n, maxLength: n }).map((d) => d.join(''));
const identifiers = fc.oneof(
  fc.tuple(fc.stringMatching(/^[a-z][a-z0-9.]{1,10}[a-z0-9]$/), fc.stringMatching(/^[a-z]{2,8}$/)).filter(([local]) => !local.includes('..')).map(([local, host]) => `${local}@${host}.org`),
  fc.tuple(fc.integer({ min: 100, max: 899 }), fc.integer({ min: 10, max: 99 }), digits(4)).map(([a, b, c]) => `${a}-${b}-${c}`),
  fc.tuple(fc.integer({ min: 200, max: 989 }), fc.integer({ min: 200, max: 999 }), digits(4)).map(([a, b, c]) => `(${a}) ${b}-${c}`),
  fc.tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 28 }), fc.integer({ min: 1900, max: 2099 })).map(([m, d, y]) => `${m}/${d}/${y}`),
);

/** The identifier's own characters (letters and digits) are all inside redacted spans. */
function covered(text: string, start: number, end: number): boolean {
  const spans = findPhi(text);
  for (let i = start; i < end; i++) {
    if (!/[\p{L}\p{N}]/u.test(text[i]!)) continue;
    if (!spans.some((s) => s.start <= i && i < s.end)) return false;
  }
  return true;
}

describe('text redactor properties (seeded)', () => {
  it('spans are sorted, apart, inside the text and typed, whatever the text', () => {
    fc.assert(fc.property(noteText, (text) => {
      const spans = findPhi(text);
      let last = 0;
      for (const s of spans) {
        expect(s.start).toBeGreaterThanOrEqual(last);
        expect(s.end).toBeGreaterThan(s.start);
        expect(s.end).toBeLessThanOrEqual(text.length);
        expect(s.type).toMatch(/^[A-Z]+$/);
        last = s.end;
      }
      // The redacted text is the original with each span replaced by its type.
      const { text: out } = redactText(text);
      expect(out.length).toBe(text.length + spans.reduce((n, s) => n + s.type.length + 2 - (s.end - s.start), 0));
    }), { seed: 20261206, numRuns: 1500 });
  });

  it('an e-mail, an SSN, a dashed phone number or a dated day never survives, in any surrounding text', () => {
    fc.assert(fc.property(noteText, identifiers, noteText, (before, identifier, after) => {
      const text = `${before} ${identifier} ${after}`;
      const start = before.length + 1;
      expect(covered(text, start, start + identifier.length)).toBe(true);
    }), { seed: 20261207, numRuns: 1500 });
  });

  it('a capitalised surname after a title never survives, whatever word it is', () => {
    const surname = fc.stringMatching(/^[A-Z][a-z]{1,10}$/);
    const title = fc.constantFrom('Dr.', 'Dr', 'Mrs.', 'Mr.', 'Ms.', 'Prof.');
    fc.assert(fc.property(noteText, title, surname, noteText, (before, t, name, after) => {
      const text = `${before} ${t} ${name} ${after}`;
      const start = before.length + t.length + 2;
      expect(covered(text, start, start + name.length)).toBe(true);
    }), { seed: 20261208, numRuns: 1500 });
  });

  it('someone met at the bedside, and an age over 89 set off by commas after them, never survive, whatever other word the name is', () => {
    const name = fc.stringMatching(/^[A-Z][a-z]{2,10}$/);
    const verb = fc.constantFrom('Met', 'Saw', 'Visited', 'Greeted', 'Chaplain visit. Met');
    const age = fc.integer({ min: 90, max: 119 });
    fc.assert(fc.property(noteText, verb, name, age, noteText, (before, v, who, years, after) => {
      // Function and clinical words are never taken for a name ("Met Had", "Saw Sepsis"): the rest are.
      fc.pre(!FUNCTION_WORDS.has(who.toLowerCase()) && !CLINICAL_TERMS.has(who.toLowerCase()));
      const head = `${before}.\n${v} `;
      const text = `${head}${who} at bedside, ${years}, devout. ${after}`;
      expect(covered(text, head.length, head.length + who.length)).toBe(true);
      const at = text.indexOf(`, ${years},`, head.length) + 2;
      expect(covered(text, at, at + String(years).length)).toBe(true);
    }), { seed: 20261209, numRuns: 1500 });
  });
});
