import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isAscii, letterRunsAscii, nameTokensAscii, tagTokensAscii } from '../../src/phi/ascii-scan.js';

/** The regular expressions the scanners stand in for on ASCII text (token-tagger.ts, text-redactor.ts, lexicon.ts). */
const TAGGER = /[\p{L}][\p{L}\p{M}\d'’-]*|\d+(?:[.,:/-]\d+)*[A-Za-z]*|[^\s\p{L}\d]/gu;
const NAMES = /[\p{L}][\p{L}\p{M}\d'’-]*|\d+[A-Za-z]?/gu;
const LETTERS = /\p{L}+/gu;
const spans = (re: RegExp, text: string) => [...text.matchAll(re)].map((m) => ({ start: m.index, end: m.index + m[0].length }));

// Clinical-note ASCII, weighted towards what the token rules care about: letters, digits, separators, apostrophes, hyphens, spaces.
const asciiText = fc.array(fc.constantFrom(...'aZm09 5-\'./:,\n\t\r\x0b\x0c#()@%&_xQ'.split(''), 'Dr.', 'O\'Brien', '12/03', '3.5mg', '--', 'ab-'), { maxLength: 60 }).map((parts) => parts.join(''));

describe('ASCII scanners give exactly the regular expressions\' tokens', () => {
  it('tagger tokens, name tokens and letter runs (seeded property test)', () => {
    fc.assert(fc.property(asciiText, (text) => {
      expect(tagTokensAscii(text)).toEqual(spans(TAGGER, text));
      expect(nameTokensAscii(text)).toEqual(spans(NAMES, text));
      expect(letterRunsAscii(text)).toEqual(spans(LETTERS, text));
    }), { seed: 20261127, numRuns: 3000 });
  });

  it('every printable and control ASCII character, alone and between words', () => {
    for (let c = 0; c < 128; c++) {
      for (const text of [String.fromCharCode(c), `ab${String.fromCharCode(c)}12${String.fromCharCode(c)}c`]) {
        expect(tagTokensAscii(text)).toEqual(spans(TAGGER, text));
        expect(nameTokensAscii(text)).toEqual(spans(NAMES, text));
        expect(letterRunsAscii(text)).toEqual(spans(LETTERS, text));
      }
    }
  });

  it('text with any other character is not ASCII (the regular expressions take it)', () => {
    expect(isAscii('Seen by Dr. Okafor on 12/03.')).toBe(true);
    for (const text of ['café', 'O’Brien', 'naïve', '\u00a0', 'İzmir', '😀']) expect(isAscii(text)).toBe(false);
  });
});
