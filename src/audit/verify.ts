import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { GENESIS_PREV, checkpointValid, keyIdOf, lineHash, loadVerifyKey } from './chain.js';
import { HEADS_FILE, readAuditText } from './log.js';

export interface VerifyReport {
  ok: boolean;
  /** Records checked and found in order (genesis included). */
  records: number;
  lastSeq: number;
  checkpoints: number;
  /** Records after the last signed checkpoint: protected by the chain only. */
  unsignedTail: number;
  /**
   * Requests with a dispatch record and no record of their own after it: still
   * in progress on a running gateway, or the gateway stopped before their
   * record reached the disk (its outcome is unknown; the dispatch record says
   * who sent whose data where, and why).
   */
  unfinished: number;
  /** The first problem, naming the record; undefined when the log verifies. */
  problem?: string;
  warnings: string[];
}

interface Located { seq?: number; file: string; line: number; text: string }

/**
 * Checks a whole audit log, file by file in order: every line parses, seq runs
 * 0, 1, 2… without gaps or repeats, every `prev` is the hash of the line
 * before, every checkpoint signature verifies, and the signed heads in
 * heads.jsonl are all present. Stops at the first bad record and names it.
 * It may run while the gateway writes the log: what was written after it
 * started reading is simply not checked.
 */
export function verifyAuditLog(files: string[], options: {
  publicKey?: KeyObject;
  headsFile?: string;
  /**
   * Lists the log's files afresh (for a directory): a gateway that rotated
   * after `files` was listed has a signed head in a file not on it, and the
   * log is checked once more with the files there are now. A head is accepted
   * only where its checkpoint is found, so an added file hides nothing.
   */
  relist?: () => string[];
} = {}): VerifyReport {
  const report: VerifyReport = { ok: false, records: 0, lastSeq: -1, checkpoints: 0, unsignedTail: 0, unfinished: 0, warnings: [] };
  const fail = (problem: string): VerifyReport => ({ ...report, problem });
  if (files.length === 0) return fail('no audit files given');

  // The signed heads are read before the chain: the gateway writes (and syncs) a checkpoint into the chain before
  // its head goes into heads.jsonl, so every head read now is in the chain read next, even while the gateway runs.
  // Read the other way round, a checkpoint made in between looked like a truncated log.
  const headsFile = options.headsFile ?? join(dirname(files[0]!), HEADS_FILE);
  const headsText = existsSync(headsFile) ? readFileSync(headsFile, 'utf8') : undefined;

  const lines: Located[] = [];
  files.forEach((file, fileIndex) => {
    // Up to the first zero byte: the file being written ends in zero bytes written ahead of its records (log.ts).
    const { text, beyondEnd } = readAuditText(file);
    const parts = text.split('\n');
    const torn = parts.pop();
    parts.forEach((t, i) => lines.push({ file, line: i + 1, text: t }));
    const last = fileIndex === files.length - 1;
    if (torn) {
      if (last) report.warnings.push(`${basename(file)} ends with an incomplete line (${Buffer.byteLength(torn)} bytes): the gateway stopped during a write; that record was never acknowledged`);
      else lines.push({ file, line: parts.length + 1, text: torn });
    }
    // Only the newest file can end inside a write a crash interrupted; in an earlier one, bytes after a zero byte
    // are records that no reader would see, so the log does not verify (the chain's next line names the gap).
    if (beyondEnd > 0) {
      if (last) report.warnings.push(`${basename(file)} has ${beyondEnd} bytes from a zero byte to its last record byte: a write the gateway did not finish (a power cut), never acknowledged; the gateway removes them when it starts, if they end within 1 MiB of it`);
      else lines.push({ file, line: parts.length + (torn ? 2 : 1), text: `(${beyondEnd} bytes from a zero byte to the last record byte)` });
    }
  });
  const where = (l: Located) => `${basename(l.file)}:${l.line}`;
  const seqs = lines.map((l) => {
    try {
      const seq = (JSON.parse(l.text) as { seq?: unknown }).seq;
      return typeof seq === 'number' ? seq : undefined;
    } catch {
      return undefined;
    }
  });

  let key = options.publicKey;
  let prev = GENESIS_PREV;
  let prevLine: Located | undefined;
  let lastCheckpointSeq = -1;
  const checkpoints = new Map<number, { prev: string; signature: string }>();
  /** requestIds of dispatch records whose request record has not come yet. */
  const dispatched = new Set<unknown>();

  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const expected = report.lastSeq + 1;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(l.text) as Record<string, unknown>;
    } catch {
      return fail(`record ${expected} (${where(l)}) is not valid JSON: it was edited or damaged`);
    }
    const seq = record.seq;
    if (seq !== expected) {
      if (typeof seq !== 'number') return fail(`record ${expected} (${where(l)}) has no sequence number: it was edited`);
      if (seq < expected) return fail(`record at ${where(l)} repeats seq ${seq} after record ${expected - 1}: a record was inserted or duplicated`);
      const later = seqs.indexOf(expected, i + 1);
      return later >= 0
        ? fail(`record ${expected} is out of order: it appears at ${where(lines[later]!)}, after record ${seq} (${where(l)}): records were reordered`)
        : fail(`record ${expected} is missing: ${where(l)} holds record ${seq}: records were deleted`);
    }
    if (record.prev !== prev) {
      return prevLine
        ? fail(`record ${expected - 1} (${where(prevLine)}) was modified: its hash does not match the prev of record ${expected} (${where(l)}), or a record was inserted before ${expected}`)
        : fail(`record 0 (${where(l)}) is not a genesis record (prev must be ${GENESIS_PREV.slice(0, 8)}…)`);
    }
    const type = record.type;
    if (seq === 0) {
      if (type !== 'genesis') return fail(`record 0 (${where(l)}) is not a genesis record`);
      const logKey = typeof record.publicKey === 'string' ? loadVerifyKey(record.publicKey) : undefined;
      if (key && record.keyId !== keyIdOf(key)) return fail(`record 0 (${where(l)}) names signing key ${String(record.keyId)}, not the trusted key ${keyIdOf(key)}`);
      if (!key) {
        key = logKey;
        report.warnings.push('checkpoint signatures were checked against the public key recorded in the log itself; pass --public-key to check them against a key you trust');
      }
    } else if (l.line === 1 && type !== 'rotation') {
      return fail(`record ${seq} (${where(l)}) starts a file but is not a rotation record: files are missing or out of order`);
    }
    if (type === 'checkpoint') {
      const signature = String(record.signature ?? '');
      if (!key || !checkpointValid(key, seq, prev, signature)) return fail(`checkpoint record ${seq} (${where(l)}) has an invalid signature: the records before it were altered or re-signed`);
      checkpoints.set(seq, { prev, signature });
      lastCheckpointSeq = seq;
      report.checkpoints += 1;
    }
    if (type === 'dispatch') dispatched.add(record.requestId);
    else if (type === 'request') dispatched.delete(record.requestId);
    prev = lineHash(l.text);
    prevLine = l;
    report.records += 1;
    report.lastSeq = seq;
  }

  report.unfinished = dispatched.size;
  if (report.unfinished > 0) {
    report.warnings.push(`${report.unfinished} request(s) have a dispatch record and no record of their own: still in progress, or the gateway stopped before their record reached the disk (their outcome is unknown)`);
  }
  report.unsignedTail = report.lastSeq - lastCheckpointSeq;
  if (report.unsignedTail > 0) {
    report.warnings.push(`${report.unsignedTail} record(s) after the last signed checkpoint (record ${lastCheckpointSeq}) are protected by the chain only: the gateway did not shut down cleanly, or the log was cut after them`);
  }

  // Signed heads kept beside the log: a tail cut off together with its checkpoints still shows here.
  if (headsText !== undefined) {
    const headLines = headsText.split('\n');
    // A last line without its newline: a whole head is checked like the others; a part of one (being written as the
    // file was read, on a live gateway) is not a head yet. Leaving one out hides no more than deleting a line would.
    const tornHead = headLines.pop();
    if (tornHead && parsesAsJson(tornHead)) headLines.push(tornHead);
    else if (tornHead) report.warnings.push(`${basename(headsFile)} ends with an incomplete line (${Buffer.byteLength(tornHead)} bytes): a signed head being written, or cut off; it was not checked`);
    for (const [n, text] of headLines.filter(Boolean).entries()) {
      let head: { seq: number; prev: string; signature: string };
      try {
        head = JSON.parse(text) as typeof head;
      } catch {
        return fail(`${basename(headsFile)}:${n + 1} is not valid JSON`);
      }
      if (head.seq > report.lastSeq) {
        if (!key || !checkpointValid(key, head.seq, head.prev, head.signature)) continue; // not ours: ignore
        const now = options.relist?.();
        if (now && now.length > files.length) return verifyAuditLog(now, { ...options, relist: undefined });
        return fail(`the log was truncated: a signed head covers record ${head.seq - 1} (checkpoint ${head.seq}) but the log ends at record ${report.lastSeq}`);
      }
      const found = checkpoints.get(head.seq);
      if (!found || found.prev !== head.prev || found.signature !== head.signature) {
        return fail(`signed head ${basename(headsFile)}:${n + 1} (checkpoint ${head.seq}) does not match the log: records up to ${head.seq - 1} were altered`);
      }
    }
  } else {
    report.warnings.push(`no ${HEADS_FILE} beside the log: a cut-off tail can only be detected from the checkpoints in the log itself`);
  }
  return { ...report, ok: true };
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
