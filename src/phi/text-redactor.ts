import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CLINICAL_TERMS, FUNCTION_WORDS, US_STATES, findCountryNames, isCommonWord, isFirstName, stateFollows, usCityAt, warmLexicons } from './lexicon.js';
import { taggedSpans, type TaggerWeights } from './token-tagger.js';
import { isAscii, nameTokensAscii } from './ascii-scan.js';

/**
 * The learned tagger's weights (models/phi-tagger), read once and checked
 * against the SHA-256 its manifest pins, as model files are: a changed file
 * is refused, loudly, rather than quietly redacting differently.
 */
let taggerWeights: TaggerWeights | undefined;
let taggerOn = true;
export function loadTagger(): TaggerWeights {
  if (!taggerWeights) {
    const dir = new URL('../../models/phi-tagger/', import.meta.url);
    const manifest = JSON.parse(readFileSync(new URL('manifest.json', dir), 'utf8')) as { file: string; sha256: string };
    const bytes = readFileSync(new URL(manifest.file, dir));
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== manifest.sha256) throw new Error(`PHI tagger weights ${manifest.file}: SHA-256 ${actual} does not match the pinned ${manifest.sha256}`);
    taggerWeights = JSON.parse(bytes.toString('utf8')) as TaggerWeights;
  }
  return taggerWeights;
}

/** The lexicons and the learned tagger (whose pinned weights are checked now, so a bad file stops startup, not a request). */
export function warmRedactor(): void {
  warmLexicons();
  loadTagger();
}

/** For measuring what the tagger costs and adds (bench:phi); it is always on in the gateway. */
export function setTaggerEnabled(on: boolean): void {
  taggerOn = on;
}

/** Placeholder types, after HIPAA Safe Harbor's identifier list. */
export type PhiType = 'NAME' | 'DATE' | 'AGE' | 'PHONE' | 'EMAIL' | 'SSN' | 'ID' | 'ACCOUNT' | 'URL' | 'IP' | 'ADDRESS' | 'LOCATION' | 'ZIP';

export interface PhiSpan { start: number; end: number; type: PhiType }

const MONTH = '(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\\.?';
// Longer alternatives first: with an optional tail, the first alternative that fits wins.
const DAY = '(?:3[01]|[12]\\d|0?[1-9])(?:st|nd|rd|th)?';
const YEAR = '(?:1[89]\\d\\d|20\\d\\d)';
const STREET_WORDS = 'streets?|st|avenues?|ave|roads?|rd|boulevards?|blvd|lanes?|ln|drives?|dr|courts?|ct|ways?|places?|pl|terraces?|ter|circles?|cir|parkways?|pkwy|highways?|hwy|squares?|sq|trails?|trl|loops?|routes?|rte|alley|rows?|crescents?|close|gardens|mews|parks?|plaza|pike|crossing|heights|hills?|ridges?|views?|vista|walk|straße|strasse|str|gasse|weg|platz|allee|rue|via|viale|calle|avenida|rua|utca|tér|katu|tie|gatan|vej|gata';
const STREET = `(?:${STREET_WORDS})\\.?`;
/** Words that never stand inside a street's name ("and" may: an intersection, "Elm 77 and Oak Court"): they make "97 and still drives" or "2021. PCP is Dr" a sentence. */
const NOT_STREET_NAME = '(?:is|was|were|are|still|then|also|who|that|has|had|have|he|she|it|they|we|i|you|his|her|their|times|mg|ml|units|days|weeks|months|years|hours|minutes|mins|hrs|percent)';
const STREET_WORD = new RegExp(`^(?:${STREET_WORDS})$`, 'i');

/**
 * 12/3, a date without a year, also at the end of a sentence ("H&P 3/18."), but not the start of a decimal (3/18.5);
 * scores and fractions written the same way are left (scoreOrFraction).
 */
const MONTH_DAY = /(?<![\d/.])(?:0?[1-9]|1[0-2])\/(?:0?[1-9]|[12]\d|3[01])(?![\d/]|\.\d)/g;
const SCORE_BEFORE = /\b(?:pain|strength|power|motor|murmur|grade|graded|ratio|reflex(?:es)?|pulses?|dtrs?|score|scale|gcs|apgar|rated|rates|take|took|taking|give|gave|about|approximately|approx|only|x)\s*[:=]?\s*$/i;
const SCORE_AFTER = /^\s*(?:of|strength|power|murmur|pulses?|reflex(?:es)?|tab(?:let)?s?|cap(?:sule)?s?|pills?|doses?|cups?|teaspoons?|tsp|tbsp|inch(?:es)?|miles?|systolic|diastolic|holosystolic|sec)\b/i;
/** "pain 4/10", "4/5 strength", "2/6 murmur", "ratio 3/4", "1/2 tab": a score or a fraction, by the words around it. */
function scoreOrFraction(text: string, start: number, end: number): boolean {
  return SCORE_BEFORE.test(text.slice(Math.max(0, start - 24), start)) || SCORE_AFTER.test(text.slice(end, end + 16));
}

/** Short numbers named as a pager or an extension (too short for plausiblePhone): "pager #45821", "ext. 4532". */
const PAGER = /\b(?:pager|beeper|pgr|bleep|ext\.?)\s*(?:#|no\.?|number)?\s*[:=]?\s*(?<phi>\d{3,7})\b(?!\s*(?:°|deg|degrees|mg|mcg|ml|units?|iu|meq|%))/dgi;
const INTERSECTION = /\bcorner of\s+(?<phi>[^\n;!?]{2,60}?\s+and\s+[^\n;!?]{2,40}?)(?=\s*(?:[\n,;!?]|\.(?:\s|$)|$))/dgiu;
/** Both streets of an intersection name a place: a capital or a digit on each side ("the corner of the bed and the wall" is not one). */
const intersection = (value: string): boolean => value.split(/\s+and\s+/).every((side) => /[\p{Lu}\d]/u.test(side));

const INVERTED_NAME = /(?:^|\n|:)[ \t]*(?<phi>(?<surname>[A-Z][A-Z'-]{1,24}),[ \t]*(?<given>[A-Z][A-Z'-]{1,24})(?:[ \t]+[A-Z]\.?)?)(?=[ \t]*(?:$|\n|[,;(]|[ \t]{2}|\d))/dg;
/** SURNAME, GIVEN: the given name is one the name lists know, the surname no clinical abbreviation ("CHF, MAY" is not a name). */
const invertedName = (m: RegExpMatchArray): boolean => {
  const surname = m.groups!.surname!.toLowerCase(), given = m.groups!.given!.toLowerCase();
  return firstName(given) && !FUNCTION_WORDS.has(surname) && !(surname.length <= 4 && CLINICAL_TERMS.has(surname));
};

/** Labels of fields that hold a person's name, at the start of a line, and a value of one to four words. */
const FIELD_NAME = /(?:^|\n)[ \t]*(?:name|full name|patient name|pt name|member(?: name)?|subscriber(?: name)?|insured(?: name)?|policy ?holder|beneficiary|guarantor|next of kin|emergency contact|legal guardian|caregiver name)[ \t]*:[ \t]*(?<phi>\p{L}[\p{L}'’.-]*(?:[ \t]+\p{L}[\p{L}'’.-]*){0,3})[ \t]*(?=\n|$|,|;)/dgiu;
/** Values of such a field that name no one. */
const NO_ONE = /^(?:unknown|none|n\/?a|self|same|declined|not (?:provided|given|available)|see (?:above|below))$/i;
/** A form's employer or school field, to the end of its line or sentence: capitalised words ("Apex Tool Works"). */
const EMPLOYER_FIELD = /(?<=(?:^|\n|[.;]\s+)[ \t]*)(?:Employer|Workplace|Place of (?:work|employment)|School|Company)[ \t]*:[ \t]*(?<phi>\p{Lu}[\p{L}'’&-]+(?:[ \t]+(?:&[ \t]+|and[ \t]+|of[ \t]+(?:the[ \t]+)?)?\p{Lu}[\p{L}'’&-]*){0,5})(?=[ \t]*(?:$|\n|[.,;]))/dgu;

/** Structured identifiers: each pattern, the type it marks. Order does not matter; overlaps are merged. */
/** Decides whether a pattern's match is kept (the words around it can say it is not an identifier). */
type Keep = (m: RegExpMatchArray, text: string) => boolean;
/** A phone-shaped match is a phone number by its shape or a cue before it (plausiblePhone). */
const phoneLike: Keep = (m, text) => plausiblePhone(m[0].trim(), text.slice(Math.max(0, m.index! - 24), m.index));

const PATTERNS: Array<[RegExp, PhiType, Keep?]> = [
  // (E-mail addresses are found around each @ by findEmails: this pattern tried at every letter was dear.)
  [/\b(?:https?:\/\/|www\.)[^\s<>"')\]]+/gi, 'URL'],
  [/\b(?:[a-z\d][a-z\d-]*\.)+(?:com|org|net|edu|gov|mil|int|info|biz|io|co|us|uk|de|fr|it|es|nl|hu|ru|cn|jp|au|ca|br|in|ch|se|no|dk|fi|pl|cz|at|be|ie|pt|gr|tr|il|za|mx|ar|cl|nz|kr|tw|hk|sg|ae|sa|ua|ro|sk|si|hr|bg|rs|lt|lv|ee|is|lu|health|hospital|clinic|app|dev|online|site)\b(?:\/[^\s]*)?/gi, 'URL'],
  [/\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\b/g, 'IP'],
  [/\b(?:[\da-f]{1,4}:){3,7}[\da-f]{1,4}\b/gi, 'IP'],
  [/\b\d{3}[- ]\d{2}[- ]\d{4}\b/g, 'SSN'],
  [/\b[A-Z]{2}\d{2}(?: ?[A-Z\d]{4}){2,7}(?: ?[A-Z\d]{1,4})?\b/g, 'ACCOUNT'], // IBAN
  [/\b(?:\d[ -]?){12,18}\d\b/g, 'ACCOUNT'], // card and account numbers
  // Phone and fax numbers: 7–15 digits with the usual separators, optional country code and extension.
  [/(?<![\w/.:])(?:\+|00)?\(?\d[\d().\s-]{5,22}\d(?:\s*(?:x|ext\.?)\s*\d{1,5})?(?![\w/])/gi, 'PHONE', phoneLike],
  [/(?<![\w/.])\(\d{3}\)\s?\d{3}[\s.-]?\d{4}\b/g, 'PHONE', phoneLike],
  [/(?<![\w.])\+\d{7,14}\b/g, 'PHONE', phoneLike],
  // Pagers and extensions, short numbers named as such: "pager #45821", "beeper 3321", "ext. 4532".
  [PAGER, 'PHONE'],
  // Dates more specific than a year.
  [new RegExp(`\\b${YEAR}[-/.](?:1[0-2]|0?[1-9])[-/.](?:3[01]|[12]\\d|0?[1-9])(?![\\d])(?:[T ][0-2]\\d:[0-5]\\d(?::[0-5]\\d(?:\\.\\d+)?)?(?:Z|[+-][0-2]\\d:?[0-5]\\d)?)?`, 'g'), 'DATE'],
  [/\b(?:3[01]|[12]\d|0?[1-9])[-/.](?:3[01]|[12]\d|0?[1-9])[-/.](?:\d{4}|\d{2})\b/g, 'DATE'],
  [MONTH_DAY, 'DATE', (m, text) => !scoreOrFraction(text, m.index!, m.index! + m[0].length)],
  [new RegExp(`\\b${MONTH}\\s+${DAY}(?:,?\\s+${YEAR})?\\b`, 'gi'), 'DATE'],
  [new RegExp(`\\b${DAY}\\s+(?:of\\s+)?${MONTH}(?:,?\\s+${YEAR})?\\b`, 'gi'), 'DATE'],
  [new RegExp(`\\b${MONTH}\\s+${YEAR}\\b`, 'gi'), 'DATE'],
  // 03-Mar-2024, 14MAR2024, 3 Mar 24: day, month name and year run together or joined by - / . or a space.
  [new RegExp(`\\b(?:3[01]|[12]\\d|0?[1-9])[-/. ]?${MONTH}[-/. ]?(?:${YEAR}|\\d{2})\\b`, 'gi'), 'DATE'],
  // A month and a year in digits (3/2024, 03/2029) and a season with its year (Spring 2023).
  [new RegExp(`(?<![\\d/.])(?:0?[1-9]|1[0-2])\\/${YEAR}\\b`, 'g'), 'DATE'],
  [new RegExp(`\\b(?:spring|summer|fall|autumn|winter)\\s+(?:of\\s+)?${YEAR}\\b`, 'gi'), 'DATE'],
  // A day of the month on its own: "returns on the 14th".
  [/\b(?:on|by|until|till|before|after|since|from)\s+the\s+(?<phi>(?:3[01]|[12]\d|[1-9])(?:st|nd|rd|th))\b/dgi, 'DATE'],
  // Days of the week and holidays narrow a date as much as "12/3" does ("admitted Sunday", "fell on Christmas Eve").
  [/\b(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day|christmas(?: eve| day)?|thanksgiving(?: day)?|easter(?: sunday)?|new year'?s(?: eve| day)?|independence day|fourth of july|memorial day|labor day|veterans day|halloween|hanukkah|passover|yom kippur|rosh hashanah|ramadan|eid(?: al-fitr| al-adha)?|diwali|lunar new year)\b/gi, 'DATE'],
  // A name written SURNAME, GIVEN in capitals at the start of a line or after a label ("Patient: JONES, MARY A").
  [INVERTED_NAME, 'NAME', invertedName],
  // A form's identity field: the rest of its line is a name, in any case ("Member: xin de vries", "Name: JOHN SMITH, DOB").
  [FIELD_NAME, 'NAME', (m) => !NO_ONE.test(m.groups!.phi!) && !RELATIONS.has(m.groups!.phi!.toLowerCase())],
  // An employer or school named in a form's field ("Employer: Apex Tool Works."), unless it names none.
  [EMPLOYER_FIELD, 'LOCATION', (m) => !NO_ONE.test(m.groups!.phi!) && !/^(?:self|retired|disabled|unemployed|student|homemaker)$/i.test(m.groups!.phi!)],
  // Ages over 89 (Safe Harbor allows younger ages), in digits and in words.
  [/\b(?:9\d|1[0-4]\d)(?:\s*|-)(?:y\/o\b|y\.?\s?o\b\.?|yrs?\b|years?(?:[\s-]old)?\b|year-old\b|y\b)/gi, 'AGE'],
  // Age and sex together: "Age/Sex: 96/F", "Sex/Age: F/97".
  [/\bage\s*\/\s*sex\s*[:=]?\s*(?<phi>9\d|1[0-4]\d)\s*\/\s*[MF]\b/dgi, 'AGE'],
  [/\bsex\s*\/\s*age\s*[:=]?\s*[MF]\s*\/\s*(?<phi>9\d|1[0-4]\d)\b/dgi, 'AGE'],
  // "turned ninety", "is now one hundred and one".
  [/\b(?:turned|turns|turning|is now|will be)\s+(?<phi>(?:ninety|one hundred)(?:[\s-]+(?:and[\s-]+)?(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve))?)\b(?!\s*(?:percent|%))/dgi, 'AGE'],
  [/\b(?:aged?|age of|age\s*[:=])\s*(?:9\d|1[0-4]\d)\b/gi, 'AGE'],
  [/\b(?:aged?|age of|age\s*[:=])\s*(?<phi>(?:ninety|one hundred)(?:[\s-]+(?:and[\s-]+)?(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve))?)\b/dgi, 'AGE'],
  [/\b(?:9\d|1[0-4]\d)\s?(?:M|F|yo[MF])\b/g, 'AGE'], // 94M, 91 F, 92yoF
  [/\b(?:9\d|1[0-4]\d)(?:th|st|nd|rd)\s+birthday\b/gi, 'AGE'],
  // "she is 94", "patient turned 101": the number only (the words around it are not the age).
  [/\b(?:she|he|they|patient|pt|who|mother|father|mom|dad|grandmother|grandfather)\s+(?:is|was|turned|turns|is now)\s+(?<phi>(?:9\d|1[0-4]\d))\b(?!\s*(?:%|mg|kg|lbs?|bpm|mmhg|\/|\.\d))/dgi, 'AGE'],
  [/\b(?:ninety|one hundred(?: and)?)(?:[\s-](?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve))?(?:[\s-]years?(?:[\s-]old)?|[\s-]year-old|[\s-]yo\b)/gi, 'AGE'],
  [/\b(?:in|into)\s+(?:his|her|their)\s+(?:early\s+|mid[\s-]|late\s+)?(?:90s|nineties|100s)\b/gi, 'AGE'],
  [/\b(?:nonagenarian|centenarian|supercentenarian)\b/gi, 'AGE'],
  // Labelled identifiers: MRN, account, licence, device, vehicle, plan and other numbers.
  // (The cue is matched first and the identifier captured as `phi`: a look-behind here would be tried at every position.)
  [/\b(?:mrn|medical record(?: number| no\.?| #)?|record #|acct|account(?: number| no\.?| #)?|member id|policy(?: number| no\.?)?|plan id|beneficiary(?: id| number)?|group(?: number| no\.?| #| id)?|grp(?: #| no\.?)?|subscriber(?: id| number| #)?|insurance(?: id| number| #)|medicaid(?: id| number| #)?|medicare(?: id| number| #)?|mbi|identifier|claim(?: number| no\.?| #)?|case(?: number| no\.?| #)|badge(?: number| #)?|passport(?: number| no\.?| #)?|registration(?: number| no\.?| #)?|certificate(?: number| no\.?| #)|imei|license(?: number| no\.?| #)?|licence(?: number| no\.?)?|dl(?: #| no\.?)?|npi|dea|vin|serial(?: number| no\.?| #)?|sn|s\/n|device id|plate(?: number)?|id(?: number| no\.?| #)|patient id|ssn|social security(?: number)?)(?:\s+(?:is|was))?\s*[:#]?\s*(?:[A-Z]{2}\s+(?=[A-Z\d-]*\d))?(?<phi>(?=[A-Z-]*\d)[A-Z\d][A-Z\d-]{3,})/dgi, 'ID'],
  [/\b(?=[A-Z\d-]*\d)(?=[A-Z\d-]*[A-Z])[A-Z][A-Z\d-]{4,}\b/g, 'ID'], // H12345678, HCS843-style codes
  // Codes that start with a digit (a Medicare MBI 1EG4-TE5-MK73): eight characters or more, two letters and two digits at least.
  [/\b(?=[A-Z\d-]{8,}\b)(?=(?:[A-Z\d-]*[A-Z]){2})(?=(?:[A-Z\d-]*\d){2})\d[A-Z\d-]*[A-Z\d]\b/g, 'ID'],
  [/(?<![\d.,])\d{6,}(?!\d|[.,]\d)/g, 'ID'], // long bare numbers (a full stop after one ends a sentence; a decimal point is followed by digits)
  // Synthea-style names carry digits: Bob965, Keeling57.
  [/\b\p{Lu}\p{Ll}+\d{1,4}\b/gu, 'NAME'],
  // Street addresses: a house number and a street with a suffix, then unit, city, state and ZIP.
  // The words between the number and the street word are a street's name, never sentence words ("97 and still drives").
  [new RegExp(`\\b\\d{1,6}[A-Za-z]?\\s+(?:(?!${NOT_STREET_NAME}\\s)[\\p{L}\\d'.-]+\\s+){0,4}${STREET}(?=[\\s,]|$)(?:[\\s,]*(?:apt|apartment|suite|ste|unit|#|no\\.?)\\.?\\s*[\\w-]+)?`, 'giu'), 'ADDRESS'],
  [/\b(?:apt|apartment|suite|ste|unit)\b\.?\s*#?\s*[\w-]*\d[\w-]*/gi, 'ADDRESS'],
  [/\bP\.?\s?O\.?\s+Box\s+\d+/gi, 'ADDRESS'],
  // A postcode named as one, in any country's shape: "my zip code is 610", "ZIP: 7412 SL", "postal code 53-320".
  [/\b(?:zip|postcode|post code|postal code)(?: code)?(?:\s+(?:is|was))?\s*[:=#]?\s*(?<phi>\d{2}-\d{3}\b|\d{3,6}(?:-\d{4})?(?:\s?[A-Z]{2}\b)?)/dgi, 'ZIP'],
  // UK and Canadian postcodes (NW1 6XE, SW1A 1AA, K1A 0B1): shapes no clinical abbreviation has.
  [/\b(?:[A-Z]{1,2}\d[A-Z\d]?\s?\d[ABD-HJLNP-UW-Z]{2}|[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z]\s?\d[ABCEGHJ-NPRSTV-Z]\d)\b/g, 'ZIP'],
  [/\b(?:PSC|CMR|Unit)\s+\d+,?\s+Box\s+\d+(?:\s+(?:APO|FPO|DPO)\s+(?:AA|AE|AP)\s+\d{5})?/gi, 'ADDRESS'], // military mail, in any case
  // An intersection ("the corner of Dalbraut 99 and Frederikke Coves"), each side with a capital or a digit (intersection()).
  [INTERSECTION, 'ADDRESS', (m) => intersection(m.groups!.phi!)],
  // A street named without its number: "shows on Berg Hills Street".
  [/\bon\s+(?<phi>(?:\p{Lu}[\p{L}'’-]+\s+){1,3}(?:Street|Avenue|Road|Boulevard|Lane|Drive|Court|Place|Terrace|Parkway|Highway))\b/dgu, 'ADDRESS'],
  [/\b(?:USNS|USNV|USS|USCGC)\s+\p{Lu}[\p{L}]+(?:\s+(?:FPO|APO|DPO)\s+(?:AA|AE|AP)\s+\d{5})?/gu, 'ADDRESS'],
];

// Letters with digits inside stay one token (SpO2, HbA1c), so they are judged as a whole.
const TOKEN = /[\p{L}][\p{L}\p{M}\d'’-]*|\d+[A-Za-z]?/gu;
/** Titles and relation words before a name, looked up by a token's lower-case text (a Set: these are tested for every token). */
const TITLES = new Set('dr mr mrs ms miss mx prof sr sra fr rev sister nurse'.split(' '));
/** Care roles written before a surname in notes. (Not "pt", "pa", "do": patient, Pennsylvania, the verb.) */
const ROLES = new Set('rn np lpn cna pharmacist therapist chaplain interpreter attending resident fellow intern surgeon physician hospitalist'.split(' '));
/** What follows a role word when it names no one: "RN assessment", "NP note", "attending physician". */
const ROLE_OBJECTS = new Set(('note notes assessment assessments report reports plan plans review visit visits call calls communication order orders eval evaluation '
  + 'consult consults progress summary documentation staff team station desk manager supervisor coordinator education triage admission discharge '
  + 'physician surgeon nurse attestation signature supervision service services on coverage').split(' '));
const RELATIONS = new Set(('dtr daughter son wife husband spouse partner mother mom mum father dad sister sis brother bro aunt uncle niece nephew cousin '
  + 'grandson granddaughter grandmother grandfather friend neighbor neighbour caregiver guardian fiance fiancée').split(' '));
/** Words after a relation word that say how the relative is, not who (family history lines, headings). */
const RELATIVE_STATUS = new Set(('deceased alive living healthy well unknown adopted passed died dies notified present absent aware informed '
  + 'updated called visiting visited here available unavailable history hx age aged ages lives lived at with has had is was in law side').split(' '));
/** Words that open a sentence before a name and are no part of it: "Dear Yael", "Met Xin at bedside". */
const GREETINGS = new Set('dear hi hello hey thanks thank met meet saw see seen ask asked call called tell told per welcome congratulations'.split(' '));
/** What a patient named right after "Pt" or "Patient" does: "Pt Yaw states…", "Patient Wen denies…". */
const PATIENT_VERBS = new Set('states stated reports reported says said denies denied endorses endorsed complains complained notes noted presents presented returns returned agrees agreed declines declined refuses refused understands feels felt tolerated tolerates ambulated ambulates'.split(' '));
/** Verbs of meeting or speaking to a person: the capitalised word right after one is someone ("Met Juniper at bedside", "said Maslin to Antonio"). */
const MEETING_VERBS = new Set(('met meet meets meeting saw see sees seeing visited visit visits visiting greeted greet greets interviewed counseled counselled consoled comforted '
  + 'reassured thanked hugged accompanied said asked told replied answered').split(' '));
/** What comes after the person a meeting verb names: where, when, or the end of the clause; "Met Criteria for" goes on. */
const AFTER_MET_PERSON = /^(?:\s*$|[,.;:!?)]|\s+(?:at|in|on|to|with|and|who|today|tonight|yesterday|again|briefly|alone|outside|here|there|this|earlier|later|before|after)\b)/;
/** Words of time and place that end a clause after a name ("saw barbara today,"): never a surname. */
const TIME_WORDS = new Set('today tonight yesterday tomorrow now again here there too also already yet later earlier soon first last morning evening afternoon night'.split(' '));
/** Words that name someone outright: what follows is a name even when it is also a word. */
const NAMING_CUE_BEFORE = /\b(?:name is|name's|named|calls? me|goes by|known as|(?:first|last|middle|family|given|nick|sur|maiden)[\s-]?name(?: is|\?)?)\s*[:,]?\s*$/i;
const NAME_CUE_BEFORE = /(?:\b(?:name is|named|called|i am|i'm|signed by|seen by|seen with|evaluated by|examined by|dictated by|attending|pcp|physician|provider|surgeon|resident|intern|nurse|rn|np|pa|contact|emergency contact|spoke (?:with|to)|spoke w\/|talked (?:with|to)|discussed with|w\/|cc|from|by|to|dear|patient|pt)\s*[:,]?\s*)$/i;
const LOCATION_CUE_BEFORE = /\b(?:in|at|from|near|to|of|lives in|resides in|born in|moved to|city of|town of)\s+$/i;

/**
 * The last word of an institution's name: hospitals ("Mass General", "Tampa General"), care homes, schools,
 * employers. Insurers ("Cigna Health") are not on it: a health plan's name is not an identifier, its member number is.
 */
const ORG_SUFFIX = "(?:Hospitals?|General|Infirmary|Clinics?|Hospice|Medical (?:Center|Centre|Group|Associates|Campus)|Health (?:System|Center|Centre)|Nursing (?:Home|Facility|Center|Centre)|(?:Veterans'?|Soldiers'?|Sailors'?|Children's|Group|Funeral|Memorial) Homes?|Care (?:Home|Center|Centre|Facility)|Rehabilitation (?:Center|Centre|Hospital)|Rehab|(?:Surgery|Surgical|Dialysis|Cancer|Heart|Eye|Wellness|Treatment) (?:Center|Centre|Institute)|Assisted Living|Senior Living|Retirement (?:Home|Community|Village)|Pharmacy|Drugs?|Laboratories|Labs|Institute|University|College|School|Academy|Seminary|Foundation|Church|Cathedral|Temple|Mosque|Synagogue|Parish|Manor|Lodge|Gardens|Inc\\.?|LLC|L\\.L\\.C\\.|Ltd\\.?|Corp\\.?|Corporation|Company|Co\\.|Industries|Logistics|Enterprises|Holdings|Bank|Credit Union|Airlines?|Motors|Foods|Markets?|Stores?|Restaurant|Diner|Hotel|Farms?|Mills?|Factory|Plant|Shipyard|Brewery|Bakery|Prison|Jail|Correctional (?:Facility|Institution|Center)|Penitentiary|Police Department|Fire Department|Sheriff's Office|County Jail|Shelter|Mission|YMCA|YWCA)";
/**
 * Department and service words: "Cardiology Clinic" or "Emergency Medical Center" names
 * a kind of place, not an institution, so a name made only of these is left alone.
 */
const GENERIC_PLACE_WORDS = new Set(('cardiology oncology hematology emergency pediatric pediatrics paediatric surgical surgery radiology neurology orthopedic orthopedics orthopaedic urology '
  + 'dermatology psychiatry psychiatric behavioral behavioural mental health women\'s womens children\'s wound pain sleep dialysis infusion cancer heart eye dental family primary '
  + 'urgent walk-in outpatient inpatient internal medicine rehabilitation physical therapy occupational speech respiratory diabetes endocrine endocrinology gastroenterology hepatology nephrology '
  + 'pulmonary pulmonology rheumatology allergy ent ob gyn obstetric obstetrics gynecology maternity neonatal geriatric geriatrics hospice palliative transplant vascular imaging lab laboratory '
  + 'community day care sports travel vaccine immunization anticoagulation memory specialty student social services medical nursing the a an of and & for general local nearest outside '
  + 'public private teaching veterans va state county city regional our your his her their this that same other new old main acute skilled long-term short-term residential home assisted senior '
  + 'retirement living surgery-center addiction recovery detox substance abuse crisis stroke trauma burn spine joint cardiac '
  + 'rehab floor ward unit bed room work school church town home there here night day morning evening weekend weekends noon '
  + 'medicine surgery hospital clinic er icu ed or step-down stepdown telemetry tele').split(' '));

const ORG_NAME = new RegExp(`\\b((?:(?:St\\.|Ste\\.|Mt\\.|[\\p{Lu}][\\p{L}'’&-]*|of|the|and|&|for|de|del|la|y)\\s+){0,5}?)${ORG_SUFFIX}(?![\\p{L}])(?:\\s+(?:of|at|in|for)\\s+(?:the\\s+)?[\\p{Lu}][\\p{L}'’-]*(?:\\s+[\\p{Lu}][\\p{L}'’-]*){0,3})?`, 'gu');
/** A word that names a kind of institution by itself ("Pharmacy", "Rehab", "Hospice"). */
const INSTITUTION_WORD = new RegExp(`^${ORG_SUFFIX}$`, 'u');
/** An employer or school named after a cue: "works at Halvorsen Freight", "retired from the Bell Works". */
const EMPLOYER = /(?<=\b(?:works?|worked|working|employed|employee|drives?|drove|driving|delivers|delivered|delivering|stationed|enlisted|serves|served|serving|job|jobs|position|career|retired|volunteers?|volunteered|volunteering|studies|studied|student|enrolled|attends|attended|teaches|taught|owns|owned|runs|ran|manages|managed|employer|workplace|company|lives|lived|resides|resided|staying|stays|admitted|transferred|discharged|moved)(?:\s+(?:as\s+(?:an?\s+)?[\p{Ll}-]+(?:\s+[\p{Ll}-]+)?|full[\s-]time|part[\s-]time|there|now|previously|formerly|for\s+(?:\d{1,2}|a few|many|several|two|three|four|five|ten|twenty|thirty|forty)\s+years?))?\s*(?:at|for|with|from|by|in|to|:)\s+(?:the\s+)?)(?:St\.\s+|Mt\.\s+)?[\p{Lu}][\p{L}'’&-]*(?:\s+(?:&\s+|and\s+|of\s+(?:the\s+)?)?[\p{Lu}][\p{L}'’&-]*){0,4}/gu;

/** Institutions and employers: names ending in an institution word, unless the name is generic ("the Cardiology Clinic"). */
function findOrganizations(text: string): PhiSpan[] {
  const out: PhiSpan[] = [];
  for (const m of text.matchAll(ORG_NAME)) {
    // A verb of greeting or meeting before the institution word is none of its name: "Saw Pharmacy again", "Called Rehab".
    const verb = /^(\p{Lu}\p{Ll}+)\s+/u.exec(m[1] ?? '');
    const skip = verb && (GREETINGS.has(verb[1]!.toLowerCase()) || MEETING_VERBS.has(verb[1]!.toLowerCase())) ? verb[0].length : 0;
    const named = (m[1] ?? '').slice(skip);
    // Named when a capitalised word before the institution word, or after its "of"/"at", is not generic.
    const tail = /\s(?:of|at|in|for)\s+(?:the\s+)?(\p{Lu}[\s\S]*)$/u.exec(m[0].slice((m[1] ?? '').length))?.[1] ?? '';
    const words = `${named} ${tail}`.split(/\s+/).filter((w) => /^\p{Lu}/u.test(w));
    if (!words.some((w) => !GENERIC_PLACE_WORDS.has(w.toLowerCase().replace(/[.,]$/, '')))) continue;
    // Start at the first capitalised word: "the" and lower-case words before it stay.
    const first = skip + m[0].slice(skip).search(/(?:St\.|Ste\.|Mt\.|\p{Lu})/u);
    out.push({ start: m.index + first, end: m.index + m[0].length, type: 'LOCATION' });
  }
  for (const m of text.matchAll(EMPLOYER)) {
    const words = m[0].split(/\s+/);
    // A cue followed by generic place words ("works at Home", "transferred to Rehab") is not a name; one capitalised
    // word that is also an English word is, when it is not a kind of place (works for Amazon, shops at Target).
    if (words.every((w) => GENERIC_PLACE_WORDS.has(w.toLowerCase().replace(/[.,]$/, '')))) continue;
    out.push({ start: m.index, end: m.index + m[0].length, type: 'LOCATION' });
  }
  return out;
}

/** Abbreviated units of time, which dictionaries lack: "102 yrs" is an age, never a place or a name. */
const TIME_UNITS = new Set(['yrs', 'yr', 'hrs', 'wks', 'wk', 'mos', 'mins', 'secs', 'yo']);

const AGE_TOKEN = /^(?:\d{2,3}|y|o|yo|yrs?|years?|old|year-old|ninety[\w-]*|one|hundred|and|-|\/|\.)$/i;

/**
 * The tagger's spans, held to what it is good at: a name or place must hold
 * a word that is not an ordinary English or clinical word, or a first name
 * (a capitalised "Case" at the start of a line is not a name); an age keeps
 * only its age words ("94 y/o", not "94 y/o retired").
 */
function learnedSpans(text: string): PhiSpan[] {
  const out: PhiSpan[] = [];
  for (const span of taggedSpans(loadTagger(), text)) {
    const words = text.slice(span.start, span.end).match(/[\p{L}][\p{L}'’-]*|\d+/gu) ?? [];
    if (span.type === 'AGE') {
      // Only ages over 89 are identifiers: the span must start with one (in digits or words) and not be a measurement.
      const pieces = [...text.slice(span.start, span.end).matchAll(/\d+|[\p{L}-]+|\S/gu)];
      let end = span.start;
      for (const p of pieces) {
        if (!AGE_TOKEN.test(p[0])) break;
        if (!/^(?:and|-|\/|\.)$/i.test(p[0])) end = span.start + p.index + p[0].length;
      }
      const age = text.slice(span.start, end);
      const number = /^\d+/.exec(age)?.[0];
      const over89 = number ? Number(number) >= 90 && Number(number) <= 124 : /^(?:ninety|one hundred)/i.test(age);
      if (end > span.start && over89 && !/^\s*(?:%|mg|mcg|kg|lbs?|bpm|mmhg|ml|units?|iu|meq|\/|\.\d|°)/i.test(text.slice(end, end + 8))) out.push({ start: span.start, end, type: 'AGE' });
      continue;
    }
    // One word must be unusual — letters, not a number (vitals and labs are numbers beside abbreviations); a lone
    // capitalised English word ("Case", "Spoke") is not enough, even if someone is named so.
    const unusual = (w: string) => /^\p{L}{2,}/u.test(w) && !/^[A-Z]{2,3}$/.test(w) && !ordinary(w.toLowerCase()) && !TIME_UNITS.has(w.toLowerCase());
    if (!words.some(unusual) && !(words.length > 1 && words.some((w) => firstName(w.toLowerCase()) && !GREETINGS.has(w.toLowerCase())))) continue;
    let { start, end } = span;
    if (span.type === 'NAME') {
      // Greetings and relation words at the edges are not part of the name: "Dear Yael", "Grandson Efua".
      const pieces = [...text.slice(start, end).matchAll(/[\p{L}][\p{L}'’.-]*|\d+/gu)];
      const keep = (w: string) => (unusual(w) || firstName(w.toLowerCase()) || /^\p{Lu}\.?$/u.test(w)) && !GREETINGS.has(w.toLowerCase());
      const first = pieces.findIndex((p) => keep(p[0]));
      const last = pieces.length - 1 - [...pieces].reverse().findIndex((p) => keep(p[0]));
      if (first < 0) continue;
      start = span.start + pieces[first]!.index;
      end = span.start + pieces[last]!.index + pieces[last]![0].length;
    }
    out.push({ start, end, type: span.type === 'NAME' ? 'NAME' : 'LOCATION' });
  }
  return out;
}

/** Before a name written in lower case: a line or sentence start, or a cue ("Patient", "this is", "seeing", "for"). */
const LOWER_NAME_BEFORE = /(?:[\n.!?:;,][ \t]*|\b(?:patient|pt|this is|i am|i'm|seeing|seen|saw|met|visited|for|with|from|by|to|dear|hi|hello|guarantor|contact)[ \t]*:?[ \t]*)$/i;
/** After a lower-case surname: the end of its clause (punctuation, a bracket, a line break, a form's gap of spaces). */
const LOWER_NAME_AFTER = /^(?:[,;:)\n]|[ \t]*\(|[ \t]{2,}|[ \t]*$)/;
/** How a patient is, written after their name as a surname would be ("Patient xochitl alert, oriented"). */
const PATIENT_STATE = new Set(('alert awake oriented stable unstable afebrile febrile comfortable uncomfortable calm pleasant cooperative confused lethargic drowsy '
  + 'sleeping asleep ambulatory improved improving better worse worsening unchanged tearful anxious agitated nauseous ill sick seen examined '
  + 'admitted discharged transferred resting doing feeling responsive unresponsive intubated sedated verbal nonverbal').split(' '));
/** Words that never make part of a name written in lower case. */
const notNamePart = (word: string) => FUNCTION_WORDS.has(word) || CLINICAL_TERMS.has(word) || TIME_UNITS.has(word) || TIME_WORDS.has(word)
  || CALENDAR_WORDS.has(word) || RELATIONS.has(word) || RELATIVE_STATUS.has(word) || ROLES.has(word) || PATIENT_STATE.has(word);

/**
 * Names written in lower case, where no capital marks them. Before a lower-case name that opens its clause
 * ("… 2021. tariq ben-david, MRN …"), a word that is neither English nor clinical is its given name, though no list
 * knows it. After a lower-case given name that opens its clause or follows a cue ("Patient xochitl brown, SSN",
 * "for seeing patricia brown (DOB", "Patient: dolores rivers   MRN"), one lower-case word that ends the clause is its
 * surname even when it is a word, unless it is a function, clinical, time or relation word.
 */
function lowerCaseNames(text: string, spans: readonly PhiSpan[]): PhiSpan[] {
  const out: PhiSpan[] = [];
  for (const n of spans) {
    if (n.type !== 'NAME' || !/^\p{Ll}/u.test(text[n.start] ?? '')) continue;
    // The start of the text counts as the start of a line; a slice that starts mid-text does not.
    const before = (n.start <= 32 ? '\n' : '') + text.slice(Math.max(0, n.start - 32), n.start);
    const given = /[\n.!?:;,][ \t]*(\p{Ll}[\p{Ll}'’-]{2,}) $/u.exec(before)?.[1]?.replace(/’/g, "'");
    if (given && !ordinary(given) && !notNamePart(given)) out.push({ start: n.start - given.length - 1, end: n.end, type: 'NAME' });
    if (/\s/.test(text.slice(n.start, n.end)) || !LOWER_NAME_BEFORE.test(before)) continue;
    const surname = /^ (\p{Ll}[\p{Ll}'’-]+)/u.exec(text.slice(n.end, n.end + 40));
    if (!surname || notNamePart(surname[1]!.replace(/’/g, "'")) || !LOWER_NAME_AFTER.test(text.slice(n.end + surname[0].length, n.end + surname[0].length + 8))) continue;
    out.push({ start: n.start, end: n.end + surname[0].length, type: 'NAME' });
  }
  return out;
}

/**
 * An age over 89 set off by commas after a name, directly or after a few words of the same clause: "Mrs. Okafor,
 * 94, was admitted", "Met Mirela at bedside, 98, devout". Not one number of a list ("Okafor: levels 92, 95, 97").
 */
const AGE_IN_APPOSITION = /^(?:[ \t]+[\p{L}'’-]+){0,4},[ \t]*(9\d|1[01]\d)(?=[ \t]*(?:[,;)](?![ \t]*\d)|\.(?:\s|$)))/u;
function agesInApposition(text: string, names: PhiSpan[]): PhiSpan[] {
  const out: PhiSpan[] = [];
  for (const n of names) {
    if (n.type !== 'NAME') continue;
    const m = AGE_IN_APPOSITION.exec(text.slice(n.end, n.end + 48));
    if (m) out.push({ start: n.end + m[0].length - m[1]!.length, end: n.end + m[0].length, type: 'AGE' });
  }
  return out;
}

const EMAIL_LOCAL = /[\p{L}\d._%+-]/u;
const EMAIL_DOMAIN = /^[\p{L}\d.-]+\.[a-z]{2,}/iu;

/** E-mail addresses: from each @, the local part back and the domain forward (what /[local]+@[domain]+\.[a-z]{2,}/ matches). */
function findEmails(text: string): PhiSpan[] {
  const out: PhiSpan[] = [];
  for (let at = text.indexOf('@'); at !== -1; at = text.indexOf('@', at + 1)) {
    let start = at;
    while (start > 0 && EMAIL_LOCAL.test(text[start - 1]!)) start--;
    const domain = EMAIL_DOMAIN.exec(text.slice(at + 1, at + 256));
    if (start < at && domain) out.push({ start, end: at + 1 + domain[0].length, type: 'EMAIL' });
  }
  return out;
}

/**
 * Finds possible PHI in free text; spans are sorted, merged and non-overlapping.
 * `extra`: spans another finder already found (a configured NER model) to join the rules' and the tagger's.
 */
export function findPhi(text: string, extra: readonly PhiSpan[] = []): PhiSpan[] {
  const spans: PhiSpan[] = [];
  spans.push(...findEmails(text));
  for (const [pattern, type, keep] of PATTERNS) {
    for (const m of text.matchAll(pattern)) {
      if (keep && !keep(m, text)) continue;
      // A pattern with a `phi` group marks only that group (its cue words are not PHI).
      const group = m.indices?.groups?.phi;
      if (group) spans.push({ start: group[0], end: group[1], type });
      else spans.push({ start: m.index, end: m.index + m[0].trimEnd().length, type });
    }
  }
  for (const c of findCountryNames(text)) spans.push({ ...c, type: 'LOCATION' });
  const names = findNames(text);
  spans.push(...names, ...agesInApposition(text, names));
  spans.push(...findOrganizations(text));
  if (taggerOn) spans.push(...learnedSpans(text));
  spans.push(...lowerCaseNames(text, spans));
  spans.push(...findZips(text, spans));
  spans.push(...extra);
  const plans = healthPlans(text);
  return merge(text, spans.filter((span) => !isClinicalCode(text, span) && !insidePlanName(span, plans)));
}

/**
 * Health plans and payers: their names are not identifiers (the member number is), and words of them ("Cross",
 * "Shield", "Medicare") look like names to the other rules.
 */
const HEALTH_PLAN = /\b(?:Blue Cross(?:[ \t]+(?:and|&)?[ \t]*Blue Shield)?|Blue Shield|Medicare(?: Advantage| Part [ABCD])?|Medicaid|Medi-Cal|Aetna|Cigna|UnitedHealthcare|United Healthcare|UnitedHealth|Humana|Anthem|Kaiser Permanente|TRICARE|Tricare|Molina(?: Healthcare)?|Ambetter|WellCare|Highmark|CareFirst|Dual Eligible)\b/g;
/** Where health plans are named; not after a title ("Dr. Humana" is a person). */
function healthPlans(text: string): Array<[number, number]> {
  return [...text.matchAll(HEALTH_PLAN)]
    .filter((m) => !/\b(?:dr|mr|mrs|ms|mx|miss|prof|rev)\.?\s+$/i.test(text.slice(Math.max(0, m.index - 8), m.index)))
    .map((m) => [m.index, m.index + m[0].length]);
}
const insidePlanName = (span: PhiSpan, plans: Array<[number, number]>): boolean =>
  (span.type === 'NAME' || span.type === 'LOCATION') && plans.some(([start, end]) => span.start >= start && span.end <= end);

const CODE_CUE = /\b(?:loinc|snomed(?:[- ]?ct)?|icd(?:-?1[01]|-?9)?(?:-cm)?|cpt|rxnorm|ndc|hcpcs|atc|code)\s*[:#]?\s*$/i;

/** Terminology codes and clinical scores are content: ICD-10, LOINC 8867-4, SNOMED 38341003, NEWS2. */
function isClinicalCode(text: string, span: PhiSpan): boolean {
  if (span.type !== 'ID' && span.type !== 'ACCOUNT' && span.type !== 'PHONE') return false;
  const value = text.slice(span.start, span.end);
  return CLINICAL_TERMS.has(value.toLowerCase()) || CODE_CUE.test(text.slice(Math.max(0, span.start - 16), span.start));
}

const PHONE_CUE = /(?:phone|tel|telephone|mobile|cell|fax|desk|office|home|work|call|text|reach|contact|number|no\.|#|at|:)\s*$/i;

/**
 * A digit run is a phone number when it has 7–15 digits and either a shape
 * only phone numbers have (+, parentheses, dashes or dots between groups,
 * 3-3-4) or a cue before it ("Mobile:", "call me at"). Space-separated
 * numbers without a cue stay: they are more often vitals or doses.
 */
function plausiblePhone(s: string, before: string): boolean {
  const digits = s.replace(/\D/g, '').length;
  if (digits < 7 || digits > 15) return false;
  if (/^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}/.test(s) || /^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$/.test(s)) return false; // dates
  if (/^\+|^00|\(\d+\)|\d-\d|\d\.\d{2,}\.\d|\b\d{3}[\s.-]\d{3}[\s.-]\d{4}\b/.test(s)) return true;
  // International and local shapes: a leading trunk zero, three groups of three or more, 3-4 or 4-4.
  if (/^0\d/.test(s) && digits >= 8) return true;
  if (/^\d{3,5} \d{3,4} \d{3,4}$/.test(s) || /^\d{3,4} \d{4}$/.test(s)) return true;
  return PHONE_CUE.test(before);
}

interface Token { text: string; lower: string; start: number; end: number; capital: boolean }

type Why = 'cue' | 'first' | 'unknown';

/**
 * Days and months, which the word list leaves out as proper nouns: "on Tuesday" names no one (dates are found as
 * dates). Months that are also given names (April, May, June, August) and short forms that are names (Jan, Sun)
 * are not on it.
 */
const CALENDAR_WORDS = new Set(('monday tuesday wednesday thursday friday saturday sunday tues thurs '
  + 'january february march july september october november december').split(' '));

/** A first name, unless it is a day or a month ("Tuesday", "June" are first names in the name lists). */
const firstName = (lower: string): boolean => isFirstName(lower) && !CALENDAR_WORDS.has(lower);

/** A word's parts (I've → i, ve; E-mail → e, mail) are all ordinary words. */
const ordinaryCache = new Map<string, boolean>();
function ordinary(lower: string): boolean {
  let known = ordinaryCache.get(lower);
  if (known === undefined) {
    const parts = lower.replace(/'s$/, '').split(/['-]/).filter(Boolean);
    known = parts.length > 0 && parts.every((p) => FUNCTION_WORDS.has(p) || isCommonWord(p) || CLINICAL_TERMS.has(p) || CALENDAR_WORDS.has(p) || p.length === 1 || /^(?:ve|ll|re|m|d|t|s)$/.test(p));
    if (ordinaryCache.size >= 50_000) ordinaryCache.clear();
    ordinaryCache.set(lower, known);
  }
  return known;
}

/** The 40 characters before a position: what cue patterns ending in `$` look at. */
const textBefore = (text: string, at: number) => text.slice(Math.max(0, at - 40), at);

/** Starts with an upper-case letter (ASCII decided without a regular expression: most tokens are). */
function startsCapital(word: string): boolean {
  const c = word.charCodeAt(0);
  if (c < 128) return c >= 65 && c <= 90;
  return /^\p{Lu}/u.test(word);
}

const isInitial = (t: Token) => /^\p{Lu}$/u.test(t.text);
/** Lower-case particles inside names and street names: Rua do Arenque, Willemine ten Pas, Villafranca del Cid. */
const PARTICLE = /^(?:da|das|de|del|della|den|der|di|do|dos|du|la|le|ten|ter|van|von|y|bin|ibn|al|el|zu)$/;
/** A dose after a number: "Zestril 20 mg" is a drug and its dose, not a street and its number. */
const DOSE_UNIT_AFTER = /^\s*(?:mg|mcg|µg|ug|g|kg|ml|mL|l|units?|iu|meq|mmol|%|tabs?|caps?|puffs?|drops?)\b/i;
const isHouseNumber = (t: Token) => /^\d{1,5}[A-Za-z]?$/.test(t.text);

/** Abbreviations written with a full stop inside a name: "St. John", "Mt. Sinai", "Jr.". */
const ABBREVIATED = new Set(['st', 'ste', 'mt', 'ft', 'jr', 'sr']);

/** True when token `i` follows a lower-case word on its line: capitalised there, it is a proper noun, not a sentence's first word. */
function midSentence(tokens: Token[], i: number, text: string): boolean {
  const before = tokens[i - 1];
  return before !== undefined && !before.capital && /^[\p{Ll}]/u.test(before.text) && /^ {1,2}$/.test(text.slice(before.end, tokens[i]!.start));
}

/** Names and places: cues, a first-name lexicon, and capitalised words that are neither common nor clinical. */
function findNames(text: string): PhiSpan[] {
  const tokens: Token[] = [];
  const add = (word: string, start: number) => {
    const raw = word.endsWith('-') ? word.replace(/-+$/, '') : word;
    const lower = raw.toLowerCase();
    tokens.push({ text: raw, lower: lower.includes('’') ? lower.replace(/’/g, "'") : lower, start, end: start + raw.length, capital: startsCapital(raw) });
  };
  if (isAscii(text)) {
    for (const { start, end } of nameTokensAscii(text)) add(text.slice(start, end), start);
  } else {
    TOKEN.lastIndex = 0;
    for (let m = TOKEN.exec(text); m; m = TOKEN.exec(text)) add(m[0], m.index);
  }
  // Only spaces (no line breaks) join the words of one name.
  const joined = (x: Token, y: Token) => /^(?: {1,2}|\. | ?- ?)$/.test(text.slice(x.end, y.start));
  const why = new Array<Why | undefined>(tokens.length).fill(undefined);
  const kind = new Array<PhiType>(tokens.length).fill('NAME');

  tokens.forEach((t, i) => {
    const prev = tokens[i - 1];
    if (/\d/.test(t.text)) return;
    // After a title, a surname even when it also names a sign or a score (Dr. Murphy, Dr. Wells).
    if (prev && TITLES.has(prev.lower) && t.capital) { why[i] = 'cue'; return; }
    if (CLINICAL_TERMS.has(t.lower) || (t.lower.endsWith("'s") && CLINICAL_TERMS.has(t.lower.slice(0, -2)))) return;
    // After a care role ("RN Baker", "per pharmacist White"): a capitalised word that is not a kind of document or duty.
    if (prev && ROLES.has(prev.lower) && t.capital && !ROLE_OBJECTS.has(t.lower) && !TITLES.has(t.lower)) { why[i] = 'cue'; return; }
    // After a relation word ("spoke w/ dtr susan"): a name even in lower case, unless it is a common word.
    if (prev && RELATIONS.has(prev.lower) && /^[\p{L}'’-]{2,}$/u.test(t.text) && (firstName(t.lower) || t.lower.split('-').some(firstName) || !ordinary(t.lower))) { why[i] = 'cue'; return; }
    // Capitalised right after a relation word ("son Rangi", "wife Grace", "his niece, Hamza,"): a name even when it is
    // also a word (Grace, Rose, Juniper), unless it says how the relative is ("Mother Deceased", "Son Notified").
    if (prev && RELATIONS.has(prev.lower) && t.capital && /^\p{Lu}[\p{Ll}'’-]+$/u.test(t.text) && /^(?: |, )$/.test(text.slice(prev.end, t.start))
      && !FUNCTION_WORDS.has(t.lower) && !TITLES.has(t.lower) && !RELATIONS.has(t.lower) && !RELATIVE_STATUS.has(t.lower)) { why[i] = 'cue'; return; }
    // The patient by name, then what they say or do ("Pt Yaw states", "Patient Wen reports"): a name even when it is a word.
    const next = tokens[i + 1];
    if (prev && (prev.lower === 'pt' || prev.lower === 'patient') && next && PATIENT_VERBS.has(next.lower) && /^\p{Lu}\p{Ll}+$/u.test(t.text)
      && /^ $/.test(text.slice(prev.end, t.start)) && /^ $/.test(text.slice(t.end, next.start)) && !ROLE_OBJECTS.has(t.lower) && !GENERIC_PLACE_WORDS.has(t.lower)
      && !TITLES.has(t.lower)) { why[i] = 'cue'; return; }
    // Named outright ("her maiden name is Key", "my name is borna", "goes by Pip", "First name: Will"): a name whatever word
    // it is, a function word only when capitalised.
    const functionWord = FUNCTION_WORDS.has(t.lower);
    if ((t.capital || (!functionWord && !ordinary(t.lower))) && /^[\p{L}'’-]{2,}$/u.test(t.text)
      && NAMING_CUE_BEFORE.test(textBefore(text, t.start)) && !NO_ONE.test(t.text)) { why[i] = 'cue'; return; }
    if (functionWord) return;
    // Met face to face ("Chaplain visit. Met Hamza at bedside", "visited Juniper today"): a capitalised word is a name even
    // when it is also a word, unless it is a service, a role or a relation ("Saw Cardiology", "Met Family at bedside").
    if (prev && MEETING_VERBS.has(prev.lower) && text.slice(prev.end, t.start) === ' ' && /^\p{Lu}\p{Ll}[\p{Ll}'’-]*$/u.test(t.text)
      && !TITLES.has(t.lower) && !ROLES.has(t.lower) && !ROLE_OBJECTS.has(t.lower) && !RELATIONS.has(t.lower) && !GENERIC_PLACE_WORDS.has(t.lower)
      && !CALENDAR_WORDS.has(t.lower) && !TIME_WORDS.has(t.lower) && !INSTITUTION_WORD.test(t.text) && AFTER_MET_PERSON.test(text.slice(t.end, t.end + 12))) { why[i] = 'cue'; return; }
    if (!t.capital) {
      // Lower-case names ("patricia desrosiers"): a first name that is not also an ordinary word.
      if (firstName(t.lower) && !ordinary(t.lower)) why[i] = 'first';
      return;
    }
    if (/^[A-Z]{2,5}$/.test(t.text)) return; // abbreviations: COPD, EKG, CO (states are handled with addresses)
    // A verb of greeting or meeting that is also a given name ("Saw Hamza in clinic", "Will"): the verb, where it opens a sentence.
    if (firstName(t.lower) && GREETINGS.has(t.lower) && (!prev || /[\n.!?:]\s*$/.test(text.slice(prev.end, t.start)))) return;
    if (firstName(t.lower)) {
      // At the start of a line (a heading: "Case management") a first name that is also a word needs a surname after it.
      const startOfSentence = !prev || /\n/.test(text.slice(prev.end, t.start));
      const next = tokens[i + 1];
      // Unless it labels who speaks ("John: You saved my life!").
      if (startOfSentence && ordinary(t.lower) && !(next?.capital && joined(t, next)) && text[t.end] !== ':') return;
      why[i] = 'first';
      return;
    }
    if (t.text.length > 1 && !ordinary(t.lower)) {
      why[i] = 'unknown';
      if (LOCATION_CUE_BEFORE.test(textBefore(text, t.start))) kind[i] = 'LOCATION';
      return;
    }
    if (i + 1 < tokens.length && tokens[i + 1]!.capital && NAME_CUE_BEFORE.test(textBefore(text, t.start))) why[i] = 'cue';
  });

  const out: PhiSpan[] = [];
  for (let i = 0; i < tokens.length; i++) {
    if (!why[i]) continue;
    let a = i, b = i;
    let personLike = why[i] === 'first' || why[i] === 'cue';
    // Left: initials, other flagged words, short place particles (San, Los, El, St), and one given name
    // in front of an unknown surname (Maha Cazares, Tosh Olsen).
    let given = 0;
    while (a > 0 && joined(tokens[a - 1]!, tokens[a]!) && tokens[a - 1]!.capital && !FUNCTION_WORDS.has(tokens[a - 1]!.lower) && !TITLES.has(tokens[a - 1]!.lower) && !RELATIONS.has(tokens[a - 1]!.lower)
      && !GREETINGS.has(tokens[a - 1]!.lower)
      && !CLINICAL_TERMS.has(tokens[a - 1]!.lower) && !/^[A-Z]{2,5}$/.test(tokens[a - 1]!.text)) {
      if (why[a - 1] || isInitial(tokens[a - 1]!) || tokens[a - 1]!.text.length <= 3) a--;
      else if (why[a] === 'unknown' && given++ === 0) a--;
      // Mid-sentence, a capitalised word right before a given name is a name too: "we need to add Lewis Forbes".
      else if (why[a] === 'first' && given++ === 0 && midSentence(tokens, a - 1, text)) a--;
      else break;
    }
    // A particle, and the initial or given name before it: "G. de Vries", "Ludwig van Beethoven".
    const particle = tokens[a - 1], beforeParticle = tokens[a - 2];
    if (particle && beforeParticle && PARTICLE.test(particle.text) && joined(particle, tokens[a]!) && joined(beforeParticle, particle)
      && beforeParticle.capital && (isInitial(beforeParticle) || firstName(beforeParticle.lower))) a -= 2;
    // Right: after a first name or a cue, up to two more capitalised words (surnames that are also words: Smith);
    // otherwise only flagged words and initials.
    let extra = 0;
    while (b + 1 < tokens.length && joined(tokens[b]!, tokens[b + 1]!) && !/'s$/.test(tokens[b]!.lower)) {
      const next = tokens[b + 1]!;
      // A full stop after a word ends the sentence ("Last name: Key. First name: …"); after an initial or "St." it does not.
      if (next.start === tokens[b]!.end + 2 && text.charCodeAt(tokens[b]!.end) === 46 && !isInitial(tokens[b]!) && !ABBREVIATED.has(tokens[b]!.lower)) break;
      const afterNext = tokens[b + 2];
      // A particle joins with the capitalised word after it: ten Pas, do Arenque.
      if (PARTICLE.test(next.text) && afterNext?.capital && joined(next, afterNext)) { b += 2; continue; }
      if (!next.capital || CLINICAL_TERMS.has(next.lower)) break;
      if (STREET_WORD.test(next.text)) { b++; continue; } // street words: Kishiev Squares, Zezig Streets
      if (isInitial(next)) { b++; continue; } // initials always join, even "I."
      if (FUNCTION_WORDS.has(next.lower)) break;
      if (why[b + 1]) personLike ||= why[b + 1] !== 'unknown';
      else if (personLike && extra < 2) extra++;
      // An unknown given name (and its initials) and one capitalised word after them that ends the run: a surname
      // that is also a word (Tariq Carpenter, Orla S. Carpenter), where the first-name list does not know the given name.
      else if (why[i] === 'unknown' && kind[i] === 'NAME' && extra === 0 && tokens.slice(i + 1, b + 1).every(isInitial) && !(afterNext?.capital && joined(next, afterNext))) extra++;
      else break;
      b++;
    }
    // Lower-case names continue with a lower-case surname that is not a word.
    while (b + 1 < tokens.length && !tokens[b]!.capital && joined(tokens[b]!, tokens[b + 1]!) && !tokens[b + 1]!.capital && /^\p{L}{2,}$/u.test(tokens[b + 1]!.text) && !ordinary(tokens[b + 1]!.lower)) b++;
    let start = tokens[a]!.start, end = tokens[b]!.end;
    let type = kind[i]!;
    // International addresses: a street name with its number (Puruntie 82, Via Franscini 71, 159 Eleftheriou Venizelou).
    const after = tokens[b + 1], before = tokens[a - 1];
    if (after && isHouseNumber(after) && /^ $/.test(text.slice(end, after.start)) && !DOSE_UNIT_AFTER.test(text.slice(after.end, after.end + 8))) { end = after.end; type = 'ADDRESS'; }
    if (before && isHouseNumber(before) && /^ $/.test(text.slice(before.end, start))) { start = before.start; type = 'ADDRESS'; }
    if (/^\.(?=\s|$)/.test(text.slice(end)) && tokens[b]!.text.length === 1) end += 1; // trailing initial "J."
    out.push({ start, end, type });
    i = b;
  }
  return [...out, ...coordinated(text, tokens, out), ...findCities(text, tokens)];
}

/** Cues before a town's name. Narrower than LOCATION_CUE_BEFORE: "at" and "to" come before too many other things. */
const CITY_CUE_BEFORE = /\b(?:in|from|near|outside(?: of)?|lives in|resides in|born in|moved (?:to|from)|city of|town of|visiting|visits|drives? in from|drove (?:in )?from|(?:flew|flies|flying|fly|travel(?:l)?ed|travel(?:l)?ing|relocated|returned|went|drove|came|driving) (?:back |home )?(?:to|from))\s+$/i;

/** A street address just before: "8317 Bayberry St., Flagstaff", "9957 Foxglove Boulevard in Flagstaff". */
const ADDRESS_BEFORE = new RegExp(`\\b\\d{1,6}[A-Za-z]?\\s+(?:[\\p{L}'’.-]+\\s+){1,4}${STREET},?\\s+(?:in\\s+)?$`, 'iu');
/** What may follow a town's name to end it: the end of the clause, or a word that starts the next phrase. */
const CLAUSE_ENDS = /^(?:\s*$|[,.;:!?)"'’\n]|\s+(?:with|and|for|since|where|until|to|on|at|in|from|but|or|who|which|when|last|this|next|after|before)\b)/;

/**
 * A one-word town that is also an English word, by its context alone: after a street address, or after a place cue
 * whose preposition is in lower case ("attends services in Flagstaff.", "Lives in Yonkers.", "presents from home in
 * Flagstaff with…"),
 * when its clause ends there. Written with a capital mid-sentence, "Flagstaff" or "Mobile" is a name, not the word;
 * "in Normal Sinus Rhythm" goes on with more capitalised words, and "In Reading" starts a sentence.
 */
function placeByContext(text: string, before: string, end: number): boolean {
  if (ADDRESS_BEFORE.test(before)) return true;
  const cue = CITY_CUE_BEFORE.exec(before);
  // The cue's last word in lower case: "Lives in Yonkers." and "attends services in Flagstaff." count, "In Reading," does not.
  return cue !== null && /(?:^|\s)\p{Ll}+\s+$/u.test(cue[0]) && CLAUSE_ENDS.test(text.slice(end, end + 12));
}

/**
 * US cities and towns from the ZIP code list, for the names the other rules let pass because they are English
 * words: a known town followed by its state ("Ames, Iowa", "Mobile, AL"), or a town of two words or more after a
 * place cue ("lives in Garden Grove", "from Toms River"). A one-word town that is also an English word needs its
 * state: "in Reading" may be a hobby.
 */
function findCities(text: string, tokens: Token[]): PhiSpan[] {
  const out: PhiSpan[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (!t.capital || GENERIC_PLACE_WORDS.has(t.lower) || CALENDAR_WORDS.has(t.lower)) continue;
    const end = usCityAt(text, t.start, t.lower);
    if (end === undefined) continue;
    const multiWord = end > t.end;
    const before = textBefore(text, t.start);
    if (stateFollows(text, end) || (multiWord && CITY_CUE_BEFORE.test(before)) || (!multiWord && placeByContext(text, before, end))) {
      out.push({ start: t.start, end, type: 'LOCATION' });
      while (i + 1 < tokens.length && tokens[i + 1]!.start < end) i++;
    }
  }
  return out;
}

const EPONYM_HEAD = /^(?:sign|signs|disease|syndrome|catheter|scale|score|test|maneuver|manoeuvre|reflex|triad|criteria|classification|procedure|operation|law|palsy|phenomenon|stain)$/i;

const CONNECTORS = [', and ', ' and ', ', ', ' & ', ', or ', ' or '];

/** The token whose start (or end) is exactly `at`, by binary search (tokens are in text order and do not overlap). */
function tokenAt(tokens: Token[], at: number, edge: 'start' | 'end'): number | undefined {
  let lo = 0, hi = tokens.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = tokens[mid]![edge];
    if (v === at) return mid;
    if (v < at) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/**
 * "Marrero and Murphy", "Monjeau, Graves and Reed": capitalised words coordinated with a found name are names too.
 * Looked up from each name's two ends (a word starting or ending one connector away), not by pairing every word with every name.
 */
function coordinated(text: string, tokens: Token[], found: PhiSpan[]): PhiSpan[] {
  let sources = found.filter((s) => s.type === 'NAME');
  const taken = new Set<number>();
  const out: PhiSpan[] = [];
  // A list goes on from each newly linked word too ("Gerste, Johnson and Johnson"): each word joins at most once.
  while (sources.length > 0) {
    // Each linked word, and whether the name it is linked to is written in capitals ("OSCAR, JOHNNY").
    const linked = new Map<number, boolean>();
    for (const s of sources) {
      // The name's word on each side of the connector: its first word links leftwards, its last word rightwards.
      const value = text.slice(s.start, s.end);
      const firstInCapitals = /^[A-Z]{2,}(?![\p{L}])/u.test(value), lastInCapitals = /(?<![\p{L}])[A-Z]{2,}$/u.test(value);
      for (const c of CONNECTORS) {
        if (text.startsWith(c, s.end)) { const i = tokenAt(tokens, s.end + c.length, 'start'); if (i !== undefined) linked.set(i, lastInCapitals || (linked.get(i) ?? false)); }
        if (s.start >= c.length && text.startsWith(c, s.start - c.length)) { const i = tokenAt(tokens, s.start - c.length, 'end'); if (i !== undefined) linked.set(i, firstInCapitals || (linked.get(i) ?? false)); }
      }
    }
    const added: PhiSpan[] = [];
    for (const [i, capitals] of [...linked].sort((a, b) => a[0] - b[0])) {
      const t = tokens[i]!;
      // A short word in capitals is an abbreviation (COPD, EKG), unless the name beside it is in capitals too
      // ("OSCAR, JOHNNY", "JONES, MARY"), and it is not a clinical abbreviation of four letters or fewer.
      const abbreviation = /^[A-Z]{2,5}$/.test(t.text) && !(capitals && !(t.text.length <= 4 && CLINICAL_TERMS.has(t.lower)));
      if (taken.has(i) || !t.capital || FUNCTION_WORDS.has(t.lower) || GENERIC_PLACE_WORDS.has(t.lower) || abbreviation) continue;
      if (tokens[i + 1] && EPONYM_HEAD.test(tokens[i + 1]!.text)) continue;
      taken.add(i);
      added.push({ start: t.start, end: t.end, type: 'NAME' });
    }
    out.push(...added);
    sources = added;
  }
  return out;
}

/** ZIP codes where they look like ZIP codes: after a state or place, or labelled. */
function findZips(text: string, found: PhiSpan[]): PhiSpan[] {
  const out: PhiSpan[] = [];
  // US ZIP (+4) and the common foreign postcode shapes (1234, 12-345, 123 45).
  for (const m of text.matchAll(/(?<![\d-])(\d{5}(?:-\d{4})?|\d{4}|\d{2}-\d{3}|\d{3} \d{2})(?![\d-])/g)) {
    const before = text.slice(Math.max(0, m.index - 30), m.index);
    const state = /\b([A-Z]{2})\.?,?\s*$/.exec(before);
    // Right after a place or address, with nothing but spaces, commas and line breaks between.
    // (An address block may put a region code, or an empty field such as "nan", on its own line between them.)
    const near = found.some((s) => (s.type === 'ADDRESS' || s.type === 'LOCATION' || s.type === 'NAME') && s.end <= m.index && /^[\s,]{0,8}(?:(?:[A-Z]{2}|nan)[\s,]{1,8})?$/.test(text.slice(s.end, m.index)));
    const usShape = /^\d{5}(?:-\d{4})?$/.test(m[0]);
    if ((usShape && state && US_STATES.has(state[1]!)) || /\b(?:zip|postcode|postal code)(?: code)?:?\s*$/i.test(before) || near) out.push({ start: m.index, end: m.index + m[0].length, type: 'ZIP' });
  }
  // A state is not a Safe Harbor identifier (only units smaller than a state are): state codes stay.
  return out;
}

const PRIORITY: PhiType[] = ['SSN', 'EMAIL', 'URL', 'IP', 'ACCOUNT', 'PHONE', 'DATE', 'AGE', 'ID', 'ADDRESS', 'ZIP', 'NAME', 'LOCATION'];

/** Overlapping or touching spans become one, typed by the most specific kind; so do two names one space apart. */
function merge(text: string, spans: PhiSpan[]): PhiSpan[] {
  const sorted = spans.filter((s) => s.end > s.start).sort((a, b) => a.start - b.start || b.end - a.end);
  const out: PhiSpan[] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    const sameName = last && last.type === 'NAME' && s.type === 'NAME' && /^ $/.test(text.slice(last.end, s.start));
    if (last && (s.start <= last.end || sameName)) {
      last.end = Math.max(last.end, s.end);
      if (PRIORITY.indexOf(s.type) < PRIORITY.indexOf(last.type)) last.type = s.type;
    } else {
      out.push({ ...s });
    }
  }
  return out;
}

/** Replaces every span with a typed placeholder such as [NAME] or [DATE]. */
export function redactText(text: string, extra: readonly PhiSpan[] = []): { text: string; spans: PhiSpan[] } {
  const spans = findPhi(text, extra);
  let out = '';
  let at = 0;
  for (const s of spans) {
    out += `${text.slice(at, s.start)}[${s.type}]`;
    at = s.end;
  }
  return { text: out + text.slice(at), spans };
}
