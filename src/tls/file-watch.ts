import { unwatchFile, watchFile } from 'node:fs';

/** What became of a watched file's change: used, or refused with the previous contents kept in force (a metric label). */
export type ReloadResult = 'applied' | 'refused';

/**
 * Calls `onChange(file)` when one of `files` changes (size or modification
 * time), checked every `intervalMs` by polling: polling sees an atomic rename
 * and a symlink swapped under the path (how certificate managers and
 * Kubernetes update mounted files), which inotify on the old inode would not.
 * The watch keeps no process alive. Returns a function that stops it.
 *
 * The one rule for every file cdsgate reloads without a restart: TLS
 * certificates, keys, CA bundles and CRLs (server-tls.ts, client-tls.ts) and
 * issuers' JWKS files (auth/jwks.ts).
 */
export function watchForChanges(files: readonly string[], onChange: (file: string) => void, intervalMs = 1_000): () => void {
  const unique = [...new Set(files)];
  const listeners = unique.map((file) => {
    const listener = (now: { mtimeMs: number; size: number }, before: { mtimeMs: number; size: number }) => {
      if (now.mtimeMs !== before.mtimeMs || now.size !== before.size) onChange(file);
    };
    watchFile(file, { interval: intervalMs, persistent: false }, listener);
    return { file, listener };
  });
  return () => { for (const { file, listener } of listeners) unwatchFile(file, listener); };
}

/** Where a reload says what became of a change: the log line and the metric of its caller. */
export interface ReloadReport {
  log: { info(o: object, msg: string): void; error(o: object, msg: string): void };
  /** The log messages: the files were applied, or refused with the previous ones kept in force. */
  applied: string;
  refused: string;
  /** Counts each outcome (cdsgate_file_reloads_total). */
  counted?: (result: ReloadResult) => void;
}

/**
 * After a change to any of `files`, reads them all afresh with `read` (which
 * throws when they cannot be used together) and hands the result to `apply`:
 * applied whole, or refused with the previous material kept in force. Either
 * way it is logged and counted.
 */
export function reloadWhenChanged<T>(files: readonly string[], read: () => T, apply: (fresh: T) => void, report: ReloadReport): () => void {
  return watchForChanges(files, (file) => {
    let fresh: T;
    try {
      fresh = read();
    } catch (err) {
      report.counted?.('refused');
      report.log.error({ file, reason: (err as Error).message }, report.refused);
      return;
    }
    apply(fresh);
    report.counted?.('applied');
    report.log.info({ file }, report.applied);
  });
}
