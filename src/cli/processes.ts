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
  // V8's default young generation (16 MB semi-spaces). A 64 MB one scavenged a quarter as often, but once coalesced
  // requests no longer outlived their scavenges (coalescer.ts, flush) it bought nothing measurable (CPU per request
  // 0.96–1.03×, req/s 0.95–1.05× in four interleaved A/Bs at 32 connections) for 75–100 MB more resident memory per
  // gateway process (docs/PERFORMANCE.md, 8 December).
  const child = spawn(process.execPath, [...profile, entry, command, '--config', configFile], {
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
