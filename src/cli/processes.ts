import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const CLI_ENTRY = fileURLToPath(new URL('./main.js', import.meta.url));

export interface Spawned {
  child: ChildProcess;
  /** Resolves with the `ports` of the first "ready" log line. */
  ready: Promise<Record<string, number>>;
}

/**
 * V8 flags a gateway process starts with. A larger young generation: under
 * load each request leaves about 57 KB of short-lived garbage, so with V8's
 * default 16 MB semi-space the gateway scavenges every 60–90 ms at 32
 * connections. With 64 MB it scavenges about a quarter as often, each pause
 * longer, the total less: in interleaved A/Bs at 32 connections, req/s
 * 1.03×, 1.12× and 1.10×, CPU per request 1.01×, 0.90× and 0.94×; and
 * after the coalescer's Map fix (scavenges of 1.9 against 4.2 ms) req/s
 * 1.05×, CPU 0.96×, p99 0.96× (docs/PERFORMANCE.md). The young generation
 * grows to it only under load.
 * V8 reads the size once, when the heap is set up, so it must be on the
 * command line; a size the operator set in NODE_OPTIONS is left as it is.
 */
export const GATEWAY_V8_FLAGS: readonly string[] = ['--max-semi-space-size=64'];

/** The V8 flags a child running `command` gets: the gateway's, less any the operator already set in NODE_OPTIONS. */
export function v8FlagsFor(command: 'gateway' | 'node', nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  if (command !== 'gateway') return [];
  const set = new Set(nodeOptions.split(/\s+/).filter(Boolean).map((flag) => flag.split('=')[0]!.replace(/_/g, '-')));
  return GATEWAY_V8_FLAGS.filter((flag) => !set.has(flag.split('=')[0]!));
}

/**
 * Starts `cdsgate <command> --config FILE` as a child process, forwards its
 * log lines, and resolves when it logs that it is ready.
 */
export function spawnCdsgate(command: 'gateway' | 'node', configFile: string, onLine: (line: string) => void, entry = CLI_ENTRY): Spawned {
  // Own process group: a terminal's Ctrl-C reaches only the supervisor, which stops each child exactly once.
  // The stdin pipe is the child's lifeline: it closes if the supervisor dies, and the child then drains and exits.
  // CDSGATE_PROFILE_DIR: each child writes a V8 CPU profile there when it exits (how the benchmarks are profiled);
  // CDSGATE_PROFILE_INTERVAL_US samples more often than V8's default 1 ms (a one-connection request lasts about 1 ms).
  const interval = process.env.CDSGATE_PROFILE_INTERVAL_US;
  const profile = process.env.CDSGATE_PROFILE_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CDSGATE_PROFILE_DIR}`, ...(interval && /^[1-9]\d{0,6}$/.test(interval) ? [`--cpu-prof-interval=${interval}`] : [])]
    : [];
  const child = spawn(process.execPath, [...v8FlagsFor(command), ...profile, entry, command, '--config', configFile], {
    stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { ...process.env, CDSGATE_SUPERVISED: '1' },
  });
  const ready = new Promise<Record<string, number>>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    let isReady = false;
    lines.on('line', (line) => {
      onLine(line);
      // Only the lines before "ready" are read; after it, one per request is forwarded without a parse.
      if (isReady) return;
      try {
        const entry = JSON.parse(line) as { msg?: string; ports?: Record<string, number> };
        if (entry.ports && /ready$/.test(entry.msg ?? '')) {
          isReady = true;
          resolve(entry.ports);
        }
      } catch { /* not JSON: just forward */ }
    });
    createInterface({ input: child.stderr! }).on('line', onLine);
    child.once('exit', (code) => reject(new Error(`cdsgate ${command} exited with code ${code} before it was ready`)));
  });
  ready.catch(() => undefined);
  return { child, ready };
}
