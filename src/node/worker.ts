/**
 * A piscina worker thread that owns one onnxruntime session per model.
 * session.run blocks the thread it runs on, so it runs here and never on the
 * node's main thread, which stays free for gRPC, REST and health checks.
 */
import { threadId, workerData } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import { openSession, type ResolvedProvider } from './provider.js';
import { runSession, type WireTensor } from './ort-tensor.js';

export interface WorkerInit {
  models: Array<{ key: string; bytes: SharedArrayBuffer }>;
  provider: ResolvedProvider;
  intraOpThreads: number;
}

export type WorkerTask =
  | { kind: 'ping' }
  | { kind: 'infer'; model: string; inputs: WireTensor[]; outputs: string[]; deadline: number; cancelled: Int32Array };

export type WorkerReply =
  | { ok: true; outputs: WireTensor[]; /** session.run time on this thread */ computeMs: number; threadId: number }
  | { ok: false; kind: 'deadline_exceeded' | 'cancelled' | 'internal'; message: string };

const init = workerData as WorkerInit;
const sessions = new Map<string, ort.InferenceSession>();
for (const model of init.models) {
  sessions.set(model.key, await openSession(model.bytes, init.provider, init.intraOpThreads));
}

export default async function run(task: WorkerTask): Promise<WorkerReply> {
  if (task.kind === 'ping') return { ok: true, outputs: [], computeMs: 0, threadId };
  // Work whose deadline passed while it queued is dropped, not run.
  if (Date.now() > task.deadline) return { ok: false, kind: 'deadline_exceeded', message: 'deadline passed while the request waited in the node queue' };
  // So is work its caller cancelled (the losing copy of a hedged request): the flag is shared memory, set by the main thread.
  if (Atomics.load(task.cancelled, 0) === 1) return { ok: false, kind: 'cancelled', message: 'the caller cancelled the request while it waited in the node queue' };
  const session = sessions.get(task.model);
  if (!session) return { ok: false, kind: 'internal', message: `no session for ${task.model}` };
  try {
    const { outputs, computeMs } = await runSession(session, task.inputs, task.outputs);
    return { ok: true, outputs, computeMs, threadId };
  } catch (err) {
    return { ok: false, kind: 'internal', message: `onnxruntime failed: ${(err as Error).message}` };
  }
}
