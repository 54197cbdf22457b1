import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CdsError } from '../../src/errors.js';
import { loadRepository, type LoadedModel } from '../../src/node/repository.js';
import { SessionPool, modelKey } from '../../src/node/session-pool.js';
import { runAll } from '../../src/cli/gpu-check.js';
import { openSession } from '../../src/node/provider.js';
import type { Tensor } from '../../src/tensor/datatypes.js';
import { MODELS } from '../helpers/cluster.js';

/**
 * A model whose config asks for `inline` runs on the pool's own thread, with
 * no worker (the worker path runs in the node processes of the integration
 * tests): its answers are the model's own, and the pool's rules for a run —
 * deadline, cancellation, the executed callback — hold for it as for workers.
 */
let news2: LoadedModel;
let pool: SessionPool;
const executed: Array<{ model: string; instance: number }> = [];

beforeAll(async () => {
  news2 = loadRepository(MODELS, ['news2'])[0] as LoadedModel;
  expect(news2.status).toBe('loaded');
  expect(news2.config.inline).toBe(true);
  pool = new SessionPool({
    models: [news2], provider: { name: 'cpu' }, workers: 1, intraOpThreads: 1, maxQueue: 8,
    onExecuted: (model, instance) => executed.push({ model, instance }),
  });
  await pool.warmUp();
});
afterAll(async () => {
  await pool?.close();
});

const KEY = () => modelKey(news2.name, news2.version);
const OUTPUTS = ['news2_score', 'subscores', 'risk'];
const vitals = (rows: number[][]): Tensor => ({ name: 'vitals', datatype: 'FP32', shape: [rows.length, 7], data: Float32Array.from(rows.flat()) });

describe('session pool: inline models', () => {
  it('answers as the model does (a direct onnxruntime session), for one row and for a batch', async () => {
    const rows = [[24, 93, 1, 105, 115, 0, 38.5], [16, 97, 0, 125, 72, 0, 37.0], [7, 85, 1, 85, 135, 1, 34.9]];
    const session = await openSession(news2.bytes, { name: 'cpu' }, 1);
    try {
      for (const batch of [rows.slice(0, 1), rows]) {
        const expected = await runAll(session, news2, Float32Array.from(batch.flat()));
        const answer = await pool.run(KEY(), [vitals(batch)], OUTPUTS, Date.now() + 10_000);
        expect(answer.map((t) => t.name)).toEqual(OUTPUTS);
        expect(answer.map((t) => Array.from(t.data as ArrayLike<number | bigint>, Number))).toEqual(expected);
        expect(answer[0]!.shape).toEqual([batch.length, 1]);
      }
    } finally {
      await session.release();
    }
    expect(executed.filter((e) => e.model === KEY())).toEqual(executed.map(() => ({ model: KEY(), instance: 0 })));
  });

  it('the caller\'s data is not handed to onnxruntime: a tensor changed after the call does not change the answer', async () => {
    const input = vitals([[24, 93, 1, 105, 115, 0, 38.5]]);
    const answer = pool.run(KEY(), [input], ['news2_score'], Date.now() + 10_000);
    (input.data as Float32Array).fill(0);
    expect(Array.from((await answer)[0]!.data as Float32Array)).toEqual([10]);
  });

  it('refuses work whose deadline has passed, and work its caller cancelled, without running it', async () => {
    const before = executed.length;
    await expect(pool.run(KEY(), [vitals([[24, 93, 1, 105, 115, 0, 38.5]])], OUTPUTS, Date.now() - 1)).rejects.toMatchObject({ kind: 'deadline_exceeded' });
    const aborted = new AbortController();
    aborted.abort();
    await expect(pool.run(KEY(), [vitals([[24, 93, 1, 105, 115, 0, 38.5]])], OUTPUTS, Date.now() + 10_000, aborted.signal)).rejects.toMatchObject({ kind: 'cancelled' });
    expect(executed.length).toBe(before);
  });

  it('an input onnxruntime refuses is an internal error, and the next run is unharmed', async () => {
    const wrong: Tensor = { name: 'vitals', datatype: 'FP32', shape: [1, 6], data: new Float32Array(6) };
    const err = await pool.run(KEY(), [wrong], OUTPUTS, Date.now() + 10_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CdsError);
    expect(err).toMatchObject({ kind: 'internal' });
    expect((err as Error).message).toMatch(/^onnxruntime failed/);
    const answer = await pool.run(KEY(), [vitals([[24, 93, 1, 105, 115, 0, 38.5]])], ['news2_score'], Date.now() + 10_000);
    expect(Array.from(answer[0]!.data as Float32Array)).toEqual([10]);
  });

  it('an inline model whose runs hold the thread too long is reported once, with its typical run time', async () => {
    const reports: Array<{ model: string; typicalMs: number }> = [];
    // A limit of 0 ms: every run is over it, so the report does not hang on how fast this machine is.
    const strict = new SessionPool({ models: [news2], provider: { name: 'cpu' }, workers: 1, intraOpThreads: 1, maxQueue: 8, slowInlineMs: 0, onSlowInline: (model, typicalMs) => reports.push({ model, typicalMs }) });
    await strict.warmUp();
    try {
      for (let i = 0; i < 3; i++) await strict.run(KEY(), [vitals([[24, 93, 1, 105, 115, 0, 38.5]])], ['news2_score'], Date.now() + 10_000);
    } finally {
      await strict.close();
    }
    expect(reports).toHaveLength(1);
    expect(reports[0]!.model).toBe(KEY());
    expect(reports[0]!.typicalMs).toBeGreaterThan(0);
  });

  it('no worker thread is started for a pool of inline models', () => {
    expect(pool.threads).toBe(0);
    expect(pool.queued).toBe(0);
  });
});
