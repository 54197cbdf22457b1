import { describe, expect, it } from 'vitest';
import { DynamicBatcher } from '../../src/node/batcher.js';
import { concatRows, sliceRows } from '../../src/tensor/rows.js';
import type { Tensor } from '../../src/tensor/datatypes.js';
import { CdsError } from '../../src/errors.js';

/** A fake session: doubles every value, remembers each run's row count. */
function fakeRun() {
  const runs: number[] = [];
  const run = async (inputs: Tensor[], outputs: string[]): Promise<Tensor[]> => {
    runs.push(inputs[0]!.shape[0]!);
    const x = inputs[0]!.data as Float32Array;
    return outputs.map((name) => ({ name, datatype: 'FP32' as const, shape: [...inputs[0]!.shape], data: x.map((v) => v * 2) }));
  };
  return { runs, run };
}
const rowsOf = (values: number[][]): Tensor[] => [{ name: 'x', datatype: 'FP32', shape: [values.length, values[0]!.length], data: Float32Array.from(values.flat()) }];
const later = (ms = 50) => Date.now() + ms * 100;

describe('dynamic batcher', () => {
  it('merges concurrent requests into one run and gives each caller exactly its rows', async () => {
    const { runs, run } = fakeRun();
    const b = new DynamicBatcher(run, { maxBatchSize: 64, preferredBatchSizes: [], maxQueueDelayUs: 20_000, maxQueueSize: 100 });
    const results = await Promise.all([[[1, 2]], [[3, 4], [5, 6]], [[7, 8]]].map((v) => b.infer(rowsOf(v), ['y'], later())));
    expect(runs).toEqual([4]);
    expect(results.map((r) => Array.from(r[0]!.data as Float32Array))).toEqual([[2, 4], [6, 8, 10, 12], [14, 16]]);
    expect(results.map((r) => r[0]!.shape)).toEqual([[1, 2], [2, 2], [1, 2]]);
  });

  it('goes out at the preferred size without waiting, and never exceeds the maximum batch', async () => {
    const { runs, run } = fakeRun();
    const b = new DynamicBatcher(run, { maxBatchSize: 3, preferredBatchSizes: [2], maxQueueDelayUs: 10_000_000, maxQueueSize: 100 });
    await Promise.all([b.infer(rowsOf([[1, 1]]), ['y'], later()), b.infer(rowsOf([[2, 2]]), ['y'], later())]);
    expect(runs).toEqual([2]);
    const big = new DynamicBatcher(run, { maxBatchSize: 3, preferredBatchSizes: [], maxQueueDelayUs: 5_000, maxQueueSize: 100 });
    await Promise.all([big.infer(rowsOf([[1, 1], [1, 1]]), ['y'], later()), big.infer(rowsOf([[2, 2], [2, 2]]), ['y'], later())]);
    expect(runs.slice(1)).toEqual([2, 2]);
  });

  it('requests asking for different outputs or with different shapes are not merged', async () => {
    const { runs, run } = fakeRun();
    const b = new DynamicBatcher(run, { maxBatchSize: 64, preferredBatchSizes: [], maxQueueDelayUs: 5_000, maxQueueSize: 100 });
    await Promise.all([b.infer(rowsOf([[1, 1]]), ['y'], later()), b.infer(rowsOf([[1, 1]]), ['z'], later()), b.infer(rowsOf([[1, 1, 1]]), ['y'], later())]);
    expect(runs.sort()).toEqual([1, 1, 1]);
  });

  it('a request whose deadline passed or whose caller cancelled is dropped before the run, never failing its neighbours', async () => {
    const { runs, run } = fakeRun();
    const b = new DynamicBatcher(run, { maxBatchSize: 64, preferredBatchSizes: [], maxQueueDelayUs: 30_000, maxQueueSize: 100 });
    const cancel = new AbortController();
    const outcomes = await Promise.allSettled([
      b.infer(rowsOf([[1, 1]]), ['y'], later()),
      b.infer(rowsOf([[2, 2]]), ['y'], Date.now() + 5), // expires while it waits
      b.infer(rowsOf([[3, 3]]), ['y'], later(), cancel.signal),
      (cancel.abort(), b.infer(rowsOf([[4, 4]]), ['y'], later())),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect(((outcomes[1] as PromiseRejectedResult).reason as CdsError).kind).toBe('deadline_exceeded');
    expect(((outcomes[2] as PromiseRejectedResult).reason as CdsError).kind).toBe('cancelled');
    expect(runs).toEqual([2]);
    expect(Array.from((outcomes[3] as PromiseFulfilledResult<Tensor[]>).value[0]!.data as Float32Array)).toEqual([8, 8]);
  });

  it('a full queue answers RESOURCE_EXHAUSTED at once', async () => {
    const { run } = fakeRun();
    const b = new DynamicBatcher(run, { maxBatchSize: 64, preferredBatchSizes: [], maxQueueDelayUs: 20_000, maxQueueSize: 1 });
    const first = b.infer(rowsOf([[1, 1]]), ['y'], later());
    await expect(b.infer(rowsOf([[2, 2]]), ['y'], later())).rejects.toMatchObject({ kind: 'resource_exhausted' });
    await first;
  });

  it('concatenates and slices every datatype the models use, BYTES and 64-bit included', () => {
    const ints: Tensor[] = [{ name: 'i', datatype: 'INT64', shape: [1, 2], data: BigInt64Array.from([1n, 2n]) }, { name: 'i', datatype: 'INT64', shape: [2, 2], data: BigInt64Array.from([3n, 4n, 5n, 6n]) }];
    const joined = concatRows(ints);
    expect(joined.shape).toEqual([3, 2]);
    expect(Array.from(sliceRows(joined, 1, 2, 3).data as BigInt64Array)).toEqual([3n, 4n, 5n, 6n]);
    const bytes: Tensor[] = [{ name: 'b', datatype: 'BYTES', shape: [1, 1], data: [Uint8Array.from([1])] }, { name: 'b', datatype: 'BYTES', shape: [1, 1], data: [Uint8Array.from([2])] }];
    expect((sliceRows(concatRows(bytes), 1, 1, 2).data as Uint8Array[])[0]).toEqual(Uint8Array.from([2]));
  });
});
