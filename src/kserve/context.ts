import { randomUUID } from 'node:crypto';
import type { PeerIdentity } from '../tls/peer.js';

export type Door = 'rest' | 'grpc';

/** What a door knows about one call before any stage looks at it. */
export interface CallContext {
  door: Door;
  requestId: string;
  peer: PeerIdentity | undefined;
  /** Raw Authorization value; only the authenticate stage reads it, and nothing logs it. */
  authorization: string | undefined;
  /** Absolute deadline, epoch milliseconds. */
  deadline: number;
  remoteAddress: string | undefined;
  startedAt: number;
  /** Filled in by stages as they run, for the one log line per request. */
  trace: { subject?: string; node?: string };
  /** Aborted when the caller goes away (a cancelled gRPC call): queued work for it is dropped, not run. */
  signal?: AbortSignal;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Accept a caller's request id only if it is short and plain; otherwise mint one. */
export function requestIdFrom(value: unknown): string {
  return typeof value === 'string' && REQUEST_ID.test(value) ? value : randomUUID();
}
