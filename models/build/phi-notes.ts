/**
 * Synthetic clinical notes with gold PHI spans, for training the PHI token
 * tagger and for measuring the redactor on text its rules were not written
 * from. Two disjoint families: `train` (templates and name pools the tagger
 * learns from, and rules may be tuned on) and `heldout` (other templates,
 * other styles, other names: only ever measured). Everything is invented;
 * names come from pools of many cultures, written here for the generator.
 *
 * Deterministic: the same family, count and seed give the same notes.
 */

import { mulberry32 } from '../../src/seeded-random.js';

export interface GoldSpan { start: number; end: number; type: string }
export interface LabelledNote { text: string; spans: GoldSpan[] }
export type Family = 'train' | 'heldout';


interface Pools {
  given: string[];
  family: string[];
  cities: string[];
  streets: string[];
  orgs: string[];
  employers: string[];
}

/** Name and place pools; the held-out family draws from different ones. */
const POOLS: Record<Family, Pools> = {
  train: {
    given: ['Amara', 'Bogdan', 'Chen', 'Dolores', 'Emeka', 'Farida', 'Giovanni', 'Hiroshi', 'Ingrid', 'Jamal', 'Kateryna', 'Luis', 'Mei', 'Nnamdi', 'Olga', 'Priya', 'Quentin', 'Rashid',
      'Siobhan', 'Tomasz', 'Ulla', 'Valentina', 'Wen', 'Xochitl', 'Yusuf', 'Zofia', 'Aarav', 'Beatriz', 'Dmitri', 'Esperanza', 'Fatima', 'Gunnar', 'Hana', 'Ikaika', 'Joaquin', 'Keiko',
      'Lakshmi', 'Marisol', 'Nikolai', 'Oluwaseun', 'Pilar', 'Rohan', 'Sakura', 'Thandiwe', 'Vikram', 'Wiremu', 'Yaw', 'Zainab', 'Mary', 'John', 'Robert', 'Linda', 'James', 'Patricia'],
    family: ['Okonkwo', 'Nakamura', 'Kowalczyk', 'Haddad', 'Fernandes', 'Lindqvist', 'Abernathy', 'Vasquez', 'Oyelaran', 'Tanaka', 'Petrenko', 'Achterberg', 'Mbeki', 'Castellanos',
      'Nguyen', 'Kaur', 'Goldberg', 'Ibrahim', 'Moreau', 'Rossi', 'Schmidt', 'Yilmaz', 'Park', 'Sato', 'Dubois', 'MacLeod', "O'Sullivan", 'van der Berg', 'de la Cruz', 'Al-Farsi',
      'Mahlangu', 'Quispe', 'Tupou', 'Haraldsen', 'Ferreira', 'Baptiste', 'Whitfield', 'Brown', 'Miller', 'Young', 'King', 'Hill', 'Stone', 'Rivers'],
    cities: ['Fresno', 'Duluth', 'Scranton', 'Tacoma', 'Boise', 'Wichita', 'Toledo', 'Macon', 'Lubbock', 'Spokane', 'Hartford', 'Eugene', 'Pueblo', 'Savannah', 'Yonkers', 'Odessa'],
    streets: ['Maple', 'Birchwood', 'Lakeview', 'Cedar Hollow', 'Riverside', 'Juniper', 'Old Mill', 'Sycamore', 'Harbor', 'Prospect', 'Elm', 'Chestnut Ridge'],
    orgs: ['Mercy General Hospital', "St. Brigid's Medical Center", 'Lakeshore Community Hospital', 'Pinecrest Nursing Home', 'Valley Oaks Dialysis Center', 'Cedar Grove Rehabilitation Center',
      'Harmon County Hospital', 'Northgate Family Clinic', 'Sunrise Assisted Living', 'Riverbend Hospice'],
    employers: ['Halvorsen Freight', 'Dunmore Paper Co.', 'Brightline Logistics', 'Kessler Foods', 'Apex Tool Works', 'Lincoln Elementary School', 'Greenfield Public Library', 'Tri-County Transit'],
  },
  heldout: {
    given: ['Adaeze', 'Björn', 'Catalina', 'Deepika', 'Efua', 'Florin', 'Gulnara', 'Hamza', 'Itzel', 'Jörg', 'Kwame', 'Leilani', 'Mirela', 'Nasrin', 'Oksana', 'Pedro', 'Raúl', 'Svetlana',
      'Tariq', 'Uzma', 'Viliami', 'Wanjiru', 'Xin', 'Yael', 'Zeynep', 'Anh', 'Bongani', 'Cyrus', 'Dagny', 'Ebele', 'Femi', 'Guadalupe', 'Hyun-woo', 'Ilse', 'Juniper', 'Kaveh', 'Lorenzo',
      'Mateus', 'Noor', 'Orla', 'Paora', 'Rangi', 'Sione', 'Tove', 'Ugo', 'Wilhelmina', 'Yoshiko', 'Zuri', 'Barbara', 'Michael', 'Susan', 'William'],
    family: ['Adeyemi', 'Bergström', 'Chukwu', 'Dragomir', 'Esposito', 'Fitzgerald', 'Gonçalves', 'Hashemi', 'Iwasaki', 'Jankowski', 'Kiplagat', 'Lefebvre', 'Mwangi', 'Novak',
      'Ortega', 'Papadopoulos', 'Rahman', 'Sandoval', 'Takahashi', 'Uwimana', 'Varga', 'Wójcik', 'Xiong', 'Yamamoto', 'Zimmermann', 'Ben-David', 'de Vries', 'McAllister',
      'Ó Briain', 'Tuilagi', 'Kealoha', 'Begay', 'Nakai', 'Ramírez', 'Lund', 'Taylor', 'Green', 'Carpenter', 'Field'],
    cities: ['Muncie', 'Bakersfield', 'Flagstaff', 'Erie', 'Gadsden', 'Kalamazoo', 'Laredo', 'Missoula', 'Pawtucket', 'Roanoke', 'Sheboygan', 'Tuscaloosa', 'Waco', 'Yakima'],
    streets: ['Wren', 'Quarry', 'Foxglove', 'Timber Creek', 'Bayberry', 'Kingfisher', 'Orchard Hill', 'Ironwood', 'Marigold', 'Saddleback'],
    orgs: ['Good Samaritan Regional Hospital', 'Our Lady of Lourdes Hospital', 'Bayside Behavioral Health Center', 'Willow Creek Care Home', 'Eastfield Veterans Home',
      'Holloway Surgical Institute', 'Brookside Medical Group', 'Meadowlark Senior Living'],
    employers: ['Calloway Plumbing', 'Redstone Mining Corp.', 'Bluewater Fisheries', 'Marchetti Construction', 'Jefferson High School', 'Summit Credit Union', 'Orion Data Systems'],
  },
};

const STREET_SUFFIX = ['Street', 'St.', 'Avenue', 'Ave', 'Road', 'Rd.', 'Lane', 'Drive', 'Court', 'Way', 'Terrace', 'Boulevard', 'Place'];
const STATES = ['CA', 'MN', 'PA', 'WA', 'ID', 'KS', 'OH', 'GA', 'TX', 'CT', 'OR', 'CO', 'IN', 'MI', 'MT', 'RI', 'VA', 'WI', 'AL'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const WORD_AGES = ['ninety', 'ninety-one', 'ninety-two', 'ninety-three', 'ninety-four', 'ninety-five', 'ninety-six', 'ninety-seven', 'ninety-eight', 'ninety-nine', 'one hundred'];

type Slot = (r: Rng) => string;
interface Rng { next(): number; pick<T>(xs: readonly T[]): T; int(lo: number, hi: number): number; digits(n: number): string }

/** The slot kinds a template may use, each with the gold type its text gets (undefined: not PHI). */
function slots(pools: Pools): Record<string, { type?: string; make: Slot }> {
  const person = (r: Rng) => {
    const g = r.pick(pools.given), f = r.pick(pools.family);
    switch (r.int(0, 6)) {
      case 0: return `${f}, ${g}`;
      case 1: return `${g} ${String.fromCharCode(65 + r.int(0, 25))}. ${f}`;
      case 2: return `${g.toLowerCase()} ${f.toLowerCase()}`;
      case 3: return `${g[0]}. ${f}`;
      default: return `${g} ${f}`;
    }
  };
  const date = (r: Rng) => {
    const y = r.int(2015, 2026), m = r.int(1, 12), d = r.int(1, 28);
    const p2 = (n: number) => String(n).padStart(2, '0');
    switch (r.int(0, 7)) {
      case 0: return `${m}/${d}/${y}`;
      case 1: return `${y}-${p2(m)}-${p2(d)}`;
      case 2: return `${MONTHS[m - 1]} ${d}, ${y}`;
      case 3: return `${d} ${MONTHS[m - 1]!.slice(0, 3)} ${y}`;
      case 4: return `${m}/${d}`;
      case 5: return `${p2(d)}.${p2(m)}.${y}`;
      case 6: return `${MONTHS[m - 1]} ${d}`;
      default: return `${d}${['st', 'nd', 'rd', 'th'][Math.min(3, (d % 10) - 1 < 0 ? 3 : (d % 10) - 1)]} of ${MONTHS[m - 1]}`;
    }
  };
  return {
    PATIENT: { type: 'NAME', make: person },
    CLINICIAN: { type: 'NAME', make: (r) => `${r.pick(pools.given)} ${r.pick(pools.family)}` },
    DRLAST: { type: 'NAME', make: (r) => r.pick(pools.family) },
    RELATIVE: { type: 'NAME', make: (r) => (r.next() < 0.5 ? r.pick(pools.given) : `${r.pick(pools.given)} ${r.pick(pools.family)}`) },
    GIVEN: { type: 'NAME', make: (r) => r.pick(pools.given) },
    DATE: { type: 'DATE', make: date },
    AGE90: {
      type: 'AGE_OVER_89',
      make: (r) => {
        const n = r.int(90, 104);
        switch (r.int(0, 5)) {
          case 0: return `${n}-year-old`;
          case 1: return `${n} y/o`;
          case 2: return `${n}yo`;
          case 3: return `${r.pick(WORD_AGES)}-year-old`;
          case 4: return `${n} years old`;
          default: return `${n}`;
        }
      },
    },
    AGE: { make: (r) => String(r.int(18, 85)) },
    PHONE: { type: 'PHONE', make: (r) => r.pick([`(${r.digits(3)}) ${r.digits(3)}-${r.digits(4)}`, `${r.digits(3)}-${r.digits(3)}-${r.digits(4)}`, `${r.digits(3)}.${r.digits(3)}.${r.digits(4)}`, `+1 ${r.digits(3)} ${r.digits(3)} ${r.digits(4)}`]) },
    EMAIL: { type: 'EMAIL', make: (r) => `${r.pick(pools.given).toLowerCase()}.${r.pick(pools.family).toLowerCase().replace(/[^a-z]/g, '')}${r.int(1, 99)}@${r.pick(['gmail.com', 'outlook.com', 'yahoo.com', 'mail.net'])}` },
    MRN: { type: 'ID', make: (r) => r.pick([r.digits(7), `${String.fromCharCode(65 + r.int(0, 25))}${r.digits(8)}`, `${r.digits(3)}-${r.digits(2)}-${r.digits(3)}`]) },
    SSN: { type: 'SSN', make: (r) => `${r.digits(3)}-${r.digits(2)}-${r.digits(4)}` },
    PLAN: { type: 'ID', make: (r) => r.pick([`${String.fromCharCode(65 + r.int(0, 25))}${String.fromCharCode(65 + r.int(0, 25))}${String.fromCharCode(65 + r.int(0, 25))}${r.digits(9)}`, `${r.digits(9)}${String.fromCharCode(65 + r.int(0, 25))}`, `W${r.digits(8)}`]) },
    ACCOUNT: { type: 'ID', make: (r) => r.digits(r.int(8, 12)) },
    PLATE: { type: 'ID', make: (r) => `${r.int(1, 9)}${String.fromCharCode(65 + r.int(0, 25))}${String.fromCharCode(65 + r.int(0, 25))}${String.fromCharCode(65 + r.int(0, 25))}${r.digits(3)}` },
    SERIAL: { type: 'ID', make: (r) => `${String.fromCharCode(65 + r.int(0, 25))}${String.fromCharCode(65 + r.int(0, 25))}${r.digits(2)}-${r.digits(5)}` },
    IP: { type: 'IP', make: (r) => `10.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(1, 254)}` },
    STREET: { type: 'ADDRESS', make: (r) => `${r.int(2, 9999)} ${r.pick(pools.streets)} ${r.pick(STREET_SUFFIX)}` },
    CITY: { type: 'LOCATION', make: (r) => r.pick(pools.cities) },
    STATE: { make: (r) => r.pick(STATES) },
    ZIP: { type: 'ZIP', make: (r) => r.digits(5) },
    ORG: { type: 'LOCATION', make: (r) => r.pick(pools.orgs) },
    EMPLOYER: { type: 'LOCATION', make: (r) => r.pick(pools.employers) },
  };
}

/** Templates: {SLOT} is filled by its generator; the rest is text that is not PHI. */
const TEMPLATES: Record<Family, string[]> = {
  train: [
    'DISCHARGE SUMMARY\nPatient: {PATIENT}   MRN: {MRN}\nAdmitted: {DATE}   Discharged: {DATE}\nAttending: Dr. {CLINICIAN}\n\n{PATIENT} is a {AGE}-year-old admitted to {ORG} with community-acquired pneumonia. Treated with IV ceftriaxone and azithromycin, transitioned to oral therapy on {DATE}. Follow up with Dr. {DRLAST} at {ORG} in 2 weeks. Contact: {PHONE}.',
    'Nursing note {DATE} 0700. Pt resting, VSS. Daughter {RELATIVE} called at {PHONE} asking about discharge plans. Pt states she lives alone at {STREET}, {CITY}, {STATE} {ZIP}. Fall precautions in place.',
    'Social work: met with patient and son {RELATIVE}. Patient is a {AGE90} widow who worked for 30 years at {EMPLOYER}. Insurance: Medicare, member ID {PLAN}. Plan: placement at {ORG} pending bed availability.',
    'Referral letter\n\nDear Dr. {DRLAST},\n\nThank you for seeing {PATIENT} (DOB {DATE}) for evaluation of atrial fibrillation. Her INR has been labile. She can be reached at {PHONE} or {EMAIL}.\n\nSincerely,\n{CLINICIAN}, MD\n{ORG}',
    'Patient message {DATE}: hi this is {PATIENT}, my pharmacy at {STREET} never got the refill for metoprolol. my new number is {PHONE}. thanks',
    'ED triage: {AGE90} brought in by EMS from {ORG} after unwitnessed fall. Vehicle plate {PLATE} noted by police. Pacemaker serial {SERIAL}. Lives in {CITY}.',
    'Telehealth visit {DATE}. Connected from IP {IP}. Patient {PATIENT}, SSN {SSN}, verified identity. Discussed diabetes management; A1c 7.9. Next visit {DATE}.',
    'Billing: account {ACCOUNT} for {PATIENT}; guarantor {RELATIVE}, {STREET}, {CITY} {STATE} {ZIP}. Employer: {EMPLOYER}.',
    'Progress note. {PATIENT} seen with her husband {RELATIVE}. She turned {AGE90} last month. Reports dyspnea on exertion. Echo on {DATE} at {ORG} showed EF 35%. Plan per Dr. {DRLAST}.',
    'Pt {GIVEN} states she was transferred from {ORG} on {DATE}. PCP is Dr {DRLAST}. Emergency contact {RELATIVE} ({PHONE}).',
  ],
  heldout: [
    'HISTORY: Mr. {DRLAST} is a {AGE90} retired machinist (formerly with {EMPLOYER}) who presents from home in {CITY} with three days of confusion. His niece, {RELATIVE}, is his health care proxy and can be reached on {PHONE}.',
    'Case management — {DATE}\nMember: {PATIENT}\nPlan ID: {PLAN}\nAddress on file: {STREET}\n{CITY}, {STATE} {ZIP}\nSpoke with wife {RELATIVE} re: SNF options; she prefers {ORG}.',
    'Letter to patient\n\n{DATE}\n\n{PATIENT}\n{STREET}\n{CITY}, {STATE} {ZIP}\n\nDear {GIVEN},\nYour biopsy results from {DATE} were benign. Please call our office at {PHONE} with questions.\n\n{CLINICIAN}\n{ORG}',
    'Chaplain visit. Met {GIVEN} at bedside, {AGE90}, devout, attends services in {CITY}. Grandson {RELATIVE} visiting from out of state.',
    'Device clinic: ICD interrogation, generator serial {SERIAL}, implanted {DATE} at {ORG} by Dr. {CLINICIAN}. Remote monitoring login from {IP}.',
    'msg from pt: "this is {GIVEN} {DRLAST}, can u send my records to {EMAIL}? also i moved to {STREET} in {CITY}"',
    'Occupational history: works nights as a security guard at {EMPLOYER}; previously at {EMPLOYER}. Drives a pickup, plate {PLATE}. Smokes 1 ppd.',
    'Admission H&P {DATE}. {PATIENT}, MRN {MRN}, {AGE}M with STEMI, cath lab at {ORG}. Wife {RELATIVE} at bedside. SSN on file {SSN}.',
    'Hospice intake: patient is {AGE90}, lives with daughter {RELATIVE} at {STREET}, {CITY}. Medicaid # {PLAN}. Prior facility {ORG}. Account {ACCOUNT}.',
    'Addendum by {CLINICIAN} RN, {DATE}: spoke w/ son {RELATIVE} by phone ({PHONE}); he will bring the patient\'s glasses tomorrow.',
  ],
};

/** `count` notes of a family; spans are exactly where the slots were filled. */
export function generateNotes(family: Family, count: number, seed: number): LabelledNote[] {
  const random = mulberry32(seed);
  const rng: Rng = {
    next: random,
    pick: (xs) => xs[Math.floor(random() * xs.length)]!,
    int: (lo, hi) => lo + Math.floor(random() * (hi - lo + 1)),
    digits: (n) => Array.from({ length: n }, (_, i) => String(i === 0 ? 1 + Math.floor(random() * 9) : Math.floor(random() * 10))).join(''),
  };
  const fill = slots(POOLS[family]);
  const notes: LabelledNote[] = [];
  for (let i = 0; i < count; i++) {
    const template = TEMPLATES[family][i % TEMPLATES[family].length]!;
    let text = '';
    const spans: GoldSpan[] = [];
    let at = 0;
    for (const m of template.matchAll(/\{([A-Z0-9]+)\}/g)) {
      text += template.slice(at, m.index);
      const slot = fill[m[1]!];
      if (!slot) throw new Error(`unknown slot ${m[1]}`);
      const value = slot.make(rng);
      if (slot.type) spans.push({ start: text.length, end: text.length + value.length, type: slot.type });
      text += value;
      at = m.index + m[0].length;
    }
    notes.push({ text: text + template.slice(at), spans });
  }
  return notes;
}
