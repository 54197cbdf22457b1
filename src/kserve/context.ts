import { randomUUID } from 'node:crypto';
import type { Principal } from '../auth/principal.js';
import type { CdsError } from '../errors.js';
import type { PeerIdentity } from '../tls/peer.js';

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
  /** Aborted when the caller goes away (a cancelled gRPC call): queued work for it is dropped, not run. */
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
