import { Piscina } from 'piscina';
import type * as ort from 'onnxruntime-node';
import { CdsError } from '../errors.js';
import type { Tensor } from '../tensor/datatypes.js';
import type { LoadedModel } from './repository.js';
import { openSession, type ResolvedProvider } from './provider.js';
import { fromWire, runSession, toWire } from './ort-tensor.js';
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
  /** Called once per inline model whose runs typically hold the main thread for longer than slowInlineMs. */
  onSlowInline?: (model: string, typicalMs: number) => void;
  /** Default INLINE_SLOW_MS (tests set it). */
  slowInlineMs?: number;
}

/**
 * An inline model's run blocks the node's main thread (every request and
 * health check waits for it), so one that takes longer than this is reported
 * once: its config should not ask for `inline`.
 */
export const INLINE_SLOW_MS = 2;

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
 *
 * A model whose config asks for `inline` runs on the node's main thread
 * instead, with no worker: for a model whose run takes microseconds (a
 * tabular score), the hand-off to a worker thread and back costs more than
 * the run, above all for an unhurried caller, whose every request finds the
 * worker asleep and waits for it to wake. On the 2-core development VM (news2,
 * 7 interleaved rounds, one sequential client): p50 0.27 ms inline against
 * 0.44 ms through a worker straight to the node, 1.41 against 2.15 ms through
 * the gateway; at 32 connections the node's CPU per request was 186 against
 * 363 µs. Timed inside the node, the hand-off and run took 90 µs inline
 * against 620 µs through the worker at p50.
 */
export class SessionPool {
  private readonly groups = new Map<string, InstanceGroup>();
  /** Inline models' sessions (by model key), once warmUp() has built them. */
  private readonly inlineSessions = new Map<string, ort.InferenceSession>();
  /** Per inline model, its typical run time (noteInlineRun), and whether it was reported as too slow. */
  private readonly typicalInlineMs = new Map<string, number>();
  private readonly reportedSlow = new Set<string>();

  constructor(private readonly options: SessionPoolOptions) {
    const shared = options.models.filter((m) => m.config.instances === undefined && !m.config.inline);
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

  /** Resolves when every worker of every group, and the main thread for the inline models, has built its sessions. */
  async warmUp(): Promise<void> {
    for (const m of this.options.models) {
      const key = modelKey(m.name, m.version);
      if (m.config.inline && !this.inlineSessions.has(key)) this.inlineSessions.set(key, await openSession(m.bytes, this.options.provider, this.options.intraOpThreads));
    }
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
    if (Date.now() > deadline) throw new CdsError('deadline_exceeded', 'deadline passed before the request reached the node queue');
    if (signal?.aborted) throw cancelledBeforeRun();
    const inline = this.inlineSessions.get(model);
    if (inline) return this.runInline(model, inline, inputs, outputs);
    const group = this.groups.get(model);
    if (!group) throw new CdsError('internal', `no session group for ${model}`);
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

  /** An inline model's run on this thread: as worker.ts runs it, with no queue to wait in. */
  private async runInline(model: string, session: ort.InferenceSession, inputs: Tensor[], outputs: string[]): Promise<Tensor[]> {
    let ran: Awaited<ReturnType<typeof runSession>>;
    try {
      ran = await runSession(session, inputs.map((t) => toWire(t).wire), outputs);
    } catch (err) {
      throw new CdsError('internal', `onnxruntime failed: ${(err as Error).message}`);
    }
    this.noteInlineRun(model, ran.computeMs);
    this.options.onExecuted?.(model, 0, ran.computeMs);
    return ran.outputs.map(fromWire);
  }

  /**
   * Reports an inline model, once, whose runs typically hold the main thread
   * for over INLINE_SLOW_MS. Typical: an exponentially weighted mean that
   * starts from 0 (the newest run weighs 0.2), so that one run slowed by
   * onnxruntime's first-run set-up or by the machine does not condemn a model
   * (on the development VM news2's first run took 1.2 ms, the later ones 26 µs
   * at p50, and one in 2,000 took 7.8 ms), while one that takes 10 ms every
   * time is reported at its second run.
   */
  private noteInlineRun(model: string, computeMs: number): void {
    if (this.reportedSlow.has(model)) return;
    const typical = 0.8 * (this.typicalInlineMs.get(model) ?? 0) + 0.2 * computeMs;
    this.typicalInlineMs.set(model, typical);
    if (typical <= (this.options.slowInlineMs ?? INLINE_SLOW_MS)) return;
    this.reportedSlow.add(model);
    this.options.onSlowInline?.(model, typical);
  }

  async close(): Promise<void> {
    await Promise.all(this.uniqueGroups().map((g) => g.piscina.destroy()));
    await Promise.all([...this.inlineSessions.values()].map((s) => s.release()));
    this.inlineSessions.clear();
  }
}
