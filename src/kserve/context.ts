import { randomUUID } from 'node:crypto';
import type { Principal } from '../auth/principal.js';
import type { CdsError } from '../errors.js';
import { peerFromCertificate, peerFromSocket, type PeerIdentity } from '../tls/peer.js';
import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';

export type Door = 'rest' | 'grpc' | 'cds-hooks';

/** What a door knows about one call before any stage looks at it. */
export interface CallContext {
  door: Door;
  requestId: string;
  peer: PeerIdentity | undefined;
  /** Raw Authorization value(s) — more than one is ambiguous and refused; only the authenticate stage reads it, and nothing logs it. */
  authorization: string | string[] | undefined;
  /** Absolute deadline, epoch milliseconds. */
  deadline: number;
  remoteAddress: string | undefined;
  startedAt: number;
  /** Filled in by stages as they run, for the one log line per request. */
  trace: { subject?: string; node?: string };
  /**
   * The caller's authentication, when a door ran it before reading the
   * payload (the REST door does, so an unauthenticated body is never read).
   */
  auth?: { principal: Principal } | { error: CdsError };
  /**
   * The caller's own request id when it did not match the strict pattern and
   * one was minted instead. Never logged; the audit record keeps its pseudonym.
   */
  clientRequestId?: string;
  /** Aborted when the caller goes away (a cancelled gRPC call, a REST connection closed early): queued work for it is dropped, not run. */
  signal?: AbortSignal;
}

/**
 * Request ids a caller may choose: a UUID, or 16 to 64 hex digits (a W3C
 * trace id, a hash). Nothing in these shapes can spell a name, so such an id
 * can appear in logs and audit records as it is.
 */
const REQUEST_ID = /^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16,64})$/;

/** The request id to use, and the caller's own one when it was not acceptable (kept only as a pseudonym). */
export function requestIdFrom(value: unknown): { requestId: string; clientRequestId?: string } {
  if (typeof value === 'string' && REQUEST_ID.test(value)) return { requestId: value };
  return typeof value === 'string' && value.length > 0 ? { requestId: randomUUID(), clientRequestId: value.slice(0, 256) } : { requestId: randomUUID() };
}

/**
 * How a door bounds a call's time: the caller's own deadline (gRPC deadline,
 * REST `Request-Timeout` in seconds) capped at maxTimeoutMs, or
 * defaultTimeoutMs when it set none.
 */
export interface DeadlinePolicy { defaultTimeoutMs: number; maxTimeoutMs: number }

export function restDeadline(header: string | string[] | undefined, policy: DeadlinePolicy, now = Date.now()): number {
  const seconds = typeof header === 'string' && /^\d+(?:\.\d+)?$/.test(header.trim()) ? Number(header) : undefined;
  return seconds === undefined ? now + policy.defaultTimeoutMs : now + Math.min(seconds * 1000, policy.maxTimeoutMs);
}

export function grpcDeadline(deadline: Date | number, policy: DeadlinePolicy, now = Date.now()): number {
  const asked = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  return Number.isFinite(asked) ? Math.min(asked, now + policy.maxTimeoutMs) : now + policy.defaultTimeoutMs;
}

/**
 * The Authorization value(s) of a REST request. Node keeps only the first of
 * repeated Authorization headers; we look at the raw list so that two (an
 * ambiguous credential) are refused rather than one silently chosen.
 */
export function authorizationHeaders(raw: string[]): string | string[] | undefined {
  let found: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 13 && raw[i]!.toLowerCase() === 'authorization') (found ??= []).push(raw[i + 1]!);
  }
  return found && found.length === 1 ? found[0] : found;
}

/** What the REST listener hands the context builder: Fastify's request, narrowed to what is read. */
export interface RestRequestLike {
  headers: Record<string, string | string[] | undefined>;
  raw: { rawHeaders: string[]; socket: Socket };
}

/** The REST answer's stream, narrowed: it closes unfinished when the caller goes away. */
export interface RestResponseLike {
  once(event: 'close', listener: () => void): unknown;
  readonly writableFinished: boolean;
}

/** What a gRPC call hands the context builder (grpc-js ServerSurfaceCall, narrowed). */
export interface GrpcCallLike {
  metadata: { get(key: string): Array<string | Buffer> };
  getDeadline(): Date | number;
  getPeer(): string;
  getAuthContext(): { sslPeerCertificate?: PeerCertificate };
  once(event: 'cancelled', listener: () => void): unknown;
}

/**
 * The one place a call context is built, for every door of gateway and node:
 * request id (strict shape, else minted), verified peer, Authorization
 * value(s) where the door reads them, deadline by the door's policy, and
 * (where the door can drop queued work: the node) a cancellation signal for
 * calls the caller abandons — a cancelled gRPC call, or a REST connection
 * closed before its answer (how an HTTP/1.1 client such as the gateway
 * cancels the slower copy of a hedged request).
 */
export function restCallContext(req: RestRequestLike, o: DeadlinePolicy & { door?: Door; readAuthorization: boolean; cancellable: boolean }, response?: RestResponseLike): CallContext {
  let signal: AbortSignal | undefined;
  if (o.cancellable && response) {
    const cancelled = new AbortController();
    response.once('close', () => { if (!response.writableFinished) cancelled.abort(); });
    signal = cancelled.signal;
  }
  return {
    door: o.door ?? 'rest',
    ...requestIdFrom(req.headers['x-request-id']),
    peer: peerFromSocket(req.raw.socket as TLSSocket),
    authorization: o.readAuthorization ? authorizationHeaders(req.raw.rawHeaders) : undefined,
    deadline: restDeadline(req.headers['request-timeout'], o),
    remoteAddress: req.raw.socket.remoteAddress,
    startedAt: Date.now(),
    trace: {},
    ...(signal ? { signal } : {}),
  };
}

export function grpcCallContext(call: GrpcCallLike, o: DeadlinePolicy & { readAuthorization: boolean; cancellable: boolean }): CallContext {
  // Only where queued work can be dropped (the node) is a cancelled call worth a signal.
  let signal: AbortSignal | undefined;
  if (o.cancellable) {
    const cancelled = new AbortController();
    call.once('cancelled', () => cancelled.abort());
    signal = cancelled.signal;
  }
  const authorization = o.readAuthorization ? call.metadata.get('authorization').map(String) : [];
  return {
    door: 'grpc',
    ...requestIdFrom(call.metadata.get('x-request-id')[0]),
    peer: peerFromCertificate(call.getAuthContext().sslPeerCertificate),
    authorization: authorization.length === 0 ? undefined : authorization.length === 1 ? authorization[0] : authorization,
    deadline: grpcDeadline(call.getDeadline(), o),
    remoteAddress: call.getPeer(),
    startedAt: Date.now(),
    trace: {},
    ...(signal ? { signal } : {}),
  };
}
