import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, waitFor } from '../helpers/cluster.js';
import { freePortBase } from '../../src/cli/gpu-check.js';

describe('npm start', () => {
  it('prints a KServe call and a CDS Hooks call that work as printed; one Ctrl-C: every process drains once, the final audit head is signed, exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-start-'));
    // Its own process group, as a shell gives a foreground job: Ctrl-C is SIGINT to the whole group.
    const start = spawn(process.execPath, [CLI, 'start'], {
      detached: true, stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CDSGATE_DEV_DIR: dir, CDSGATE_DEV_PORT_BASE: String(await freePortBase()) },
    });
    let output = '';
    start.stdout.on('data', (c: Buffer) => { output += c.toString(); });
    start.stderr.on('data', (c: Buffer) => { output += c.toString(); });
    const exited = new Promise<number | null>((resolve) => start.once('exit', (code) => resolve(code)));
    try {
      await waitFor(() => output.includes('Ctrl-C stops everything'), 60_000, 'the ready banner');
      // The banner's commands, run as a user would paste them (curl from the shell).
      const banner = output.slice(output.indexOf('cdsgate is ready'));
      const kserve = banner.slice(banner.indexOf('TOKEN='), banner.indexOf('The same over gRPC'));
      const cds = banner.slice(banner.indexOf('CDS_TOKEN='), banner.indexOf('Discovery:'));
      const kserveAnswer = JSON.parse(execFileSync('bash', ['-c', kserve], { encoding: 'utf8' })) as { outputs: Array<{ name: string; data: number[] }> };
      expect(kserveAnswer.outputs.find((o) => o.name === 'news2_score')!.data).toEqual([10]);
      const cdsAnswer = JSON.parse(execFileSync('bash', ['-c', cds], { encoding: 'utf8' })) as { cards: Array<{ summary: string; indicator: string }> };
      expect(cdsAnswer.cards.map((c) => [c.summary, c.indicator])).toEqual([['NEWS2 10: high clinical risk', 'critical']]);
      process.kill(-start.pid!, 'SIGINT');
      expect(await exited, output.slice(-3000)).toBe(0);
      const shutdowns = output.split('\n').filter((l) => l.includes('"msg":"shutting down"'));
      expect(shutdowns, 'each of the three processes stops once').toHaveLength(3);
      const heads = readFileSync(join(dir, 'audit', 'heads.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { final: boolean });
      expect(heads.at(-1)!.final).toBe(true);
    } finally {
      if (start.exitCode === null) process.kill(-start.pid!, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
