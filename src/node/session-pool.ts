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
  /** Threads shared by the models that do not ask for their own instances. */
  workers: number;
  intraOpThreads: number;
  maxQueue: number;
  /** Called after every model run: which model, which of its instances (0…), and session.run time. */
  onExecuted?: (model: string, instance: number, computeMs: number) => void;
}

const cancelledBeforeRun = () => new CdsError('cancelled', 'the caller cancelled the request before it ran');

export const modelKey = (name: string, version: string): string => `${name}:${version}`;

/** One group of worker threads, each holding a session for every model of the group. */
interface InstanceGroup {
  piscina: Piscina<WorkerTask, WorkerReply>;
  threads: number;
  /** Worker thread id → instance index, in the order the threads first answered. */
  instances: Map<number, number>;
}

/**
 * Worker threads holding onnxruntime sessions. Models whose config asks for
 * `instances: N` get a group of N threads of their own (Triton's instance
 * groups: N sessions of that model, run concurrently); the others share one
 * group of `workers` threads. Each group's queue is bounded.
 */
export class SessionPool {
  private readonly groups = new Map<string, InstanceGroup>();

  constructor(private readonly options: SessionPoolOptions) {
    const shared = options.models.filter((m) => m.config.instances === undefined);
    const sharedGroup = shared.length > 0 ? this.group(shared, options.workers) : undefined;
    for (const m of shared) this.groups.set(modelKey(m.name, m.version), sharedGroup!);
    for (const m of options.models) {
      if (m.config.instances !== undefined) this.groups.set(modelKey(m.name, m.version), this.group([m], m.config.instances));
    }
  }

  private group(models: LoadedModel[], threads: number): InstanceGroup {
    const workerData: WorkerInit = {
      models: models.map((m) => ({ key: modelKey(m.name, m.version), bytes: m.bytes })),
      provider: this.options.provider,
      intraOpThreads: this.options.intraOpThreads,
    };
    const piscina = new Piscina<WorkerTask, WorkerReply>({
      filename: new URL('./worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      maxQueue: this.options.maxQueue,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      workerData,
    });
    return { piscina, threads, instances: new Map() };
  }

  private uniqueGroups(): InstanceGroup[] {
    return [...new Set(this.groups.values())];
  }

  /** Worker threads in all groups: with intraOpThreads, what the node asks of the cores. */
  get threads(): number {
    return this.uniqueGroups().reduce((n, g) => n + g.threads, 0);
  }

  /** Resolves when every worker of every group has built its sessions. */
  async warmUp(): Promise<void> {
    await Promise.all(this.uniqueGroups().flatMap((g) => Array.from({ length: g.threads }, () => g.piscina.run({ kind: 'ping' }))));
  }

  get queued(): number {
    return this.uniqueGroups().reduce((n, g) => n + g.piscina.queueSize, 0);
  }

  /**
   * `signal` cancels work that has not started: the worker reads a shared flag
   * before it runs the session. (Piscina's own abort would terminate a worker
   * mid-run and rebuild its sessions, too dear for one cancelled request.)
   */
  async run(model: string, inputs: Tensor[], outputs: string[], deadline: number, signal?: AbortSignal): Promise<Tensor[]> {
    const group = this.groups.get(model);
    if (!group) throw new CdsError('internal', `no session group for ${model}`);
    if (Date.now() > deadline) throw new CdsError('deadline_exceeded', 'deadline passed before the request reached the node queue');
    if (signal?.aborted) throw cancelledBeforeRun();
    const cancelled = new Int32Array(new SharedArrayBuffer(4));
    const onAbort = () => Atomics.store(cancelled, 0, 1);
    signal?.addEventListener('abort', onAbort, { once: true });
    const wires = inputs.map(toWire);
    let reply: WorkerReply;
    try {
      reply = await group.piscina.run(
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
    if (!group.instances.has(reply.threadId)) group.instances.set(reply.threadId, group.instances.size);
    this.options.onExecuted?.(model, group.instances.get(reply.threadId)!, reply.computeMs);
    return reply.outputs.map(fromWire);
  }

  async close(): Promise<void> {
    await Promise.all(this.uniqueGroups().map((g) => g.piscina.destroy()));
  }
}
