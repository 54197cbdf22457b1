import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wholeOption } from './options.js';

/**
 * A disk that syncs slowly, for the benchmarks' `--slow-sync-us N`: compiles
 * slow-sync.c and has every process started from here on load it
 * (LD_PRELOAD), so each fdatasync and fsync waits N µs more, one at a time.
 * Only the gateways sync (their audit logs); the node, HAProxy and the load
 * generator never do. Exits with a message when there is no C compiler.
 */
export function slowDownSyncs(benchmark: string, micros: number): void {
  const library = join(mkdtempSync(join(tmpdir(), 'cdsgate-slow-sync-')), 'slow-sync.so');
  try {
    execFileSync('cc', ['-O2', '-shared', '-fPIC', '-o', library, join(import.meta.dirname, 'slow-sync.c'), '-ldl', '-lpthread'], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch {
    console.error(`${benchmark} --slow-sync-us needs a C compiler (cc) to build its sync shim: apt-get install gcc`);
    process.exit(2);
  }
  process.env.LD_PRELOAD = library;
  process.env.CDSGATE_SLOW_SYNC_US = String(micros);
}

/**
 * A benchmark's `--slow-sync-us` option: absent, nothing; else a whole number
 * of microseconds (at least 1), applied to every process started from here.
 */
export function slowSyncOption(benchmark: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const micros = wholeOption(benchmark, 'slow-sync-us', text, 1);
  slowDownSyncs(benchmark, micros);
  return micros;
}
