import { closeSync, openSync, readFileSync, statSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const WRITER_LOCK_FILE = 'writer.lock';
/** How often the holder marks its lock as alive (its modification time). */
export const WRITER_LOCK_HEARTBEAT_MS = 10_000;
/** A lock not marked for this long is a dead gateway's, on whatever host it ran. */
export const WRITER_LOCK_STALE_MS = 3 * WRITER_LOCK_HEARTBEAT_MS;

interface Holder { pid: number; host: string; since: string }

/**
 * One writer per audit directory. The log writes each batch at the offset
 * where it knows its records end (log.ts, the preallocated tail), so a second
 * gateway given the same directory would overwrite the first one's records.
 * The lock is a file created exclusively (O_EXCL) in the directory, naming
 * the holder, and touched every WRITER_LOCK_HEARTBEAT_MS while it writes. It
 * is taken over when its holder is gone: a process of this host that no
 * longer runs (or this very process id, a container restarted with the same
 * pid), or, on any host, a lock not touched for WRITER_LOCK_STALE_MS (a
 * gateway that died on another machine that shares the volume). Otherwise
 * the directory is refused, naming the holder. Two gateways taking over the
 * same stale lock at the same instant could both succeed; that needs a crash
 * and two starts within microseconds of each other.
 *
 * A holder whose event loop was held for longer than the stale time (a disk
 * that hung in a sync) may have been taken over meanwhile, so each heartbeat
 * also reads the file back, and so does the writer before a write when no
 * heartbeat has confirmed the lock for two periods (`stillHeld`, a clock
 * comparison otherwise): a lock that names someone else is lost for good.
 */
export class WriterLock {
  private readonly heartbeat: NodeJS.Timeout;
  private released = false;
  private lost = false;
  /** When (Date.now()) the file last named this process. */
  private confirmedAt = Date.now();

  private constructor(private readonly file: string, private readonly claim: string) {
    this.heartbeat = setInterval(() => {
      if (!this.confirm()) return;
      try {
        const now = new Date();
        utimesSync(this.file, now, now);
      } catch { /* the directory went away: the log's own writes fail and say so */ }
    }, WRITER_LOCK_HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  static take(dir: string): WriterLock {
    const file = join(dir, WRITER_LOCK_FILE);
    const claim = create(file);
    if (claim !== undefined) return new WriterLock(file, claim);
    const holder = readHolder(file);
    const age = Date.now() - statSync(file).mtimeMs;
    if (holder && !holderGone(holder, age)) {
      throw new Error(`audit directory ${dir} is being written by another gateway (pid ${holder.pid} on ${holder.host}, since ${holder.since}): two writers would overwrite each other's records. Give each gateway its own audit.dir; if that gateway is not running, remove ${file}`);
    }
    unlinkSync(file);
    const taken = create(file);
    if (taken === undefined) throw new Error(`audit directory ${dir}: another gateway took its writer lock at the same moment; start one gateway per audit.dir`);
    return new WriterLock(file, taken);
  }

  /** False once the lock file names another holder: this process must not write to the directory again. */
  stillHeld(now = Date.now()): boolean {
    if (this.lost) return false;
    return now - this.confirmedAt <= 2 * WRITER_LOCK_HEARTBEAT_MS || this.confirm(now);
  }

  /** Reads the lock file back: it must still be this process's claim. */
  private confirm(now = Date.now()): boolean {
    if (this.lost) return false;
    if (this.released) return true;
    let text: string | undefined;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch { /* removed by hand: the claim is made again below, if no one else made one first */ }
    if (text === undefined && create(this.file, this.claim) !== undefined) text = this.claim;
    if (text !== this.claim) {
      this.lost = true;
      clearInterval(this.heartbeat);
      return false;
    }
    this.confirmedAt = now;
    return true;
  }

  /** Removes the lock file, unless it names another holder now (a lost lock is that holder's to remove). */
  release(): void {
    if (this.released) return;
    this.released = true;
    clearInterval(this.heartbeat);
    try {
      if (!this.lost && readFileSync(this.file, 'utf8') === this.claim) unlinkSync(this.file);
    } catch { /* already gone */ }
  }
}

/** Creates the lock file naming this process, and answers the claim written; undefined when one exists. */
function create(file: string, claim = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() } satisfies Holder)): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw err;
  }
  try {
    writeSync(fd, claim);
  } finally {
    closeSync(fd);
  }
  return claim;
}

/** The holder a lock file names; undefined when it names none (a crash while it was created: a dead holder's). */
function readHolder(file: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as Partial<Holder>;
    return typeof h.pid === 'number' && typeof h.host === 'string' && typeof h.since === 'string' ? (h as Holder) : undefined;
  } catch {
    return undefined;
  }
}

function holderGone(holder: Holder, ageMs: number): boolean {
  if (ageMs > WRITER_LOCK_STALE_MS) return true;
  if (holder.host !== hostname()) return false;
  return holder.pid === process.pid || !processRuns(holder.pid);
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
