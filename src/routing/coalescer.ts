import { CdsError } from '../errors.js';
import { type InferRequest, type InferResult, type ParameterValue } from '../kserve/types.js';
import { batchKey, batchRows, concatRows, sliceRows } from '../tensor/rows.js';
import type { ClientTlsMaterial } from '../tls/client-tls.js';
import { attemptCancelled, type NodeAddress, type NodeClientLike } from './node-client.js';
import { nodeError } from './retry-policy.js';

export interface CoalescingEvents {
  /** One node call carried `requests` callers' requests, `rows` rows in all. */
  coalesced(model: string, requests: number, rows: number): void;
  /** The node's answer for `model` could not be split row by row: the model is called one request at a time from now on. */
  unsplittable(model: string, node: string): void;
}

/** How many rows one node call may carry for a model; undefined: the model's requests are never joined. */
export type CoalesceLimit = (model: string) => number | undefined;

interface Member {
  request: InferRequest;
  deadline: number;
  requestId: string;
  signal: AbortSignal | undefined;
  rows: number;
  /** Answered, failed or cancelled: later outcomes are ignored. */
  settled: boolean;
  resolve(result: InferResult): void;
  reject(err: unknown): void;
  onAbort: (() => void) | undefined;
  timer: NodeJS.Timeout | undefined;
}

interface Group { key: string; model: string; members: Member[]; rows: number; bytes: number }

/**
 * A node client that joins concurrent requests for one model into one call
 * along the batch dimension and splits the answer back row by row: the
 * node's per-request cost (its HTTP or gRPC handling, decoding, its own
 * batcher) is paid once per call instead of once per caller, and so is the
 * gateway's side of the call. Measured on a node's REST door: a call of 8
 * rows cost the node about what a call of 1 row costs.
 *
 * Only models configured with `coalesce` are joined: the operator declares
 * their rows independent (every input and output has the batch dimension
 * first), the assumption the node's dynamic batcher makes too. Requests join
 * only with requests for the same model, version, data class, parameters,
 * requested outputs, input names, datatypes and non-batch dimensions.
 *
 * Nothing waits for company. A request leaves at once when no call of its
 * kind is out to this node: a lone caller's request goes before the gateway
 * does its other work for it (the audit view), as it would without
 * coalescing. While one is out, the requests that arrive in the same pass
 * of the event loop's poll phase (one `epoll` wake-up's worth of sockets) go
 * out together at its end. Measured at one connection, gathering even a lone
 * request until the end of the pass cost 10% more CPU and 0.28 ms at p50.
 *
 * Each caller keeps its own deadline and cancellation: the call lives as long
 * as its most patient member, each other member fails at its own deadline,
 * and a member cancelled (a hedge won elsewhere) is dropped; the call is
 * cancelled only when every member is. One caller's input cannot fail the
 * others: when the node refuses a joined call as a client error, each member
 * is sent again alone and gets its own answer. When an answer cannot be split
 * (an output without the batch dimension first), the members are sent again
 * alone and the model is no longer joined on this node.
 */
export class CoalescingNodeClient implements NodeClientLike {
  /** Requests gathering for their next call, by group key; a new Map for each gathering (flush says why). */
  private groups = new Map<string, Group>();
  private flushScheduled = false;
  /** Calls out to the node per group key: while one is, new requests gather. */
  private readonly inFlight = new Map<string, number>();
  /** Models whose answers from this node could not be split. */
  private readonly unsplittable = new Set<string>();

  constructor(private readonly inner: NodeClientLike, private readonly limitOf: CoalesceLimit, private readonly events: CoalescingEvents) {}

  get node(): NodeAddress {
    return this.inner.node;
  }

  infer(request: InferRequest, deadline: number, requestId: string, signal?: AbortSignal): Promise<InferResult> {
    const limit = this.limitOf(request.model);
    const rows = limit === undefined || this.unsplittable.has(request.model) ? undefined : batchRows(request.inputs);
    const bytes = rows === undefined ? 0 : dataBytes(request);
    if (rows === undefined || rows >= limit! || bytes > MAX_JOINED_BYTES / 2) return this.inner.infer(request, deadline, requestId, signal);
    if (signal?.aborted) return Promise.reject(attemptCancelled(this.node.id));
    const key = groupKey(request);
    // Nothing of its kind out: it leaves now, as it came, and only marks the kind busy while it is out.
    if (!this.groups.has(key) && !this.inFlight.has(key)) {
      this.events.coalesced(request.model, 1, rows);
      this.started(key);
      return this.inner.infer(request, deadline, requestId, signal).finally(() => this.finished(key));
    }
    return new Promise<InferResult>((resolve, reject) => {
      const member: Member = { request, deadline, requestId, signal, rows, settled: false, resolve, reject, onAbort: undefined, timer: undefined };
      if (signal) {
        member.onAbort = () => this.settle(member, undefined, attemptCancelled(this.node.id));
        signal.addEventListener('abort', member.onAbort, { once: true });
      }
      let group = this.groups.get(key);
      // A request that would overflow the call sends the gathered ones first.
      if (group && (group.rows + rows > limit! || group.bytes + bytes > MAX_JOINED_BYTES)) {
        this.groups.delete(key);
        this.send(group);
        group = undefined;
      }
      if (!group) {
        group = { key, model: request.model, members: [], rows: 0, bytes: 0 };
        this.groups.set(key, group);
      }
      group.members.push(member);
      group.rows += rows;
      group.bytes += bytes;
      if (group.rows >= limit!) {
        this.groups.delete(key);
        this.send(group);
      } else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  /**
   * After the poll phase: every gathered group goes out. The gathered Map is
   * replaced, not cleared: V8's `Map#clear` leaves the old table holding its
   * entries and pointing at its successor (for iterators still open on it),
   * and allocates the successor in the old generation once the table is
   * there; an old table's pointers are roots for every scavenge, so each
   * cleared table kept the groups, requests and answers it had held alive
   * and promoted them, until a major GC. Measured at 32 connections (two
   * gateways interleaved, 4 rounds):
   * 0.7 MB promoted per scavenge against 0.1, scavenges 3.6 against 1.8 ms
   * at p50, req/s 1.10×, CPU per request 0.875× (docs/PERFORMANCE.md).
   */
  private readonly flush = (): void => {
    this.flushScheduled = false;
    const groups = this.groups;
    this.groups = new Map();
    for (const group of groups.values()) this.send(group);
  };

  private send(group: Group): void {
    const members = group.members.filter((m) => !m.settled);
    if (members.length === 0) return;
    this.started(group.key);
    const done = () => this.finished(group.key);
    if (members.length === 1) {
      this.events.coalesced(group.model, 1, members[0]!.rows);
      void this.alone(members[0]!).finally(done);
      return;
    }
    const rows = members.reduce((n, m) => n + m.rows, 0);
    this.events.coalesced(group.model, members.length, rows);
    const first = members[0]!.request;
    const { id: _ownId, ...shared } = first;
    const joined: InferRequest = { ...shared, inputs: first.inputs.map((_, i) => concatRows(members.map((m) => m.request.inputs[i]!))) };
    // The call lives as long as its most patient member; each other member fails at its own deadline.
    const deadline = Math.max(...members.map((m) => m.deadline));
    for (const m of members) {
      if (m.deadline < deadline) m.timer = setTimeout(() => this.settle(m, undefined, nodeError(this.node.id, 'deadline_exceeded', '')), Math.max(0, m.deadline - Date.now()));
    }
    const controller = new AbortController();
    const cancelWhenAllGone = () => {
      if (members.every((m) => m.settled)) controller.abort();
    };
    for (const m of members) m.signal?.addEventListener('abort', cancelWhenAllGone, { once: true });
    const detach = () => {
      for (const m of members) m.signal?.removeEventListener('abort', cancelWhenAllGone);
    };
    this.inner.infer(joined, deadline, members[0]!.requestId, controller.signal).then(
      (result) => {
        done();
        detach();
        let parts: InferResult[];
        try {
          let offset = 0;
          const { id: _batchId, ...rest } = result;
          parts = members.map((m) => {
            const outputs = result.outputs.map((t) => sliceRows(t, offset, m.rows, rows));
            offset += m.rows;
            return m.request.id === undefined ? { ...rest, outputs } : { ...rest, id: m.request.id, outputs };
          });
        } catch {
          this.unsplittable.add(group.model);
          this.events.unsplittable(group.model, this.node.id);
          for (const m of members) void this.alone(m);
          return;
        }
        members.forEach((m, i) => this.settle(m, parts[i]));
      },
      (err: unknown) => {
        done();
        detach();
        // The node refused the joined input (a value out of range, rows above its maximum): one member's data,
        // perhaps, so each is asked about alone. Any other failure is the node's, and every member's to retry.
        if (err instanceof CdsError && err.kind === 'invalid_argument') for (const m of members) void this.alone(m);
        else for (const m of members) this.settle(m, undefined, err);
      },
    );
  }

  private started(key: string): void {
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
  }

  private finished(key: string): void {
    const left = this.inFlight.get(key)! - 1;
    if (left === 0) this.inFlight.delete(key);
    else this.inFlight.set(key, left);
  }

  /** One member's request as its own call, with its own deadline and cancellation. */
  private async alone(m: Member): Promise<void> {
    if (m.settled) return;
    clearTimeout(m.timer);
    await this.inner.infer(m.request, m.deadline, m.requestId, m.signal).then((r) => this.settle(m, r), (err: unknown) => this.settle(m, undefined, err));
  }

  private settle(m: Member, result: InferResult | undefined, err?: unknown): void {
    if (m.settled) return;
    m.settled = true;
    clearTimeout(m.timer);
    if (m.onAbort) m.signal!.removeEventListener('abort', m.onAbort);
    if (result) m.resolve(result);
    else m.reject(err);
  }

  serverReady(timeoutMs: number): Promise<boolean> {
    return this.inner.serverReady(timeoutMs);
  }

  modelReady(model: string, timeoutMs: number): Promise<boolean> {
    return this.inner.modelReady(model, timeoutMs);
  }

  modelMetadata(model: string, version: string | undefined, timeoutMs: number): ReturnType<NodeClientLike['modelMetadata']> {
    return this.inner.modelMetadata(model, version, timeoutMs);
  }

  reloadTls(tls: ClientTlsMaterial): void {
    this.inner.reloadTls(tls);
  }

  close(): void {
    this.inner.close();
  }
}

/**
 * Bytes of tensor data one joined call may carry. A larger request goes
 * alone: joining saves a node's per-call cost, which is small beside the
 * handling of that much data, and a joined body must stay within what any
 * node accepts.
 */
export const MAX_JOINED_BYTES = 1 << 20;

const dataBytes = (r: InferRequest): number =>
  r.inputs.reduce((n, t) => n + (Array.isArray(t.data) ? t.data.reduce((m, e) => m + e.byteLength + 4, 0) : t.data.byteLength), 0);

/** Parameters as a key, kinds kept (a parameter leaves as the kind it came as, so 1 and 1n are different requests). */
const parametersKey = (parameters: Record<string, ParameterValue>): string => {
  const names = Object.keys(parameters);
  if (names.length === 0) return '';
  return JSON.stringify(names.sort().map((n) => {
    const v = parameters[n]!;
    return [n, typeof v === 'object' ? 'uint64' : typeof v, typeof v === 'object' ? v.uint64.toString() : String(v)];
  }));
};

/** Requests that may share a call. */
const groupKey = (r: InferRequest): string =>
  `${r.model}\u0002${r.version ?? ''}\u0002${r.deidentified === true ? 'd' : ''}\u0002${parametersKey(r.parameters)}\u0002${batchKey(r.inputs, r.outputs)}`;
