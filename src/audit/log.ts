import { constants as fsConstants, existsSync, mkdirSync, readdirSync, readFileSync, truncateSync, unlinkSync, writeSync, fdatasyncSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { basename, join } from 'node:path';
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Logger } from '../phi/logger.js';
import { GENESIS_PREV, keyIdOf, lineHash, signCheckpoint } from './chain.js';
import type { AuditEntry, AuditLine, ChainEntry, DispatchEntry, SplitEntry } from './record.js';
import { FsyncPlacement } from './fsync-placement.js';
import { isoNow } from '../iso-time.js';
import { WriterLock } from './writer-lock.js';

export interface AuditLogOptions {
  dir: string;
  signingKey: KeyObject;
  gateway: string;
  checkpointIntervalMs: number;
  rotateBytes: number;
  rotateDaily: boolean;
  /** fdatasync every batch before answering (durable). Off only for measuring its cost. */
  fsync: boolean;
  log: Logger;
  /**
   * How many requests are in progress (between their first stage and their
   * answer), those whose records are being written included. At most one:
   * the gateway is quiet, and a batch is written at once and synced on the
   * event loop's own thread even when the disk is slow, since nothing else is
   * waiting (fsync-placement.ts). More: the batch gathers (gather()).
   */
  inProgress?: () => number;
  /** The longest a batch waits for more records under load (default GATHER_MS; tests set it). */
  gatherMs?: number;
  /** Where each batch's fdatasync runs (tests pin it); by default on the loop while the disk is fast. */
  fsyncPlacement?: FsyncPlacement;
  /** Told how long each batch's fdatasync took and where it ran (the metric). */
  synced?: (placement: 'loop' | 'pool', seconds: number) => void;
}

/**
 * A record to chain, or (no entry) a signed checkpoint of the chain's head,
 * which can only be made once its place in the chain is known. Plain data
 * rather than a closure per record: no closure to allocate per request, and
 * the write path's call no longer meets closures from several sites (V8
 * dropped its optimised code at every checkpoint for that reason).
 */
interface Item {
  /** A record; undefined: a signed checkpoint; null: no record, only a sync of what was written before (syncWrittenLater()). */
  entry: AuditEntry | SplitEntry | DispatchEntry | Exclude<ChainEntry, { type: 'checkpoint' }> | undefined | null;
  final: boolean;
  /** Its append resolves only once it is on disk (false: once it is written, the next sync making it durable). */
  durable: boolean;
}
interface Pending extends Item { resolve: () => void; reject: (err: Error) => void }

/**
 * Under load a batch waits for more records (gather()): at most GATHER_MS, for
 * GATHER_SHARE of the requests in progress, when at least GATHER_FROM are.
 * Chosen by A/B runs at 32 connections (10 interleaved rounds each): waiting
 * for 75% for 2 ms, 90% for 3 ms and 100% for 4 ms gave 11.7, 12.6 and 14.5
 * records per sync against 7–8 without, CPU per request 0.93, 0.89 and 0.93
 * of the build without, req/s 1.01, 1.06 and 0.97; at 4 connections 90% for
 * 3 ms gave 3.9 records per sync against 1.7, CPU 0.85, req/s 1.08.
 */
const GATHER_MS = 3;
const GATHER_SHARE = 0.9;
const GATHER_FROM = 4;
/** The longest a written record waits to be synced when no durable batch comes first. */
const LAZY_SYNC_MS = 10;

/**
 * The file being written is kept this far ahead of its records, in zero
 * bytes written in advance (a preallocated tail), extended once the records
 * come within PREALLOCATE_HEADROOM of its end. An append that grows a file
 * makes its fdatasync commit the new size to the journal too; a write into
 * bytes the file already has does not, and a sync is then the data alone:
 * on the development VM's ext4, 120 µs at p50 against 173 for an append of
 * the same record (`node` loop of write + fdatasync, 2,000 records, three
 * runs each), and at one connection the gateway's p50 0.936 → 0.881 ms
 * (two builds, 6 interleaved rounds). A journal does the same for the same
 * reason (PostgreSQL zero-fills its WAL segments, etcd preallocates its
 * WAL). A batch that extends the tail writes 1 MiB of zeros more and its
 * sync takes about 1 ms longer: once per 1 MiB of records. The tail is cut
 * off when the file is closed (rotation, shutdown); readers stop at the first
 * zero byte, which no JSON line contains (readAuditText), and so does the
 * recovery after a crash.
 */
const PREALLOCATE_BYTES = 1 << 20;
const PREALLOCATE_HEADROOM = 256 * 1024;
/** Opens an audit file for positioned writes (not O_APPEND: the writes land inside the preallocated tail). */
const WRITE_FLAGS = fsConstants.O_RDWR | fsConstants.O_CREAT;

const FILE = /^audit-(\d{6})\.jsonl$/;
export const HEADS_FILE = 'heads.jsonl';
export const auditFileName = (index: number): string => `audit-${String(index).padStart(6, '0')}.jsonl`;

/** The audit files of a directory, oldest first. */
export function auditFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && FILE.test(e.name)).map((e) => e.name).sort().map((f) => join(dir, f));
}

/**
 * The hash chains under a directory: the directory itself when it holds audit
 * files, else each worker-N segment of a gateway with several workers.
 */
export function auditChains(dir: string): Array<{ dir: string; files: string[] }> {
  const own = auditFiles(dir);
  if (own.length > 0) return [{ dir, files: own }];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^worker-\d+$/.test(e.name))
    .sort((a, b) => Number(a.name.slice(7)) - Number(b.name.slice(7)))
    .map((e) => ({ dir: join(dir, e.name), files: auditFiles(join(dir, e.name)) }))
    .filter((c) => c.files.length > 0);
}

/**
 * Append-only, hash-chained, group-committed audit log. `append` resolves only
 * once the record is on disk; concurrent appends share one write and one
 * fdatasync. `appendWritten` resolves once the record is written, and the
 * next sync (at most LAZY_SYNC_MS later) puts it on disk. Any write failure
 * breaks the log for good (fail closed): every later append rejects, so no
 * request is answered without its record.
 */
export class AuditLog {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private broken: Error | undefined;
  private sinceCheckpoint = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly placement: FsyncPlacement;
  /** Armed while written records wait for a sync (syncWrittenLater()). */
  private lazySync: NodeJS.Timeout | undefined;
  /** When the oldest written record that no sync has yet covered was written (performance.now()); undefined: none. */
  private unsyncedSince: number | undefined;
  /** A batch waiting for more records (gather()): how to end the wait early. */
  private gathering: { done: () => void; timer: NodeJS.Timeout } | undefined;
  /** The file's length: its records (`size`) and the zero bytes written ahead of them. */
  private allocated: number;
  /** This process's claim to the directory, released when the log closes. */
  private lock: WriterLock | undefined;
  /**
   * The chain's last line, when its hash is not yet taken (`prev` is then the
   * hash of the line before it). The hash is needed only by the next record:
   * a batch that is only written leaves it to be taken when that record is
   * chained (headHash()), not while the last one's request waits for its
   * answer; at one connection that is the next request's dispatch record,
   * written while its node works. A batch that syncs takes it at once.
   */
  private unhashed: string | undefined;

  private constructor(
    private readonly o: AuditLogOptions,
    private fh: FileHandle,
    private heads: FileHandle,
    private file: string,
    private index: number,
    private size: number,
    private seq: number,
    private prev: string,
    private day: string,
  ) {
    this.placement = o.fsyncPlacement ?? new FsyncPlacement();
    this.allocated = size;
  }

  static async open(o: AuditLogOptions): Promise<AuditLog> {
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    // One writer per directory (writer-lock.ts): records are written at offsets this process knows, not appended.
    const lock = WriterLock.take(o.dir);
    try {
      const log = await AuditLog.openLocked(o);
      log.lock = lock;
      return log;
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  private static async openLocked(o: AuditLogOptions): Promise<AuditLog> {
    recoverHeads(join(o.dir, HEADS_FILE), o.log);
    const heads = await open(join(o.dir, HEADS_FILE), 'a', 0o600);
    const state = recoverTail(o.dir, o.log);
    const today = dayNow();
    if (!state) {
      const file = join(o.dir, auditFileName(1));
      const fh = await open(file, WRITE_FLAGS, 0o600);
      const log = new AuditLog(o, fh, heads, file, 1, 0, -1, GENESIS_PREV, today);
      const publicKey = createPublicKey(o.signingKey).export({ type: 'spki', format: 'pem' }).toString();
      await log.enqueue({ entry: { type: 'genesis', keyId: keyIdOf(o.signingKey), gateway: o.gateway, publicKey }, final: false, durable: true });
      log.startTimer();
      return log;
    }
    const fh = await open(state.file, WRITE_FLAGS, 0o600);
    const log = new AuditLog(o, fh, heads, state.file, state.index, state.size, state.lastSeq, state.lastHash, today);
    if (state.discardedBytes > 0 || !state.cleanShutdown) {
      const reason = state.discardedBytes > 0
        ? 'the previous run stopped during a write; its incomplete last line was removed (no response had been sent for it)'
        : 'the previous run ended without a final checkpoint';
      await log.enqueue({ entry: { type: 'recovered', discardedBytes: state.discardedBytes, reason }, final: false, durable: true });
    }
    log.startTimer();
    return log;
  }

  get healthy(): boolean {
    return !this.broken && !this.closed;
  }

  /** Resolves when the record is durably written; rejects if the log cannot record it. */
  append(entry: AuditEntry | SplitEntry | DispatchEntry): Promise<void> {
    return this.enqueue({ entry, final: false, durable: true });
  }

  /**
   * Resolves once the record is written to the file (the operating system
   * holds it: a crash of this process loses nothing), and makes it durable
   * with the next sync: the next durable append's, or at most LAZY_SYNC_MS
   * later. For a request's own record once its dispatch record is on disk
   * (see the pipeline).
   */
  appendWritten(entry: AuditEntry | SplitEntry): Promise<void> {
    return this.enqueue({ entry, final: false, durable: false });
  }

  /** Signs the current head into the chain and the heads file. */
  checkpoint(final = false): Promise<void> {
    return this.enqueue({ entry: undefined, final, durable: true });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    if (this.lazySync) clearTimeout(this.lazySync);
    if (!this.broken) await this.checkpoint(true).catch(() => undefined);
    this.closed = true;
    await this.flushing;
    // A log that failed may fail this too; its file then keeps the zero bytes, which every reader stops at.
    await this.cutPreallocatedTail().catch(() => undefined);
    try {
      await this.fh.close();
      await this.heads.close();
    } finally {
      this.lock?.release();
    }
  }

  /** Written records wait at most LAZY_SYNC_MS for a sync: the next durable batch's, or this one. */
  private syncWrittenLater(): void {
    this.unsyncedSince ??= performance.now();
    // One timer at a time, not cleared by the syncs that make it needless: at one connection the next request's
    // dispatch record syncs every written record well within the wait, so the timer mostly finds nothing due and
    // re-arms, where one armed and cleared per request would be two timer-list operations per request.
    if (!this.lazySync) this.armLazySync(LAZY_SYNC_MS);
  }

  /**
   * When the timer fires, a sync is made only for a written record that has
   * waited its LAZY_SYNC_MS; one written since the last sync but more
   * recently re-arms the timer for its own due time. At one connection
   * requests come every few milliseconds, each syncing the record written
   * before it, so a record is nearly always waiting when the timer fires:
   * syncing then cost a sync more per 10 ms (0.06 per request in bench:ab
   * at one connection) that nothing needed and that held the event loop.
   */
  private armLazySync(ms: number): void {
    this.lazySync = setTimeout(() => {
      this.lazySync = undefined;
      if (this.unsyncedSince === undefined || !this.healthy) return;
      const dueIn = this.unsyncedSince + LAZY_SYNC_MS - performance.now();
      // Within a timer tick of its due time it is due: a timer fires up to about a millisecond off.
      if (dueIn > 1) this.armLazySync(dueIn);
      else this.enqueue({ entry: null, final: false, durable: true }).catch(() => undefined);
    }, ms);
  }

  /**
   * True when a record appended now would be synced in a batch of its own:
   * the log syncs, and fewer than GATHER_FROM requests are in progress. Then
   * a request's sync is worth overlapping with its node call (a dispatch
   * record, see the pipeline); under more load, batches gather many records
   * per sync and one record per request costs less.
   */
  get syncsAlone(): boolean {
    if (!this.o.fsync) return false;
    const inProgress = this.o.inProgress?.();
    return inProgress !== undefined && inProgress < GATHER_FROM;
  }

  private startTimer(): void {
    this.timer = setInterval(() => {
      if (this.sinceCheckpoint > 0 && this.healthy) this.checkpoint().catch(() => undefined);
    }, this.o.checkpointIntervalMs);
    this.timer.unref();
  }

  private enqueue(item: Item): Promise<void> {
    if (this.broken) return Promise.reject(new Error(`audit log unavailable: ${this.broken.message}`));
    if (this.closed) return Promise.reject(new Error('audit log is closed'));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ entry: item.entry, final: item.final, durable: item.durable, resolve, reject });
      if (this.gathering && this.batchFull()) this.endGathering();
      this.kick();
    });
  }

  /** Starts the flusher unless it runs; when it stops, anything that arrived meanwhile starts it again. */
  private kick(): void {
    if (this.flushing) return;
    this.flushing = this.flush().finally(() => {
      this.flushing = undefined;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async flush(): Promise<void> {
    // Records that need not wait for the disk are written at once: their requests' answers wait for the write.
    if (this.queue.some((item) => item.durable)) await this.gather();
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      try {
        await this.writeChained(batch);
      } catch (err) {
        this.broken = err as Error;
        this.o.log.fatal({ err: (err as Error).message, file: this.file }, 'audit log write failed: refusing further requests');
        for (const item of [...batch, ...this.queue.splice(0)]) item.reject(new Error(`audit log unavailable: ${(err as Error).message}`));
        return;
      }
      for (const item of batch) item.resolve();
      try {
        await this.rotateIfDue();
      } catch (err) {
        this.broken = err as Error;
        this.o.log.fatal({ err: (err as Error).message }, 'audit log rotation failed: refusing further requests');
      }
    }
  }

  /**
   * Lets more records join the batch before it is written and synced: every
   * sync holds the event loop for the disk's flush (about 0.6 ms under load
   * on the development VM) and costs the kernel about 150 µs of CPU, so under
   * load fewer, larger batches leave the loop more time for requests. The
   * records of the requests answered in this turn of the event loop always
   * join (one turn). Then, with GATHER_FROM or more requests in progress and
   * fewer than GATHER_SHARE of them in the batch, it waits for more: until
   * enough have arrived (enqueue ends the wait) or GATHER_MS has passed. Below
   * GATHER_FROM the wait would be for a request that may have only just left
   * for its node, so the batch is written after its one turn. A quiet
   * gateway (one request in progress: one connection) writes at once, since
   * no other record can come.
   */
  private async gather(): Promise<void> {
    if (this.quiet()) return;
    await nextTurn();
    const inProgress = this.o.inProgress;
    if (!inProgress || inProgress() < GATHER_FROM || this.batchFull()) return;
    await new Promise<void>((resolve) => {
      this.gathering = { done: resolve, timer: setTimeout(() => this.endGathering(), this.o.gatherMs ?? GATHER_MS) };
    });
  }

  /** One request in progress at most (one connection): no other record can come to share a batch. */
  private quiet(): boolean {
    const inProgress = this.o.inProgress?.();
    return inProgress !== undefined && inProgress <= 1;
  }

  /** True when the waiting batch holds enough of the requests in progress (or a record that must not wait, a final checkpoint). */
  private batchFull(): boolean {
    const inProgress = this.o.inProgress?.() ?? 0;
    return this.queue.length >= inProgress * GATHER_SHARE || this.queue.some((item) => item.final);
  }

  private endGathering(): void {
    const gathering = this.gathering;
    if (!gathering) return;
    this.gathering = undefined;
    clearTimeout(gathering.timer);
    gathering.done();
  }

  /**
   * Chains the records onto the current head, writes them with one write, and
   * syncs them with one fdatasync when any of them must be on disk before its
   * append resolves (else syncWrittenLater); records signed heads.
   */
  private async writeChained(items: Item[]): Promise<void> {
    // Writing after another gateway took the directory over would overwrite its records (writer-lock.ts).
    if (this.lock && !this.lock.stillHeld()) throw new Error('another gateway took over this audit directory while this one was held up');
    let text = '';
    let seq = this.seq, prev = this.headHash(), sinceCheckpoint = this.sinceCheckpoint;
    const heads: string[] = [];
    let durable = false;
    /** The batch's latest line, hashed once a record after it needs the hash (see `unhashed`) or the batch syncs. */
    let unhashed: string | undefined;
    for (const item of items) {
      if (item.durable) durable = true;
      if (item.entry === null) continue;
      if (unhashed !== undefined) prev = lineHash(unhashed);
      seq += 1;
      let line: string;
      if (item.entry === undefined) {
        const checkpoint = this.signedCheckpoint(seq, prev, item.final);
        line = chainedLine(seq, prev, checkpoint);
        heads.push(JSON.stringify({ file: basename(this.file), seq, prev, keyId: checkpoint.keyId, signature: checkpoint.signature, final: checkpoint.final }));
        sinceCheckpoint = 0;
      } else {
        line = chainedLine(seq, prev, item.entry);
        sinceCheckpoint += 1;
      }
      unhashed = line;
      text += `${line}\n`;
    }
    // A batch that waits for its sync takes its last line's hash now: its records wait for the disk anyway. One that
    // is only written (a request's own record once its dispatch record is on disk, just before its answer) leaves the
    // hash to the next record, at one connection the next request's dispatch record, made while its node works. So
    // neither line of a quiet gateway's request is hashed between the node's answer and the caller's.
    if (durable && this.o.fsync && unhashed !== undefined) {
      prev = lineHash(unhashed);
      unhashed = undefined;
    }
    const bytes = Buffer.from(text);
    if (bytes.length > 0) {
      writeAll(this.fh.fd, bytes, this.size);
      this.preallocate(this.size + bytes.length);
    }
    if (this.o.fsync && !durable) {
      this.syncWrittenLater();
    } else if (this.o.fsync) {
      this.unsyncedSince = undefined;
      // On this thread while the disk is fast, saving the thread pool's two hand-offs per batch (fsync-placement.ts
      // has the measurements); on the pool while its syncs stay slow, so a slow disk does not hold the event loop.
      const started = performance.now();
      if (this.placement.onLoop(this.queue.length === 0 && this.quiet(), started)) {
        fdatasyncSync(this.fh.fd);
        const now = performance.now();
        this.placement.tookOnLoop(now - started, now);
        this.o.synced?.('loop', (now - started) / 1000);
      } else {
        await this.fh.datasync();
        this.o.synced?.('pool', (performance.now() - started) / 1000);
      }
    }
    // Only once the lines are written (and, for a batch that waits for the disk, synced) does the in-memory head move.
    this.seq = seq;
    if (text !== '') {
      this.prev = prev;
      this.unhashed = unhashed;
    }
    this.sinceCheckpoint = sinceCheckpoint;
    this.size += bytes.length;
    if (heads.length > 0) {
      writeAll(this.heads.fd, Buffer.from(`${heads.join('\n')}\n`), null);
      if (this.o.fsync) await this.heads.datasync();
    }
  }

  /** The hash of the chain's last line, which the next record carries as `prev`. */
  private headHash(): string {
    if (this.unhashed !== undefined) {
      this.prev = lineHash(this.unhashed);
      this.unhashed = undefined;
    }
    return this.prev;
  }

  /**
   * Keeps zero bytes written ahead of the records (PREALLOCATE_BYTES), so
   * that their syncs need not record a new file size. Written in the same
   * batch, before its sync: a batch that extends the tail syncs the zeros too.
   */
  private preallocate(recordsEnd: number): void {
    if (recordsEnd + PREALLOCATE_HEADROOM <= this.allocated) return;
    const from = Math.max(this.allocated, recordsEnd);
    writeAll(this.fh.fd, Buffer.alloc(recordsEnd + PREALLOCATE_BYTES - from), from);
    this.allocated = recordsEnd + PREALLOCATE_BYTES;
  }

  /** A file that is closed holds its records only: the zero bytes ahead of them are cut off (and the cut synced). */
  private async cutPreallocatedTail(): Promise<void> {
    if (this.allocated === this.size) return;
    await this.fh.truncate(this.size);
    if (this.o.fsync) await this.fh.datasync();
    this.allocated = this.size;
  }

  private signedCheckpoint(seq: number, prev: string, final: boolean) {
    return { type: 'checkpoint' as const, keyId: keyIdOf(this.o.signingKey), signature: signCheckpoint(this.o.signingKey, seq, prev), final };
  }

  /** By size or by day: close the file with a signed head, continue the chain in the next one. */
  private async rotateIfDue(): Promise<void> {
    const today = dayNow();
    if (this.closed || this.broken) return;
    if (this.size < this.o.rotateBytes && !(this.o.rotateDaily && today !== this.day)) return;
    const previousFile = basename(this.file);
    await this.writeChained([{ entry: undefined, final: false, durable: true }]);
    await this.cutPreallocatedTail();
    await this.fh.close();
    this.index += 1;
    this.file = join(this.o.dir, auditFileName(this.index));
    this.fh = await open(this.file, WRITE_FLAGS, 0o600);
    this.size = 0;
    this.allocated = 0;
    this.day = today;
    await this.writeChained([{ entry: { type: 'rotation', previousFile }, final: false, durable: true }]);
  }
}

/**
 * Writes a batch into the page cache synchronously: about 10 µs for a batch
 * of records, where the thread-pool round trip of an async write cost about
 * 200 µs per batch on the 2-core development VM (npm run bench:audit measures
 * one append at a time: 1.2 ms → 0.5 ms with fdatasync, 0.3 → 0.03 ms without). The fdatasync, which waits
 * for the disk, runs where FsyncPlacement says.
 */
function writeAll(fd: number, bytes: Buffer, position: number | null): void {
  let offset = 0;
  while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset, position === null ? null : position + offset);
}

/**
 * An audit file's text: its bytes up to the first zero byte. The file being
 * written ends in zero bytes written ahead of its records (PREALLOCATE_BYTES);
 * JSON text never holds a zero byte, so the first one is where the records
 * end. After a power cut during a write of records (which was not
 * acknowledged) a block of it can be lost, still zero, with later bytes of
 * the write kept: `beyondEnd` then counts the bytes from the first zero byte
 * to the last non-zero byte, both included (0: no non-zero byte follows),
 * and the line the zero bytes cut short is incomplete, as an interrupted
 * append's.
 */
export function readAuditText(file: string): { text: string; beyondEnd: number; fileBytes: number } {
  const bytes = readFileSync(file);
  const end = bytes.indexOf(0);
  if (end === -1) return { text: bytes.toString('utf8'), beyondEnd: 0, fileBytes: bytes.length };
  let last = bytes.length - 1;
  while (last > end && bytes[last] === 0) last--;
  return { text: bytes.subarray(0, end).toString('utf8'), beyondEnd: last === end ? 0 : last - end + 1, fileBytes: bytes.length };
}

/**
 * The record as one JSON line with the chain fields first: the same text as
 * JSON.stringify({ seq, time, prev, ...entry }), without copying the entry
 * into a new object on every request (entries never carry these three keys).
 * A split entry's early fields come already serialised, then its outcome's.
 */
function chainedLine(seq: number, prev: string, entry: object | SplitEntry): string {
  const chain = `{"seq":${seq},"time":"${isoNow()}","prev":${JSON.stringify(prev)}`;
  if ('early' in entry) return `${chain},${entry.early.members},${JSON.stringify(entry.outcome).slice(1)}`;
  const fields = JSON.stringify(entry);
  return `${chain}${fields === '{}' ? '}' : `,${fields.slice(1)}`}`;
}

/** Today's date (UTC), for daily rotation: checked after every batch. */
const dayNow = (): string => isoNow().slice(0, 10);

/**
 * A crash (or a power cut before its sync) can leave part of a signed head at
 * the end of heads.jsonl; the next head appended after it would make one line
 * of both that no verifier can read. The part is cut off: its checkpoint is in
 * the chain either way, and the chain, not this file, is the record.
 */
function recoverHeads(file: string, log: Logger): void {
  if (!existsSync(file)) return;
  const { discarded } = cutIncompleteLastLine(file, 0);
  if (discarded > 0) log.warn({ file, discardedBytes: discarded }, 'removed an incomplete final signed head');
}

/**
 * Cuts a line without its newline off the end of a JSON Lines file (what a
 * write interrupted by a crash leaves), and an audit file's preallocated
 * tail with it (readAuditText): `discarded` counts the bytes cut from the
 * incomplete line to the last non-zero byte. Bytes beyond the first zero byte
 * are cut only within `beyondLimit` of it, as far as one unfinished write
 * could reach: a zero byte further from the end is damage (or an edit), and
 * cutting there would remove acknowledged records, so the file is left as it
 * is and the gateway does not start.
 */
function cutIncompleteLastLine(file: string, beyondLimit: number): { kept: string; discarded: number } {
  const { text, beyondEnd, fileBytes } = readAuditText(file);
  if (beyondEnd > beyondLimit) {
    throw new Error(`audit log ${file} has a zero byte ${beyondEnd} bytes before the end of its records, more than an unfinished write leaves; run "cdsgate audit verify" before starting`);
  }
  const end = text.lastIndexOf('\n') + 1;
  const kept = text.slice(0, end);
  const keptBytes = Buffer.byteLength(kept);
  if (keptBytes !== fileBytes) truncateSync(file, keptBytes);
  return { kept, discarded: Buffer.byteLength(text.slice(end)) + beyondEnd };
}

interface TailState { file: string; index: number; size: number; lastSeq: number; lastHash: string; discardedBytes: number; cleanShutdown: boolean }

/**
 * Finds where the chain ends. A crash can leave half a line at the end of the
 * newest file; that line's request was never answered (answers wait for the
 * write), so it is cut off and the cut is recorded in the chain.
 */
function recoverTail(dir: string, log: Logger): TailState | undefined {
  const files = auditFiles(dir);
  let discardedBytes = 0;
  while (files.length > 0) {
    const file = files[files.length - 1]!;
    const { kept, discarded } = cutIncompleteLastLine(file, PREALLOCATE_BYTES);
    if (discarded > 0) {
      discardedBytes += discarded;
      log.warn({ file, discardedBytes }, 'removed an incomplete final audit line');
    }
    if (kept.length === 0) {
      unlinkSync(file);
      files.pop();
      continue;
    }
    const lastLine = kept.slice(kept.lastIndexOf('\n', kept.length - 2) + 1, kept.length - 1);
    let last: AuditLine;
    try {
      last = JSON.parse(lastLine) as AuditLine;
    } catch {
      throw new Error(`audit log ${file} ends with a line that is not JSON; run "cdsgate audit verify" before starting`);
    }
    const index = Number(FILE.exec(basename(file))![1]);
    return {
      file, index, size: Buffer.byteLength(kept), lastSeq: last.seq, lastHash: lineHash(lastLine), discardedBytes,
      cleanShutdown: last.type === 'checkpoint' && (last as { final?: boolean }).final === true,
    };
  }
  return undefined;
}
