import { Piscina } from 'piscina';
import { CdsError } from '../errors.js';
import type { Tensor } from '../tensor/datatypes.js';
import type { LoadedModel } from './repository.js';
import type { ResolvedProvider } from './provider.js';
import { fromWire, toWire } from './ort-tensor.js';
import type { WorkerInit, WorkerReply, WorkerTask } from './worker.js';

export interface SessionPoolOptions {
  models: LoadedModel[];
  provider: ResolvedProvider;
  workers: number;
  intraOpThreads: number;
  maxQueue: number;
}

const cancelledBeforeRun = () => new CdsError('cancelled', 'the caller cancelled the request before it ran');

export const modelKey = (name: string, version: string): string => `${name}:${version}`;

/**
 * Worker threads, each holding a session per model. The queue in front of
 * them is bounded; a dynamic batcher can later sit between `run` and the pool.
 */
export class SessionPool {
  private readonly piscina: Piscina<WorkerTask, WorkerReply>;

  constructor(private readonly options: SessionPoolOptions) {
    const workerData: WorkerInit = {
      models: options.models.map((m) => ({ key: modelKey(m.name, m.version), bytes: m.bytes })),
      provider: options.provider,
      intraOpThreads: options.intraOpThreads,
    };
    this.piscina = new Piscina<WorkerTask, WorkerReply>({
      filename: new URL('./worker.js', import.meta.url).href,
      minThreads: options.workers,
      maxThreads: options.workers,
      maxQueue: options.maxQueue,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      workerData,
    });
  }

  /** Resolves when every worker has built its sessions. */
  async warmUp(): Promise<void> {
    await Promise.all(Array.from({ length: this.options.workers }, () => this.piscina.run({ kind: 'ping' })));
  }

  get queued(): number {
    return this.piscina.queueSize;
  }

  /**
   * `signal` cancels work that has not started: the worker reads a shared flag
   * before it runs the session. (Piscina's own abort would terminate a worker
   * mid-run and rebuild its sessions, too dear for one cancelled request.)
   */
  async run(model: string, inputs: Tensor[], outputs: string[], deadline: number, signal?: AbortSignal): Promise<Tensor[]> {
    if (Date.now() > deadline) throw new CdsError('deadline_exceeded', 'deadline passed before the request reached the node queue');
    if (signal?.aborted) throw cancelledBeforeRun();
    const cancelled = new Int32Array(new SharedArrayBuffer(4));
    const onAbort = () => Atomics.store(cancelled, 0, 1);
    signal?.addEventListener('abort', onAbort, { once: true });
    const wires = inputs.map(toWire);
    let reply: WorkerReply;
    try {
      reply = await this.piscina.run(
        { kind: 'infer', model, inputs: wires.map((w) => w.wire), outputs, deadline, cancelled },
        { transferList: wires.flatMap((w) => w.transfer) },
      );
    } catch (err) {
      if (/queue is at limit/i.test((err as Error).message)) {
        throw new CdsError('resource_exhausted', `node queue is full (${this.options.maxQueue} waiting); retry on another node`);
      }
      throw new CdsError('internal', `inference worker failed: ${(err as Error).message}`);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (!reply.ok) throw new CdsError(reply.kind, reply.message);
    return reply.outputs.map(fromWire);
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }
}
