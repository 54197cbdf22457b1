import { generateKeyPairSync } from 'node:crypto';
import { cpSync, mkdtempSync, openSync, readFileSync, writeFileSync, writeSync, closeSync, statSync, appendFileSync, readdirSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync, spawn } from 'node:child_process';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { AuditLog, auditFiles, readAuditText } from '../../src/audit/log.js';
import { FsyncPlacement } from '../../src/audit/fsync-placement.js';
import { verifyAuditLog } from '../../src/audit/verify.js';
import { lineHash } from '../../src/audit/chain.js';
import { serialiseEarlyFields, type AuditEntry, type DispatchEntry, type OutcomeKey, type SplitEntry } from '../../src/audit/record.js';
import { exportAuditEvents } from '../../src/audit/fhir-export.js';
import { createLogger } from '../../src/phi/logger.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const silent = createLogger('test', 'silent');

function entry(i: number): AuditEntry {
  return {
    type: 'request', requestId: `req-${i}`, door: 'rest', route: 'infer', client: { name: 'spiffe://app', thumbprint: 'tp' },
    principal: { sub: 'user', issuer: 'iss', roles: ['clinician'] }, purposeOfUse: ['TREAT'], emergency: false,
    model: { name: 'news2', version: '1' }, node: 'node-0', outcome: 'success', status: 'ok', code: 200, latencyMs: 1.5, patients: [],
  };
}

async function openLog(dir: string, overrides: Partial<Parameters<typeof AuditLog.open>[0]> = {}) {
  return AuditLog.open({ dir, signingKey: privateKey, gateway: 'test', checkpointIntervalMs: 60_000, rotateBytes: 64 << 20, rotateDaily: false, fsync: true, log: silent, ...overrides });
}

async function writeLog(records: number, checkpointEvery = 5): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
  const log = await openLog(dir);
  for (let i = 1; i <= records; i++) {
    await log.append(entry(i));
    if (i % checkpointEvery === 0) await log.checkpoint();
  }
  await log.close();
  return dir;
}

/** A placement that has just seen a slow sync: every batch that is not quiet goes to the thread pool. */
const pinnedToPool = () => { const p = new FsyncPlacement(0, Infinity); p.tookOnLoop(1, 0); return p; };
/**
 * A placement that no sync can move off the loop. The default one moves to the pool once syncs stay slower
 * than 4 ms, which a busy CI disk does: a test of the loop path must not depend on the disk's speed.
 */
const pinnedToLoop = () => new FsyncPlacement(Infinity);

/** An audit file's complete records (a file being written ends in zero bytes, which readers stop at). */
const lines = (file: string) => readAuditText(file).text.split('\n').filter(Boolean);
const seqAt = (file: string, seq: number) => lines(file).findIndex((l) => JSON.parse(l).seq === seq);
const copy = (dir: string) => { const d = mkdtempSync(join(tmpdir(), 'cdsgate-audit-copy-')); cpSync(dir, d, { recursive: true }); return d; };
const verify = (dir: string) => verifyAuditLog(auditFiles(dir), { publicKey });
/** Writes `text` into a file at `position` (inside its preallocated tail, where the log's next write would go). */
const writeAt = (file: string, text: string | Buffer, position: number) => { const fd = openSync(file, 'r+'); writeSync(fd, typeof text === 'string' ? Buffer.from(text) : text, 0, Buffer.byteLength(text), position); closeSync(fd); };
/** Where a file's records end: its first zero byte (the preallocated tail), or its length. */
const recordsEnd = (file: string) => { const bytes = readFileSync(file); const end = bytes.indexOf(0); return end === -1 ? bytes.length : end; };

describe('audit log', () => {
  it('writes a chain that verifies, ending in a signed final checkpoint', async () => {
    const dir = await writeLog(12);
    const report = verify(dir);
    expect(report.problem).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(report.unsignedTail).toBe(0);
    const all = lines(auditFiles(dir)[0]!);
    expect(JSON.parse(all[0]!)).toMatchObject({ seq: 0, type: 'genesis', prev: '0'.repeat(64) });
    expect(JSON.parse(all.at(-1)!)).toMatchObject({ type: 'checkpoint', final: true });
    expect(JSON.parse(all[1]!).prev).toBe(lineHash(all[0]!));
  });

  it.each([
    ['on the event loop', 'loop', pinnedToLoop],
    ['on the thread pool', 'pool', pinnedToPool],
  ] as const)('group-commits concurrent appends, synced %s: all acknowledged, all recorded once, in order', async (_where, expected, placement) => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const syncs: string[] = [];
    const log = await openLog(dir, { fsyncPlacement: placement(), synced: (where, seconds) => { expect(seconds).toBeGreaterThanOrEqual(0); syncs.push(where); } });
    await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(entry(i))));
    await log.close();
    const ids = lines(auditFiles(dir)[0]!).map((l) => JSON.parse(l)).filter((r) => r.type === 'request').map((r) => r.requestId);
    expect(new Set(ids).size).toBe(200);
    expect(verify(dir).ok).toBe(true);
    expect(syncs.length).toBeGreaterThan(0);
    expect(new Set(syncs)).toEqual(new Set([expected]));
  });

  it('continues the chain across restarts and rotation files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    let log = await openLog(dir, { rotateBytes: 1500 });
    for (let i = 0; i < 20; i++) await log.append(entry(i));
    await log.close();
    log = await openLog(dir, { rotateBytes: 1500 });
    for (let i = 20; i < 30; i++) await log.append(entry(i));
    await log.close();
    expect(auditFiles(dir).length).toBeGreaterThan(3);
    expect(verify(dir)).toMatchObject({ ok: true, unsignedTail: 0 });
    const missing = copy(dir);
    unlinkSync(auditFiles(missing)[1]!);
    expect(verify(missing).problem).toMatch(/missing|not a rotation record/);
  });

  it('a file list made before a rotation: the heads name a checkpoint in a file not on it, and the files there are now are checked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir, { rotateBytes: 1500 });
    for (let i = 0; i < 20; i++) await log.append(entry(i));
    await log.close();
    const listedBefore = auditFiles(dir).slice(0, 2);
    expect(verifyAuditLog(listedBefore, { publicKey }).problem).toMatch(/^the log was truncated/);
    expect(verifyAuditLog(listedBefore, { publicKey, relist: () => auditFiles(dir) })).toMatchObject({ ok: true, unsignedTail: 0 });
    // A file added to the directory is listed, but holds no checkpoint the heads name: the truncation still shows.
    const cut = copy(dir);
    const last = auditFiles(cut).at(-1)!;
    writeFileSync(last, `${lines(last).slice(0, -2).join('\n')}\n`);
    writeFileSync(join(cut, 'audit-999999.jsonl'), '');
    expect(verifyAuditLog(auditFiles(cut).slice(0, -1), { publicKey, relist: () => auditFiles(cut) }).problem).toMatch(/^the log was truncated/);
  });

  it('after a crash mid-write: cuts the incomplete line, records the recovery, and the chain verifies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir);
    for (let i = 0; i < 5; i++) await log.append(entry(i));
    // No close(): the process died during a write, which got as far as this, where the records end (in the
    // zero bytes written ahead of them).
    const torn = '{"seq":6,"time":"2026-';
    const file = auditFiles(dir)[0]!;
    writeAt(file, torn, recordsEnd(file));
    expect(verify(dir)).toMatchObject({ ok: true });
    expect(verify(dir).warnings.join()).toMatch(/incomplete line/);
    const reopened = await openLog(dir);
    await reopened.append(entry(99));
    await reopened.close();
    const records = lines(auditFiles(dir)[0]!).map((l) => JSON.parse(l));
    expect(records.find((r) => r.type === 'recovered')).toMatchObject({ discardedBytes: Buffer.byteLength(torn) });
    expect(verify(dir)).toMatchObject({ ok: true, unsignedTail: 0 });
  });

  it('keeps zero bytes written ahead of its records while open, which readers stop at, and cuts them off when it closes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir);
    for (let i = 0; i < 5; i++) await log.append(entry(i));
    const file = auditFiles(dir)[0]!;
    const end = recordsEnd(file);
    // The syncs of these records wrote into bytes the file already had: a sync that need not record a new size.
    expect(statSync(file).size).toBeGreaterThanOrEqual(end + 256 * 1024);
    expect(readFileSync(file).subarray(end).every((b) => b === 0)).toBe(true);
    expect(readAuditText(file)).toMatchObject({ beyondEnd: 0 });
    expect(readAuditText(file).text.split('\n').filter(Boolean).map((l) => JSON.parse(l).type)).toEqual(['genesis', 'request', 'request', 'request', 'request', 'request']);
    // Only the warning of any log still being written: its newest records follow the last signed checkpoint.
    expect(verify(dir)).toMatchObject({ ok: true, unsignedTail: 6 });
    expect(verify(dir).warnings.join()).not.toMatch(/incomplete|zero byte/);
    expect([...exportAuditEvents(auditFiles(dir))]).toHaveLength(5);
    await log.close();
    expect(readFileSync(file).includes(0)).toBe(false);
    expect(statSync(file).size).toBe(recordsEnd(file));
    expect(verify(dir)).toMatchObject({ ok: true, unsignedTail: 0 });
  });

  it('extends the zero bytes ahead as records come, and a rotated file keeps its records only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir, { rotateBytes: 3 << 20 });
    // A batch large enough to reach past the first megabyte ahead, several times over.
    const big = (i: number): AuditEntry => ({ ...entry(i), request: { note: 'x'.repeat(64 * 1024) } } as AuditEntry);
    for (let i = 0; i < 60; i++) await log.append(big(i));
    const [first, second] = auditFiles(dir);
    expect(second).toBeDefined();
    expect(readFileSync(first!).includes(0)).toBe(false);
    expect(statSync(second!).size).toBeGreaterThan(recordsEnd(second!));
    await log.close();
    expect(auditFiles(dir).every((f) => !readFileSync(f).includes(0))).toBe(true);
    expect(verify(dir)).toMatchObject({ ok: true, unsignedTail: 0 });
  });

  it('a crash with zero bytes still ahead of the records: the next start cuts them off, loses no record, and records the recovery', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir);
    for (let i = 0; i < 3; i++) await log.append(entry(i));
    // No close(): the process died between writes.
    const crashed = copy(dir);
    const reopened = await openLog(crashed);
    await reopened.append(entry(99));
    await reopened.close();
    const records = lines(auditFiles(crashed)[0]!).map((l) => JSON.parse(l));
    expect(records.filter((r) => r.type === 'request').map((r) => r.requestId)).toEqual(['req-0', 'req-1', 'req-2', 'req-99']);
    expect(records.find((r) => r.type === 'recovered')).toMatchObject({ discardedBytes: 0 });
    expect(verify(crashed)).toMatchObject({ ok: true, unsignedTail: 0 });
    await log.close();
  });

  it('a power cut during a write: bytes after the first zero byte are an unfinished write, warned about, then cut at the next start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir);
    for (let i = 0; i < 3; i++) await log.append(entry(i));
    const crashed = copy(dir);
    await log.close();
    // The write of a batch of two records reached the disk in part: its first bytes, then a lost block (still
    // zero), then the rest. No such batch was acknowledged: its sync never returned.
    const file = auditFiles(crashed)[0]!;
    const end = recordsEnd(file);
    const head = '{"seq":5,"time":"2026-12-07T00:00:00.000Z","prev":"';
    const tail = 'ab"}\n{"seq":6,"type":"request"}\n';
    writeAt(file, head, end);
    writeAt(file, tail, end + head.length + 512);
    const before = verify(crashed);
    expect(before.ok).toBe(true);
    expect(before.warnings.join()).toMatch(/incomplete line/);
    expect(before.warnings.join()).toMatch(new RegExp(`${512 + Buffer.byteLength(tail)} bytes from a zero byte`));
    const reopened = await openLog(crashed);
    await reopened.append(entry(99));
    await reopened.close();
    const records = lines(file).map((l) => JSON.parse(l));
    expect(records.find((r) => r.type === 'recovered')).toMatchObject({ discardedBytes: head.length + 512 + Buffer.byteLength(tail) });
    expect(records.filter((r) => r.type === 'request').map((r) => r.requestId)).toEqual(['req-0', 'req-1', 'req-2', 'req-99']);
    expect(verify(crashed)).toMatchObject({ ok: true, unsignedTail: 0, warnings: [] });
  });

  it('a power cut anywhere in an unfinished write, any of its blocks lost: the next start keeps every acknowledged record and the chain verifies', async () => {
    // The acknowledged records, then the gateway "died" (no close): this is the state every case starts from.
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir, { fsync: false });
    for (let i = 0; i < 4; i++) await log.append(entry(i));
    const base = copy(dir);
    const file = auditFiles(dir)[0]!;
    const acknowledgedEnd = recordsEnd(file);
    // The write that the power cut interrupted: the bytes the same log writes next (several records, one batch each).
    await Promise.all(Array.from({ length: 8 }, (_, i) => log.append(entry(100 + i))));
    const unfinished = readFileSync(file).subarray(acknowledgedEnd, recordsEnd(file));
    await log.close();
    const SECTOR = 512;
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 0, max: unfinished.length }),
      fc.array(fc.boolean(), { minLength: Math.ceil((acknowledgedEnd % SECTOR + unfinished.length) / SECTOR) + 1, maxLength: Math.ceil((acknowledgedEnd % SECTOR + unfinished.length) / SECTOR) + 1 }),
      async (reached, kept) => {
        const crashed = copy(base);
        const target = auditFiles(crashed)[0]!;
        // The write reached `reached` bytes; of those, each disk block (512 bytes, at file offsets) was kept or lost (still zero).
        const part = Buffer.from(unfinished.subarray(0, reached));
        for (let at = 0; at < part.length; at++) if (!kept[Math.floor((acknowledgedEnd + at) / SECTOR) - Math.floor(acknowledgedEnd / SECTOR)]) part[at] = 0;
        writeAt(target, part, acknowledgedEnd);
        const reopened = await openLog(crashed, { fsync: false });
        await reopened.append(entry(999));
        await reopened.close();
        const ids = lines(target).map((l) => JSON.parse(l)).filter((r) => r.type === 'request').map((r) => r.requestId);
        // Every acknowledged record, then whichever unfinished ones were whole before the first lost block, then the new one.
        expect(ids.slice(0, 4)).toEqual(['req-0', 'req-1', 'req-2', 'req-3']);
        expect(ids.at(-1)).toBe('req-999');
        expect(ids.slice(4, -1)).toEqual(Array.from({ length: ids.length - 5 }, (_, i) => `req-${100 + i}`));
        expect(readFileSync(target).includes(0)).toBe(false);
        expect(verify(crashed)).toMatchObject({ ok: true, unsignedTail: 0 });
      },
    ), { seed: 4242, numRuns: 60 });
  });

  it('a zero byte further from the end than an unfinished write reaches: the log is left as it is and does not open', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir);
    // More than a megabyte of acknowledged records after the line the zero byte will be put in.
    const big = (i: number): AuditEntry => ({ ...entry(i), request: { note: 'x'.repeat(64 * 1024) } } as AuditEntry);
    for (let i = 0; i < 20; i++) await log.append(big(i));
    await log.close();
    const file = auditFiles(dir)[0]!;
    const before = readFileSync(file);
    writeAt(file, Buffer.from([0]), before.indexOf('\n') + 5);
    const damaged = readFileSync(file);
    await expect(openLog(dir)).rejects.toThrow(/zero byte .* more than an unfinished write leaves; run "cdsgate audit verify"/);
    expect(readFileSync(file).equals(damaged)).toBe(true);
    expect(verify(dir).ok).toBe(false);
  });

  it('an earlier file with bytes hidden after a zero byte does not verify', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir, { rotateBytes: 1500 });
    for (let i = 0; i < 20; i++) await log.append(entry(i));
    await log.close();
    const tampered = copy(dir);
    const first = auditFiles(tampered)[0]!;
    const text = readFileSync(first, 'utf8').split('\n');
    // A zero byte put in at the start of the second line hides it and everything after it from a reader.
    writeFileSync(first, `${text[0]}\n\u0000${text.slice(1).join('\n')}`);
    expect(verify(tampered).ok).toBe(false);
  });

  it('fails closed: after a write error every append is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir);
    await log.append(entry(1));
    await (log as unknown as { fh: { close(): Promise<void> } }).fh.close(); // the disk goes away
    await expect(log.append(entry(2))).rejects.toThrow(/audit log unavailable/);
    await expect(log.append(entry(3))).rejects.toThrow(/audit log unavailable/);
    expect(log.healthy).toBe(false);
  });
});

describe('a failed sync fails closed, wherever it ran', () => {
  it.each([
    ['on the event loop', pinnedToLoop],
    ['on the thread pool', pinnedToPool],
  ])('%s: the write lands but fdatasync fails, so the append is refused and so is every later one', async (_where, placement) => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir, { fsyncPlacement: placement() });
    await log.append(entry(1));
    // A FIFO takes the write (into its buffer) but cannot be synced (EINVAL): a disk that accepts data and then fails to persist it.
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const internals = log as unknown as { fh: FileHandle };
    const original = internals.fh;
    internals.fh = await open(fifo, 'r+');
    await expect(log.append(entry(2))).rejects.toThrow(/audit log unavailable/);
    await expect(log.append(entry(3))).rejects.toThrow(/audit log unavailable/);
    expect(log.healthy).toBe(false);
    await internals.fh.close();
    await original.close();
  });
});

describe('where a batch is synced', () => {
  it('on the event loop while syncs are fast, and a single slow one changes nothing', () => {
    const p = new FsyncPlacement(4, 1_000);
    expect(p.onLoop(false, 0)).toBe(true);
    p.tookOnLoop(0.5, 10);
    p.tookOnLoop(12, 20); // one spike: the mean is 0.8 × 0.5 + 0.2 × 12 = 2.8 ms
    expect(p.onLoop(false, 21)).toBe(true);
  });

  it('on the thread pool for a while once syncs stay slow, then on the loop if the disk is fast again', () => {
    const p = new FsyncPlacement(4, 1_000);
    for (let t = 0; t < 5; t++) p.tookOnLoop(8, t);
    expect(p.onLoop(false, 5)).toBe(false);
    expect(p.onLoop(false, 1_003)).toBe(false);
    expect(p.onLoop(false, 1_004)).toBe(true);
    p.tookOnLoop(0.5, 1_005); // measured afresh, not averaged with the slow past
    expect(p.onLoop(false, 1_006)).toBe(true);
  });

  it('back on the thread pool when the disk is still slow after the spell', () => {
    const p = new FsyncPlacement(4, 1_000);
    p.tookOnLoop(50, 0);
    expect(p.onLoop(false, 1)).toBe(false);
    p.tookOnLoop(9, 1_000);
    expect(p.onLoop(false, 1_001)).toBe(false);
  });

  it('on the event loop when the gateway is quiet, even while the disk is slow', () => {
    const p = new FsyncPlacement(4, 1_000);
    p.tookOnLoop(50, 0);
    expect(p.onLoop(true, 1)).toBe(true);
  });
});

describe('audit verify names the first bad record', () => {
  it('an edited field', async () => {
    const dir = copy(await writeLog(12));
    const file = auditFiles(dir)[0]!;
    const all = lines(file);
    const i = seqAt(file, 4);
    all[i] = all[i]!.replace('"status":"ok"', '"status":"permission_denied"');
    writeFileSync(file, `${all.join('\n')}\n`);
    expect(verify(dir).problem).toMatch(/^record 4 \(audit-000001\.jsonl:5\) was modified/);
  });

  it('a deleted record', async () => {
    const dir = copy(await writeLog(12));
    const file = auditFiles(dir)[0]!;
    const all = lines(file);
    all.splice(seqAt(file, 4), 1);
    writeFileSync(file, `${all.join('\n')}\n`);
    expect(verify(dir).problem).toMatch(/^record 4 is missing/);
  });

  it('reordered records', async () => {
    const dir = copy(await writeLog(12));
    const file = auditFiles(dir)[0]!;
    const all = lines(file);
    const i = seqAt(file, 4);
    [all[i], all[i + 1]] = [all[i + 1]!, all[i]!];
    writeFileSync(file, `${all.join('\n')}\n`);
    expect(verify(dir).problem).toMatch(/^record 4 is out of order/);
  });

  it('an inserted record', async () => {
    const dir = copy(await writeLog(12));
    const file = auditFiles(dir)[0]!;
    const all = lines(file);
    const i = seqAt(file, 4);
    all.splice(i + 1, 0, all[i]!.replace('req-4', 'req-forged'));
    writeFileSync(file, `${all.join('\n')}\n`);
    expect(verify(dir).problem).toMatch(/repeats seq 4 after record 4: a record was inserted/);
  });

  it('a truncated tail (final checkpoint and records cut off)', async () => {
    const dir = copy(await writeLog(12));
    const file = auditFiles(dir)[0]!;
    const all = lines(file);
    writeFileSync(file, `${all.slice(0, -4).join('\n')}\n`);
    expect(verify(dir).problem).toMatch(/^the log was truncated: a signed head covers record \d+ .* but the log ends at record \d+/);
  });

  it('a rewritten chain (record edited and every later hash recomputed) fails at the next signature', async () => {
    const dir = copy(await writeLog(12));
    const file = auditFiles(dir)[0]!;
    const all = lines(file).map((l) => JSON.parse(l) as Record<string, unknown>);
    const out: string[] = [];
    let prev = '0'.repeat(64);
    for (const r of all) {
      if (r.seq === 3) r.outcome = 'failure';
      r.prev = prev;
      const line = JSON.stringify(r);
      prev = lineHash(line);
      out.push(line);
    }
    writeFileSync(file, `${out.join('\n')}\n`);
    expect(verify(dir).problem).toMatch(/^checkpoint record 6 .* has an invalid signature/);
  });

  it('a last head without its newline is still checked; a part of one is a warning', async () => {
    const cut = copy(await writeLog(12));
    writeFileSync(auditFiles(cut)[0]!, `${lines(auditFiles(cut)[0]!).slice(0, -4).join('\n')}\n`);
    writeFileSync(join(cut, 'heads.jsonl'), readFileSync(join(cut, 'heads.jsonl'), 'utf8').trimEnd());
    expect(verify(cut).problem).toMatch(/^the log was truncated/);

    const partial = copy(await writeLog(12));
    appendFileSync(join(partial, 'heads.jsonl'), '{"file":"audit-000001.jsonl","seq":');
    const report = verify(partial);
    expect(report.ok).toBe(true);
    expect(report.warnings.join('\n')).toMatch(/heads\.jsonl ends with an incomplete line/);
  });

  it('a part of a signed head left by a crash is cut off when the log opens again, so the heads after it stay readable', async () => {
    const dir = await writeLog(6);
    appendFileSync(join(dir, 'heads.jsonl'), '{"file":"audit-000001.jsonl","seq":9');
    const log = await openLog(dir);
    await log.append(entry(7));
    await log.checkpoint();
    await log.close();
    const report = verify(dir);
    expect(report.problem).toBeUndefined();
    expect(report.warnings.join('\n')).not.toMatch(/heads\.jsonl/);
    for (const line of lines(join(dir, 'heads.jsonl'))) expect(() => JSON.parse(line)).not.toThrow();
  });

  it('a log signed by another key is refused when a trusted key is given', async () => {
    const dir = await writeLog(3);
    const other = generateKeyPairSync('ed25519').publicKey;
    expect(verifyAuditLog(auditFiles(dir), { publicKey: other }).problem).toMatch(/not the trusted key/);
    expect(readdirSync(dir)).toContain('heads.jsonl');
  });
});

describe('audit verify on a log that is being written', () => {
  it('verifies whenever it runs, while another process appends records and signs a checkpoint after every two', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-live-'));
    const keyFile = join(dir, 'signing.pem');
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const logDir = join(dir, 'audit');
    // The writer is the built AuditLog (npm test builds first), in a process of its own, as a running gateway is;
    // it writes a bounded log (3,000 records and 1,500 checkpoints), then exits.
    const writer = spawn(process.execPath, ['--input-type=module', '-e', `
      import { readFileSync } from 'node:fs';
      import { createPrivateKey } from 'node:crypto';
      const { AuditLog } = await import(${JSON.stringify(join(process.cwd(), 'dist', 'audit', 'log.js'))});
      const log = await AuditLog.open({ dir: ${JSON.stringify(logDir)}, signingKey: createPrivateKey(readFileSync(${JSON.stringify(keyFile)})), gateway: 'live',
        checkpointIntervalMs: 60000, rotateBytes: 64 << 20, rotateDaily: false, fsync: false, log: { fatal() {}, warn() {}, error() {}, info() {} } });
      for (let i = 0; i < 1500; i++) {
        for (const n of [0, 1]) await log.append({ type: 'request', requestId: 'r' + i + '-' + n, door: 'rest', route: 'infer', client: null, outcome: 'success', status: 'ok', code: 200, latencyMs: 1, patients: [] });
        await log.checkpoint();
        if (i === 10) process.stdout.write('ready\\n');
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      await log.close();
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    let exited = false;
    const done = new Promise<number | null>((resolve) => writer.once('exit', (code) => { exited = true; resolve(code); }));
    try {
      await new Promise<void>((resolve, reject) => {
        writer.stdout!.on('data', (d: Buffer) => { if (String(d).includes('ready')) resolve(); });
        void done.then((code) => reject(new Error(`the writer exited with code ${code} before it was ready`)));
      });
      let runs = 0;
      while (!exited) {
        const report = verifyAuditLog(auditFiles(logDir), { publicKey });
        expect(report.problem).toBeUndefined();
        runs++;
        await new Promise((r) => setImmediate(r));
      }
      expect(await done).toBe(0);
      expect(runs).toBeGreaterThan(0);
      expect(verifyAuditLog(auditFiles(logDir), { publicKey })).toMatchObject({ ok: true, checkpoints: 1501, unsignedTail: 0 });
    } finally {
      writer.kill('SIGKILL');
    }
  });
});

describe('under load a batch gathers the records of the requests in progress', () => {
  it('records that arrive over several turns share one sync, and the last ones are not held once the load is gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const syncs: number[] = [];
    let inProgress = 0; // while the log opens (its genesis record)
    let lines = 0;
    // A long gather time: only the share of requests in progress may end the wait, whatever the machine's speed.
    const log = await openLog(dir, { inProgress: () => inProgress, gatherMs: 600_000, synced: () => syncs.push(lines) });
    const before = syncs.length;
    inProgress = 10;
    const appends: Array<Promise<void>> = [];
    for (let i = 0; i < 10; i++) {
      appends.push(log.append(entry(i)).then(() => { inProgress--; lines++; }));
      await new Promise((resolve) => setImmediate(resolve)); // one record per turn of the event loop
    }
    await Promise.all(appends);
    // Nine of ten (90%) end the wait; the tenth, once it is the only request left, is written at once.
    expect(syncs.length - before).toBe(2);
    await log.close();
    const ids = readFileSync(auditFiles(dir)[0]!, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((r) => r.type === 'request').map((r) => r.requestId);
    expect(ids).toEqual(Array.from({ length: 10 }, (_, i) => `req-${i}`));
    expect(verify(dir).ok).toBe(true);
  });

  it('a batch that waits is written when its time is up, even if the other requests never record', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir, { inProgress: () => 32, gatherMs: 1 });
    await log.append(entry(1));
    await log.close();
    expect(verify(dir).ok).toBe(true);
  });

  it('closing the log ends the wait: the final checkpoint and the waiting records are written together', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    let inProgress = 0;
    const log = await openLog(dir, { inProgress: () => inProgress, gatherMs: 600_000 });
    inProgress = 32;
    const waiting = log.append(entry(1));
    await new Promise((resolve) => setImmediate(resolve));
    await Promise.all([waiting, log.close()]);
    const records = readFileSync(auditFiles(dir)[0]!, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(records.at(-2)).toMatchObject({ type: 'request', requestId: 'req-1' });
    expect(records.at(-1)).toMatchObject({ type: 'checkpoint', final: true });
    expect(verify(dir).ok).toBe(true);
  });
});

describe('a record written before the answer once its dispatch record is on disk', () => {
  const dispatch = (i: number): DispatchEntry => ({
    type: 'dispatch', requestId: `req-${i}`, door: 'rest', route: 'infer', client: { name: 'spiffe://app', thumbprint: 'tp' },
    principal: { sub: 'user', issuer: 'iss', roles: ['clinician'] }, purposeOfUse: ['TREAT'], emergency: false,
    model: { name: 'news2' }, sentTo: ['node-0'], patients: ['psn:abc'], inputDigest: 'hmac-sha256:k:00',
  });
  const records = (dir: string) => lines(auditFiles(dir)[0]!).map((l) => JSON.parse(l) as Record<string, unknown>);

  it('is in the file when its append resolves, with no sync of its own; the next durable append syncs it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    let syncs = 0;
    const log = await openLog(dir, { inProgress: () => 1, synced: () => { syncs++; } });
    const before = syncs;
    await log.append(dispatch(1));
    expect(syncs - before).toBe(1);
    await log.appendWritten(entry(1));
    expect(syncs - before).toBe(1);
    expect(records(dir).map((r) => [r.type, r.requestId]).slice(-2)).toEqual([['dispatch', 'req-1'], ['request', 'req-1']]);
    await log.append(dispatch(2)); // one sync covers the written record and the new one
    expect(syncs - before).toBe(2);
    await log.close();
    expect(verify(dir)).toMatchObject({ ok: true, unfinished: 1 });
  });

  it('is synced soon even when no other record comes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    let syncs = 0;
    const log = await openLog(dir, { inProgress: () => 1, synced: () => { syncs++; } });
    await log.append(dispatch(1));
    const before = syncs;
    await log.appendWritten(entry(1));
    expect(syncs).toBe(before);
    await waitUntil(() => syncs > before);
    expect(syncs).toBe(before + 1);
    await log.close();
    expect(verify(dir)).toMatchObject({ ok: true, unfinished: 0 });
  });

  it('no sync of its own while each written record is covered by a durable one within the wait; synced once the wait is up', async () => {
    // Fake time: which sync happens depends only on how old the unsynced record is when the wait's timer fires.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] });
    try {
      const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
      let syncs = 0;
      const log = await openLog(dir, { inProgress: () => 1, synced: () => { syncs++; } });
      await log.append(dispatch(1));
      const before = syncs;
      await log.appendWritten(entry(1)); // t = 0: the wait's timer is armed for t = 10 ms
      await vi.advanceTimersByTimeAsync(6);
      await log.append(dispatch(2)); // its sync covers entry 1
      expect(syncs - before).toBe(1);
      await vi.advanceTimersByTimeAsync(2);
      await log.appendWritten(entry(2)); // t = 8 ms: written, unsynced
      await vi.advanceTimersByTimeAsync(4); // the timer fires at t = 10 ms, when entry 2 has waited 2 ms of its 10
      expect(syncs - before).toBe(1);
      await vi.advanceTimersByTimeAsync(7); // t = 19 ms: entry 2 has waited its 10 ms
      expect(syncs - before).toBe(2);
      await vi.advanceTimersByTimeAsync(50); // nothing written since: no more syncs
      expect(syncs - before).toBe(2);
      await log.close();
      expect(verify(dir)).toMatchObject({ ok: true, unfinished: 0 });
    } finally {
      vi.useRealTimers();
    }
  });

  it('with fsync off nothing is synced and nothing waits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    let syncs = 0;
    const log = await openLog(dir, { fsync: false, inProgress: () => 1, synced: () => { syncs++; } });
    expect(log.syncsAlone).toBe(false);
    await log.appendWritten(entry(1));
    await log.close();
    expect(syncs).toBe(0);
    expect(verify(dir).ok).toBe(true);
  });

  it('a dispatch record is worth it only while a record would be synced alone (few requests in progress)', async () => {
    let inProgress = 1;
    const log = await openLog(mkdtempSync(join(tmpdir(), 'cdsgate-audit-')), { inProgress: () => inProgress });
    expect(log.syncsAlone).toBe(true);
    inProgress = 3;
    expect(log.syncsAlone).toBe(true);
    inProgress = 4; // batches gather from here on (GATHER_FROM)
    expect(log.syncsAlone).toBe(false);
    await log.close();
  });

  it('across rotations: every written record ends up in a file that verifies, none left unfinished', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir, { inProgress: () => 1, rotateBytes: 2_000 });
    for (let i = 0; i < 30; i++) {
      await log.append(dispatch(i));
      await log.appendWritten(entry(i));
    }
    await log.close();
    expect(auditFiles(dir).length).toBeGreaterThan(3);
    expect(verify(dir)).toMatchObject({ ok: true, unfinished: 0, unsignedTail: 0 });
    const own = auditFiles(dir).flatMap((f) => lines(f).map((l) => JSON.parse(l))).filter((r) => r.type === 'request').map((r) => r.requestId);
    expect(own).toEqual(Array.from({ length: 30 }, (_, i) => `req-${i}`));
  });

  it('is refused like any record once the log is broken', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir, { inProgress: () => 1 });
    await log.close();
    await expect(log.appendWritten(entry(1))).rejects.toThrow(/closed/);
  });

  it('a dispatch record with no record of its own after it: verify counts it, export gives an event without an outcome', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir, { inProgress: () => 1 });
    await log.append(dispatch(1));
    await log.appendWritten(entry(1));
    await log.append(dispatch(2)); // the gateway stopped before req-2's own record
    await log.close();
    const report = verify(dir);
    expect(report).toMatchObject({ ok: true, unfinished: 1 });
    expect(report.warnings.join('\n')).toMatch(/1 request\(s\) have a dispatch record and no record of their own/);
    const events = [...exportAuditEvents(auditFiles(dir))] as Array<Record<string, any>>;
    expect(events.map((e) => [e.id, e.outcome])).toEqual([['req-1', '0'], ['req-2', undefined]]);
    expect(events[1]!.outcomeDesc).toMatch(/^unknown/);
    expect(events[1]!.entity).toEqual(expect.arrayContaining([expect.objectContaining({ what: { identifier: expect.objectContaining({ value: 'psn:abc' }) } })]));
  });
});

describe('a request record serialised in two parts (early fields while the node works, then the outcome)', () => {
  const OUTCOME: readonly OutcomeKey[] = ['outcome', 'status', 'code', 'latencyMs', 'model', 'node', 'sentTo'];
  /** `e` split as the pipeline splits it. */
  const split = (e: AuditEntry): SplitEntry => {
    const early: Record<string, unknown> = {};
    const outcome: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e)) ((OUTCOME as readonly string[]).includes(k) ? outcome : early)[k] = v;
    return { early: serialiseEarlyFields(early as Parameters<typeof serialiseEarlyFields>[0]), outcome: outcome as SplitEntry['outcome'] };
  };

  it('holds the same fields as the whole record, early ones first, and the chain verifies across batches of either kind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir, { inProgress: () => 1 });
    const whole = (i: number): AuditEntry => ({ ...entry(i), sentTo: ['node-1', 'node-0'], request: { inputs: [{ name: 'vitals', phi: 'none' }] }, inputDigest: 'hmac-sha256:k:01' });
    for (let i = 1; i <= 6; i++) {
      // Split and whole records, durable and written-only, one batch each: each batch's last hash is carried to the next.
      if (i % 2) await log.append(split(whole(i)));
      else await log.appendWritten(whole(i));
    }
    await log.close();
    const records = lines(auditFiles(dir)[0]!).map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.type === 'request');
    expect(records).toHaveLength(6);
    for (const [i, r] of records.entries()) {
      const { seq: _seq, time: _time, prev: _prev, ...fields } = r;
      expect(fields).toEqual(JSON.parse(JSON.stringify(whole(i + 1))));
    }
    const splitKeys = Object.keys(records[0]!).slice(3);
    expect(new Set(splitKeys.slice(-OUTCOME.length))).toEqual(new Set(OUTCOME));
    expect(verify(dir)).toMatchObject({ ok: true });
  });

  it('an outcome field left undefined is absent from the line, as in a whole record', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-audit-'));
    const log = await openLog(dir);
    await log.append(split({ ...entry(1), node: undefined, model: null, outcome: 'failure', status: 'unavailable', code: 503 }));
    await log.close();
    const record = lines(auditFiles(dir)[0]!).map((l) => JSON.parse(l) as Record<string, unknown>).find((r) => r.type === 'request')!;
    expect(record).not.toHaveProperty('node');
    expect(record).toMatchObject({ model: null, outcome: 'failure', code: 503 });
    expect(verify(dir)).toMatchObject({ ok: true });
  });
});

/** Polls until the condition holds (the test's own timeout bounds it): no timing threshold. */
async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}
