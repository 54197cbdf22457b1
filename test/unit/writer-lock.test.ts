import { generateKeyPairSync } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AuditLog } from '../../src/audit/log.js';
import type { AuditEntry } from '../../src/audit/record.js';
import { WRITER_LOCK_FILE, WRITER_LOCK_HEARTBEAT_MS, WRITER_LOCK_STALE_MS, WriterLock } from '../../src/audit/writer-lock.js';
import { createLogger } from '../../src/phi/logger.js';

const { privateKey } = generateKeyPairSync('ed25519');
const openLog = (dir: string) => AuditLog.open({ dir, signingKey: privateKey, gateway: 'test', checkpointIntervalMs: 60_000, rotateBytes: 64 << 20, rotateDaily: false, fsync: false, log: createLogger('test', 'silent') });
const freshDir = () => mkdtempSync(join(tmpdir(), 'cdsgate-lock-'));
/** A request's audit record, as the gateway appends one. */
const record = (requestId: string): AuditEntry => ({ type: 'request', requestId, door: 'rest', route: 'infer', client: null, outcome: 'success', status: 'ok', code: 200, latencyMs: 1, principal: null, purposeOfUse: [], emergency: false, model: null, patients: [] });
/** A lock file as another gateway would leave it. */
const lockedBy = (dir: string, pid: number, host = hostname(), ageMs = 0) => {
  const file = join(dir, WRITER_LOCK_FILE);
  writeFileSync(file, JSON.stringify({ pid, host, since: '2026-12-07T00:00:00.000Z' }));
  const at = new Date(Date.now() - ageMs);
  utimesSync(file, at, at);
  return file;
};

afterEach(() => { vi.useRealTimers(); });

describe('one writer per audit directory', () => {
  it('another running gateway process holds the directory: the log does not open, names the holder, and changes nothing', async () => {
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      const dir = freshDir();
      const file = lockedBy(dir, other.pid!);
      const before = readFileSync(file, 'utf8');
      await expect(openLog(dir)).rejects.toThrow(new RegExp(`being written by another gateway \\(pid ${other.pid} on ${hostname()}.*remove .*writer\\.lock`));
      expect(readFileSync(file, 'utf8')).toBe(before);
      expect(existsSync(join(dir, 'audit-000001.jsonl'))).toBe(false);
    } finally {
      other.kill();
    }
  });

  it('a gateway on another host that still marks its lock holds the directory; one that stopped marking it is gone', async () => {
    const held = freshDir();
    lockedBy(held, 4242, 'other-host.example', WRITER_LOCK_STALE_MS / 3);
    await expect(openLog(held)).rejects.toThrow(/pid 4242 on other-host\.example/);
    const abandoned = freshDir();
    lockedBy(abandoned, 4242, 'other-host.example', WRITER_LOCK_STALE_MS + 1_000);
    const log = await openLog(abandoned);
    expect(JSON.parse(readFileSync(join(abandoned, WRITER_LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid, host: hostname() });
    await log.close();
  });

  it('a lock left by a process of this host that no longer runs, or by this very pid (a restarted container), is taken over', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    for (const pid of [dead, process.pid]) {
      const dir = freshDir();
      lockedBy(dir, pid);
      const log = await openLog(dir);
      await log.append(record('r'));
      await log.close();
    }
  });

  it('a lock file that names no one (a crash while it was made) is taken over', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, WRITER_LOCK_FILE), '');
    await (await openLog(dir)).close();
  });

  it('is released when the log closes, so the next gateway opens the directory', async () => {
    const dir = freshDir();
    const log = await openLog(dir);
    expect(existsSync(join(dir, WRITER_LOCK_FILE))).toBe(true);
    await log.close();
    expect(existsSync(join(dir, WRITER_LOCK_FILE))).toBe(false);
    await (await openLog(dir)).close();
  });

  it('a holder whose lock was taken over while it was held up stops writing: its next batch fails and the log refuses requests', async () => {
    const dir = freshDir();
    const log = await openLog(dir);
    await log.append(record('before'));
    // Held up past the stale time (its heartbeats could not run), and meanwhile another gateway took the directory.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + WRITER_LOCK_STALE_MS + 1_000);
    writeFileSync(join(dir, WRITER_LOCK_FILE), JSON.stringify({ pid: 4242, host: 'other-host.example', since: new Date().toISOString() }));
    const file = join(dir, 'audit-000001.jsonl');
    const before = readFileSync(file);
    await expect(log.append(record('after'))).rejects.toThrow(/audit log unavailable: another gateway took over/);
    expect(log.healthy).toBe(false);
    expect(readFileSync(file).equals(before)).toBe(true);
    vi.useRealTimers();
    await log.close();
    // Its close leaves the new holder's lock in place.
    expect(JSON.parse(readFileSync(join(dir, WRITER_LOCK_FILE), 'utf8'))).toMatchObject({ pid: 4242 });
  });

  it('a heartbeat that finds the lock naming someone else marks it lost; a lock removed by hand is claimed again', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    const taken = freshDir();
    const lock = WriterLock.take(taken);
    writeFileSync(join(taken, WRITER_LOCK_FILE), JSON.stringify({ pid: 4242, host: 'other-host.example', since: 'x' }));
    vi.advanceTimersByTime(WRITER_LOCK_HEARTBEAT_MS);
    expect(lock.stillHeld()).toBe(false);
    const removed = freshDir();
    const kept = WriterLock.take(removed);
    const claim = readFileSync(join(removed, WRITER_LOCK_FILE), 'utf8');
    unlinkSync(join(removed, WRITER_LOCK_FILE));
    vi.advanceTimersByTime(WRITER_LOCK_HEARTBEAT_MS);
    expect(kept.stillHeld()).toBe(true);
    expect(readFileSync(join(removed, WRITER_LOCK_FILE), 'utf8')).toBe(claim);
    kept.release();
  });

  it('while held, the lock is marked alive every heartbeat, so no other host takes it as stale', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    const dir = freshDir();
    const lock = WriterLock.take(dir);
    const file = join(dir, WRITER_LOCK_FILE);
    const old = new Date(Date.now() - 10 * WRITER_LOCK_STALE_MS);
    utimesSync(file, old, old);
    vi.advanceTimersByTime(WRITER_LOCK_HEARTBEAT_MS);
    expect(statSync(file).mtimeMs).toBeGreaterThan(old.getTime() + 9 * WRITER_LOCK_STALE_MS);
    lock.release();
    expect(existsSync(file)).toBe(false);
  });
});
