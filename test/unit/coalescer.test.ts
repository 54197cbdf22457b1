import { describe, expect, it } from 'vitest';
import { CdsError } from '../../src/errors.js';
import type { InferRequest, InferResult, ModelMetadata, ParameterValue } from '../../src/kserve/types.js';
import { CoalescingNodeClient, MAX_JOINED_BYTES, type CoalescingEvents } from '../../src/routing/coalescer.js';
import type { NodeAddress, NodeClientLike } from '../../src/routing/node-client.js';
import { NodeFailure } from '../../src/routing/retry-policy.js';
import { mulberry32 } from '../../src/seeded-random.js';
import type { Tensor } from '../../src/tensor/datatypes.js';

/**
 * The coalescing node client against an in-memory node that scores each row
 * on its own (so a row answered to the wrong caller shows), records every
 * call it receives, and can be told to refuse, fail or hold calls.
 */
interface Call { request: InferRequest; deadline: number; requestId: string; signal: AbortSignal | undefined }

class RowNode implements NodeClientLike {
  readonly node: NodeAddress = { id: 'node-0', address: 'h:1', serverName: 'n0', protocol: 'rest' };
  readonly calls: Call[] = [];
  /** Calls held until released (to keep a call out, or to cancel or time out members while one is). */
  hold = false;
  readonly held: Array<() => void> = [];
  /** Refuse any call carrying a row whose first value is negative, as a node refuses a value out of range. */
  refuseNegative = true;
  failAll: Error | undefined;
  /** Answer with an output that has no batch dimension. */
  scalarOutput = false;

  infer(request: InferRequest, deadline: number, requestId: string, signal?: AbortSignal): Promise<InferResult> {
    this.calls.push({ request, deadline, requestId, signal });
    const answer = (): InferResult => {
      if (this.failAll) throw this.failAll;
      const x = request.inputs[0]!;
      const data = x.data as Float32Array;
      const width = x.shape[1]!;
      const rows = x.shape[0]!;
      const sums = new Float32Array(rows);
      for (let r = 0; r < rows; r++) {
        if (this.refuseNegative && data[r * width]! < 0) throw new CdsError('invalid_argument', `row ${r} is out of range`);
        for (let c = 0; c < width; c++) sums[r]! += data[r * width + c]!;
      }
      const outputs: Tensor[] = this.scalarOutput
        ? [{ name: 'total', datatype: 'FP32', shape: [], data: Float32Array.of(sums.reduce((a, b) => a + b, 0)) }]
        : [{ name: 'sum', datatype: 'FP32', shape: [rows, 1], data: sums }, { name: 'twice', datatype: 'FP32', shape: [rows, 1], data: sums.map((s) => 2 * s) }];
      return { model: request.model, version: '1', ...(request.id ? { id: request.id } : {}), parameters: { rows }, outputs };
    };
    return new Promise((resolve, reject) => {
      const go = () => { try { resolve(answer()); } catch (err) { reject(err); } };
      if (!this.hold) return void queueMicrotask(go);
      this.held.push(go);
      signal?.addEventListener('abort', () => reject(new CdsError('cancelled', 'cancelled by the gateway')), { once: true });
    });
  }
  async serverReady(): Promise<boolean> { return true; }
  async modelReady(): Promise<boolean> { return true; }
  async modelMetadata(): Promise<ModelMetadata> { throw new Error('not used'); }
  reloadTls(): void {}
  close(): void {}
}

function setup(limits: Record<string, number> = { m: 64 }) {
  const inner = new RowNode();
  const joined: Array<[string, number, number]> = [];
  const unsplittable: string[] = [];
  const events: CoalescingEvents = { coalesced: (model, requests, rows) => void joined.push([model, requests, rows]), unsplittable: (model) => void unsplittable.push(model) };
  const client = new CoalescingNodeClient(inner, (model) => limits[model], events);
  /**
   * A call of each given kind out to the node and held there, as under load: requests of those kinds now
   * gather instead of leaving at once. Returns the calls made after it (from `inner.calls`) and a release.
   */
  const busy = async (...kinds: InferRequest[]) => {
    inner.hold = true;
    const leaders = kinds.map((k, i) => client.infer(k, inAMinute(), `leader-${i}`).catch(() => undefined));
    await new Promise((r) => setImmediate(r));
    inner.hold = false;
    const base = inner.calls.length;
    joined.length = 0;
    return { after: () => inner.calls.slice(base), release: async () => { for (const go of inner.held.splice(0)) go(); await Promise.all(leaders); } };
  };
  return { inner, joined, unsplittable, client, busy };
}

const request = (rows: number[][], o: { model?: string; id?: string; outputs?: string[]; parameters?: Record<string, ParameterValue>; version?: string } = {}): InferRequest => ({
  model: o.model ?? 'm', ...(o.version ? { version: o.version } : {}), ...(o.id ? { id: o.id } : {}), parameters: o.parameters ?? {}, outputs: o.outputs ?? [],
  inputs: [{ name: 'x', datatype: 'FP32', shape: [rows.length, rows[0]!.length], data: Float32Array.from(rows.flat()) }],
});
const sumsOf = (r: InferResult) => Array.from(r.outputs.find((t) => t.name === 'sum')!.data as Float32Array);
const inAMinute = () => Date.now() + 60_000;

describe('coalescing node client', () => {
  it('while a call is out, joins the requests made in one pass of the event loop into one call and answers each caller with its own rows', async () => {
    const { client, joined, busy } = setup();
    const out = await busy(request([[0, 0]]));
    const answers = await Promise.all([
      client.infer(request([[1, 2]], { id: 'a' }), inAMinute(), 'req-a'),
      client.infer(request([[10, 20], [30, 40]], { id: 'b' }), inAMinute(), 'req-b'),
      client.infer(request([[100, 200]]), inAMinute(), 'req-c'),
    ]);
    const calls = out.after();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.request.inputs[0]!.shape).toEqual([4, 2]);
    expect(calls[0]!.request.id).toBeUndefined(); // no one caller's id on a shared call
    expect(calls[0]!.requestId).toBe('req-a');
    expect(answers.map(sumsOf)).toEqual([[3], [30, 70], [300]]);
    expect(answers[1]!.outputs.map((t) => t.shape)).toEqual([[2, 1], [2, 1]]);
    expect(answers.map((a) => a.id)).toEqual(['a', 'b', undefined]);
    expect(joined).toEqual([['m', 3, 4]]);
    await out.release();
  });

  it('a request leaves at once, as it came, when no call of its kind is out; the next ones gather behind it', async () => {
    const { inner, client, joined } = setup();
    const deadline = inAMinute();
    const signal = new AbortController().signal;
    const first = client.infer(request([[1, 2]], { id: 'a' }), deadline, 'req-a', signal);
    // Sent before this turn of the event loop ends, with its own id, deadline and signal.
    expect(inner.calls).toEqual([{ request: expect.objectContaining({ id: 'a' }), deadline, requestId: 'req-a', signal }]);
    const next = [client.infer(request([[3, 4]]), deadline, 'req-b'), client.infer(request([[5, 6]]), deadline, 'req-c')];
    expect(inner.calls).toHaveLength(1);
    expect((await Promise.all([first, ...next])).map(sumsOf)).toEqual([[3], [7], [11]]);
    expect(inner.calls.map((c) => c.request.inputs[0]!.shape[0])).toEqual([1, 2]);
    expect(joined).toEqual([['m', 1, 1], ['m', 2, 2]]);
    // Nothing out any more: the next request leaves at once again.
    void client.infer(request([[7, 8]]), deadline, 'req-d');
    expect(inner.calls).toHaveLength(3);
  });

  it('while a lone call is out, a request of another kind leaves at once and one of its kind gathers behind it', async () => {
    const { inner, client, joined } = setup();
    const deadline = inAMinute();
    const first = client.infer(request([[1, 2]]), deadline, 'req-a');
    const other = client.infer(request([[1, 2, 3]]), deadline, 'req-b');
    expect(inner.calls).toHaveLength(2);
    const same = client.infer(request([[5, 6]]), deadline, 'req-c');
    expect(inner.calls).toHaveLength(2);
    expect((await Promise.all([first, other, same])).map(sumsOf)).toEqual([[3], [6], [11]]);
    expect(inner.calls).toHaveLength(3);
    expect(joined).toEqual([['m', 1, 1], ['m', 1, 1], ['m', 1, 1]]);
    // Both kinds are free again (once the calls' own endings have run): each next request leaves at once.
    await new Promise((r) => setImmediate(r));
    void client.infer(request([[7, 8]]), deadline, 'req-d');
    void client.infer(request([[1, 2, 3]]), deadline, 'req-e');
    expect(inner.calls).toHaveLength(5);
  });

  it('never joins requests that differ in model, version, outputs, parameters, input shape or datatype', async () => {
    const { client, busy } = setup({ m: 64, other: 64 });
    const f16: InferRequest = { ...request([[1, 2]]), inputs: [{ name: 'x', datatype: 'FP16', shape: [1, 2], data: Uint16Array.of(1, 2) }] };
    const kinds = [
      request([[1, 2]]), request([[1, 2]], { model: 'other' }), request([[1, 2]], { version: '2' }), request([[1, 2]], { outputs: ['sum'] }),
      request([[1, 2]], { parameters: { p: 1 } }), request([[1, 2]], { parameters: { p: 1n } }), request([[1, 2, 3]]), f16,
    ];
    const out = await busy(...kinds);
    await Promise.allSettled([...kinds.map((k, i) => client.infer(k, inAMinute(), String(i))), client.infer(request([[3, 4]], { parameters: { p: 1 } }), inAMinute(), '9')]);
    // Only the two requests with the same parameter of the same kind shared a call.
    expect(out.after().map((c) => c.request.inputs[0]!.shape[0])).toEqual([1, 1, 1, 1, 2, 1, 1, 1]);
    await out.release();
  });

  it('passes through models without coalescing, and requests with no batch dimension', async () => {
    const { inner, client, joined } = setup({ m: 64 });
    const scalar: InferRequest = { ...request([[1]]), inputs: [{ name: 'x', datatype: 'FP32', shape: [], data: Float32Array.of(1) }] };
    await Promise.allSettled([
      client.infer(request([[1, 2]], { model: 'plain' }), inAMinute(), '1'),
      client.infer(request([[1, 2]], { model: 'plain' }), inAMinute(), '2'),
      client.infer(scalar, inAMinute(), '3'),
    ]);
    expect(inner.calls).toHaveLength(3);
    expect(joined).toEqual([]);
  });

  it('keeps each call within maxRows and the byte limit; a request at the limit goes alone', async () => {
    const { client, busy } = setup({ m: 4 });
    const out = await busy(request([[0, 0]]));
    await Promise.all([
      ...[1, 2, 3].map((i) => client.infer(request([[i, 0], [i, 0]]), inAMinute(), String(i))),
      client.infer(request([[9, 0], [9, 0], [9, 0], [9, 0]]), inAMinute(), 'full'),
    ]);
    expect(out.after().map((c) => c.request.inputs[0]!.shape[0]).sort()).toEqual([2, 4, 4]);
    await out.release();
    const wide = Math.floor(MAX_JOINED_BYTES / 4 / 3); // a third of the byte limit per request
    const big = () => ({ ...request([[1]]), inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [1, wide], data: new Float32Array(wide) }] });
    const second = setup({ m: 64 });
    const out2 = await second.busy(big());
    await Promise.all([1, 2, 3, 4].map((i) => second.client.infer(big(), inAMinute(), String(i))));
    expect(out2.after().map((c) => c.request.inputs[0]!.shape[0])).toEqual([3, 1]);
    await out2.release();
  });

  it('one caller\'s refused input does not fail the others: each member is asked again alone', async () => {
    const { client, busy } = setup();
    const out = await busy(request([[0, 0]]));
    const results = await Promise.allSettled([
      client.infer(request([[1, 2]]), inAMinute(), 'good-1'),
      client.infer(request([[-1, 2]]), inAMinute(), 'bad'),
      client.infer(request([[5, 5]]), inAMinute(), 'good-2'),
    ]);
    expect(results[0]).toMatchObject({ status: 'fulfilled' });
    expect(results[2]).toMatchObject({ status: 'fulfilled' });
    expect(sumsOf((results[2] as PromiseFulfilledResult<InferResult>).value)).toEqual([10]);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ kind: 'invalid_argument' });
    expect(out.after().map((c) => c.requestId)).toEqual(['good-1', 'good-1', 'bad', 'good-2']);
    await out.release();
  });

  it('a node failure fails every member with it, for the router to retry each (not resent here)', async () => {
    const { inner, client, busy } = setup();
    const out = await busy(request([[0, 0]]));
    inner.failAll = new NodeFailure('node node-0 is unavailable: reset', true);
    const results = await Promise.allSettled([1, 2, 3].map((i) => client.infer(request([[i, 0]]), inAMinute(), String(i))));
    expect(results.map((r) => (r as PromiseRejectedResult).reason)).toEqual([inner.failAll, inner.failAll, inner.failAll]);
    expect(out.after()).toHaveLength(1);
    await out.release();
  });

  it('an answer that cannot be split is asked again member by member, and the model is no longer joined', async () => {
    const { inner, client, unsplittable, busy } = setup();
    const out = await busy(request([[0, 0]]));
    inner.scalarOutput = true;
    const first = await Promise.all([client.infer(request([[1, 2]]), inAMinute(), '1'), client.infer(request([[3, 4]]), inAMinute(), '2')]);
    expect(first.map((r) => Array.from(r.outputs[0]!.data as Float32Array))).toEqual([[3], [7]]);
    expect(unsplittable).toEqual(['m']);
    expect(out.after().map((c) => c.request.inputs[0]!.shape[0])).toEqual([2, 1, 1]);
    await Promise.all([client.infer(request([[1, 2]]), inAMinute(), '3'), client.infer(request([[3, 4]]), inAMinute(), '4')]);
    expect(out.after().map((c) => c.request.inputs[0]!.shape[0])).toEqual([2, 1, 1, 1, 1]);
    await out.release();
  });

  it('a cancelled member is dropped; the call is cancelled only when every member is', async () => {
    const { inner, client, busy } = setup();
    const out = await busy(request([[0, 0]]));
    inner.hold = true;
    const a = new AbortController(), b = new AbortController();
    const pa = client.infer(request([[1, 2]]), inAMinute(), 'a', a.signal);
    const pb = client.infer(request([[3, 4]]), inAMinute(), 'b', b.signal);
    const pc = client.infer(request([[5, 6]]), inAMinute(), 'c');
    await new Promise((r) => setImmediate(r));
    expect(out.after()).toHaveLength(1);
    a.abort();
    await expect(pa).rejects.toMatchObject({ kind: 'cancelled' });
    expect(out.after()[0]!.signal!.aborted).toBe(false);
    inner.held.pop()!();
    expect((await pc).outputs[0]!.data).toEqual(Float32Array.of(11));
    b.abort(); // after its answer: nothing changes
    expect(sumsOf(await pb)).toEqual([7]);

    const x = new AbortController(), y = new AbortController();
    const px = client.infer(request([[1, 2]]), inAMinute(), 'x', x.signal);
    const py = client.infer(request([[3, 4]]), inAMinute(), 'y', y.signal);
    await new Promise((r) => setImmediate(r));
    x.abort();
    expect(out.after()[1]!.signal!.aborted).toBe(false);
    y.abort();
    expect(out.after()[1]!.signal!.aborted).toBe(true);
    await expect(px).rejects.toMatchObject({ kind: 'cancelled' });
    await expect(py).rejects.toMatchObject({ kind: 'cancelled' });
    // A request cancelled before it is sent never reaches the node.
    const z = new AbortController();
    const pz = client.infer(request([[1, 2]]), inAMinute(), 'z', z.signal);
    z.abort();
    await expect(pz).rejects.toMatchObject({ kind: 'cancelled' });
    await new Promise((r) => setImmediate(r));
    expect(out.after()).toHaveLength(2);
    await out.release();
  });

  it('the call lives as long as its most patient member; a member with a shorter deadline fails at its own', async () => {
    const { inner, client, busy } = setup();
    const out = await busy(request([[0, 0]]));
    inner.hold = true;
    const soon = Date.now() + 30, later = inAMinute();
    const hurried = client.infer(request([[1, 2]]), soon, 'hurried');
    const patient = client.infer(request([[3, 4]]), later, 'patient');
    await expect(hurried).rejects.toMatchObject({ kind: 'deadline_exceeded' });
    expect(out.after()[0]!.deadline).toBe(later);
    inner.held.pop()!();
    expect(sumsOf(await patient)).toEqual([7]);
    await out.release();
  });

  it('many callers with random rows: every caller gets exactly its own rows back (seeded)', async () => {
    const random = mulberry32(4242);
    for (let round = 0; round < 25; round++) {
      const limit = 1 + Math.floor(random() * 40);
      const { inner, client } = setup({ m: limit });
      const requests = Array.from({ length: 1 + Math.floor(random() * 30) }, () =>
        Array.from({ length: 1 + Math.floor(random() * 5) }, () => [Math.round(random() * 1000), Math.round(random() * 1000), Math.round(random() * 1000)]));
      const answers = await Promise.all(requests.map((rows, i) => client.infer(request(rows), inAMinute(), String(i))));
      answers.forEach((a, i) => expect(sumsOf(a)).toEqual(requests[i]!.map((row) => row[0]! + row[1]! + row[2]!)));
      expect(inner.calls.length).toBeLessThanOrEqual(requests.length);
      // A joined call stays within the limit; only a request above it travels alone with more.
      expect(inner.calls.filter((c) => c.request.inputs[0]!.shape[0]! > limit).every((c) => requests.some((rows) => rows.length === c.request.inputs[0]!.shape[0]))).toBe(true);
    }
  });
});
