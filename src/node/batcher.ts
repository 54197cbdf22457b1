import { CdsError } from '../errors.js';
import type { Tensor } from '../tensor/datatypes.js';
import { batchKey, concatRows, sliceRows } from '../tensor/rows.js';

/** The session pool as the batcher sees it: one run over whole tensors. */
export type RunBatch = (inputs: Tensor[], outputs: string[], deadline: number) => Promise<Tensor[]>;

export interface BatchingConfig {
  /** Rows a batch may hold (the model's maxBatchSize). */
  maxBatchSize: number;
  /** A batch goes out as soon as it holds this many rows (the largest preferred size), or when the oldest request has waited maxQueueDelayUs. */
  preferredBatchSizes: readonly number[];
  maxQueueDelayUs: number;
  /** Requests that may wait; beyond it the node answers RESOURCE_EXHAUSTED at once. */
  maxQueueSize: number;
}

export interface BatchObserver {
  /** One model run: how many requests and rows it carried, how long its oldest request waited. */
  executed(requests: number, rows: number, oldestQueueMs: number): void;
}

interface Pending {
  inputs: Tensor[];
  rows: number;
  deadline: number;
  signal?: AbortSignal;
  enqueuedAt: number;
  resolve(outputs: Tensor[]): void;
  reject(err: unknown): void;
}

/**
 * Triton-style dynamic batching for one model: concurrent requests with the
 * same requested outputs and the same non-batch dimensions are merged along
 * the batch dimension, run once, and their outputs split back row by row.
 * Each request's inputs were checked before it joined, so one caller's bad
 * input never fails a batch. A request whose deadline passed or whose caller
 * cancelled while it waited is answered on its own and left out of the run.
 */
export class DynamicBatcher {
  private readonly queues = new Map<string, Pending[]>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private waiting = 0;
  private readonly flushAt: number;

  constructor(private readonly run: RunBatch, private readonly config: BatchingConfig, private readonly observer?: BatchObserver) {
    // Without preferred sizes a batch fills up to the model's maximum within the delay, as Triton's does.
    this.flushAt = config.preferredBatchSizes.length ? Math.min(config.maxBatchSize, Math.max(...config.preferredBatchSizes)) : config.maxBatchSize;
  }

  get queued(): number {
    return this.waiting;
  }

  infer(inputs: Tensor[], outputs: string[], deadline: number, signal?: AbortSignal): Promise<Tensor[]> {
    if (signal?.aborted) return Promise.reject(new CdsError('cancelled', 'the caller cancelled the request before it ran'));
    if (this.waiting >= this.config.maxQueueSize) {
      return Promise.reject(new CdsError('resource_exhausted', `node batch queue is full (${this.config.maxQueueSize} waiting); retry on another node`));
    }
    const rows = inputs[0]?.shape[0] ?? 0;
    const key = batchKey(inputs, outputs);
    return new Promise<Tensor[]>((resolve, reject) => {
      const queue = this.queues.get(key) ?? [];
      // A request that would overflow the batch sends the current one out first.
      if (queue.reduce((n, p) => n + p.rows, 0) + rows > this.config.maxBatchSize) this.flush(key, outputs);
      const fresh = this.queues.get(key) ?? [];
      fresh.push({ inputs, rows, deadline, signal, enqueuedAt: performance.now(), resolve, reject });
      this.queues.set(key, fresh);
      this.waiting++;
      if (fresh.reduce((n, p) => n + p.rows, 0) >= this.flushAt) this.flush(key, outputs);
      else if (!this.timers.has(key)) this.timers.set(key, setTimeout(() => this.flush(key, outputs), this.config.maxQueueDelayUs / 1000));
    });
  }

  private flush(key: string, outputs: string[]): void {
    const timer = this.timers.get(key);
    if (timer) clearTimeout(timer);
    this.timers.delete(key);
    const queue = this.queues.get(key) ?? [];
    this.queues.delete(key);
    this.waiting -= queue.length;
    const now = Date.now();
    const members: Pending[] = [];
    for (const p of queue) {
      if (p.signal?.aborted) p.reject(new CdsError('cancelled', 'the caller cancelled the request while it waited in the node queue'));
      else if (now > p.deadline) p.reject(new CdsError('deadline_exceeded', 'deadline passed while the request waited in the node queue'));
      else members.push(p);
    }
    if (members.length === 0) return;
    const oldest = Math.max(...members.map((p) => performance.now() - p.enqueuedAt));
    const rows = members.reduce((n, p) => n + p.rows, 0);
    const inputs = members.length === 1 ? members[0]!.inputs : members[0]!.inputs.map((_, i) => concatRows(members.map((p) => p.inputs[i]!)));
    // The batch lives as long as its most patient member; the others were checked above.
    const deadline = Math.max(...members.map((p) => p.deadline));
    this.observer?.executed(members.length, rows, oldest);
    this.run(inputs, outputs, deadline).then(
      (results) => {
        let offset = 0;
        for (const p of members) {
          p.resolve(members.length === 1 ? results : results.map((t) => sliceRows(t, offset, p.rows, rows)));
          offset += p.rows;
        }
      },
      (err: unknown) => { for (const p of members) p.reject(err); },
    );
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    for (const queue of this.queues.values()) for (const p of queue) p.reject(new CdsError('unavailable', 'the node is shutting down'));
    this.queues.clear();
  }
}
