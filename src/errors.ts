import { status as GrpcStatus } from '@grpc/grpc-js';

/**
 * Every stage rejects with a CdsError of one of these kinds; each door maps
 * the kind to its own wire form here, so the mapping lives in one place.
 */
export type ErrorKind =
  | 'invalid_argument'
  | 'unauthenticated'
  | 'permission_denied'
  | 'not_found'
  | 'payload_too_large'
  /** A body in a media type or content encoding the door does not read. */
  | 'unsupported_media_type'
  /** The request itself did not arrive in time (slow headers or body). */
  | 'request_timeout'
  | 'resource_exhausted'
  /** The request is well formed but what it needs is not available (CDS Hooks 412: no way to fetch the FHIR data). */
  | 'failed_precondition'
  | 'unavailable'
  | 'deadline_exceeded'
  /** The caller gave up (a gateway cancelling the slower copy of a hedged request). */
  | 'cancelled'
  | 'internal';

export class CdsError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    /** Extra HTTP headers the REST door should send, e.g. WWW-Authenticate. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'CdsError';
  }
}

export const invalid = (message: string): CdsError => new CdsError('invalid_argument', message);

const HTTP_STATUS: Record<ErrorKind, number> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  request_timeout: 408,
  resource_exhausted: 503,
  failed_precondition: 412,
  unavailable: 503,
  deadline_exceeded: 504,
  // nginx's "client closed request": no one is left to read it, but logs and metrics say what happened.
  cancelled: 499,
  internal: 500,
};

const GRPC_STATUS: Record<ErrorKind, GrpcStatus> = {
  invalid_argument: GrpcStatus.INVALID_ARGUMENT,
  unauthenticated: GrpcStatus.UNAUTHENTICATED,
  permission_denied: GrpcStatus.PERMISSION_DENIED,
  not_found: GrpcStatus.NOT_FOUND,
  payload_too_large: GrpcStatus.RESOURCE_EXHAUSTED,
  unsupported_media_type: GrpcStatus.INVALID_ARGUMENT,
  request_timeout: GrpcStatus.DEADLINE_EXCEEDED,
  resource_exhausted: GrpcStatus.RESOURCE_EXHAUSTED,
  failed_precondition: GrpcStatus.FAILED_PRECONDITION,
  unavailable: GrpcStatus.UNAVAILABLE,
  deadline_exceeded: GrpcStatus.DEADLINE_EXCEEDED,
  cancelled: GrpcStatus.CANCELLED,
  internal: GrpcStatus.INTERNAL,
};

export const httpStatusOf = (kind: ErrorKind): number => HTTP_STATUS[kind];
export const grpcStatusOf = (kind: ErrorKind): GrpcStatus => GRPC_STATUS[kind];

/** The reverse mapping, for errors a node (ours, Triton or KServe) sends back. */
export function kindFromGrpcStatus(code: number): ErrorKind {
  switch (code) {
    case GrpcStatus.INVALID_ARGUMENT:
    case GrpcStatus.OUT_OF_RANGE:
    case GrpcStatus.FAILED_PRECONDITION:
      return 'invalid_argument';
    case GrpcStatus.NOT_FOUND:
      return 'not_found';
    case GrpcStatus.UNAUTHENTICATED:
      return 'unauthenticated';
    case GrpcStatus.PERMISSION_DENIED:
      return 'permission_denied';
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return 'resource_exhausted';
    case GrpcStatus.DEADLINE_EXCEEDED:
      return 'deadline_exceeded';
    case GrpcStatus.UNAVAILABLE:
    case GrpcStatus.CANCELLED:
      return 'unavailable';
    default:
      return 'internal';
  }
}

/** The reverse mapping for a REST node's answer status (ours, Triton or KServe). */
export function kindFromHttpStatus(status: number): ErrorKind {
  switch (status) {
    // 413, 414 and 431: the node's own size limits refused what the caller sent.
    case 400: case 409: case 413: case 414: case 422: case 431: return 'invalid_argument';
    case 401: return 'unauthenticated';
    case 403: return 'permission_denied';
    case 404: return 'not_found';
    case 429: return 'resource_exhausted';
    case 504: return 'deadline_exceeded';
    // 408 (the node timed our body out), 499, 502, 503: the node could not take it now.
    case 408: case 499: case 502: case 503: return 'unavailable';
    default: return 'internal';
  }
}

/** Anything unexpected becomes an opaque internal error for the client; the cause stays for our log. */
export function asCdsError(err: unknown): CdsError {
  if (err instanceof CdsError) return err;
  const wrapped = new CdsError('internal', 'internal error');
  wrapped.cause = err;
  return wrapped;
}

/** What our own log may say about an internal error: its type and message, never request data. */
export function internalCause(error: CdsError): { cause: string } | undefined {
  if (error.kind !== 'internal' || !(error.cause instanceof Error)) return undefined;
  return { cause: `${error.cause.name}: ${error.cause.message}` };
}

/**
 * A client-chosen value inside an error message: a JSON string literal of at
 * most `max` characters of it, with "…" when cut. Error bodies never echo more
 * than this of what a caller sent, and the log scrubber masks every quoted
 * literal, so a message can name the value without a log holding it.
 */
export function quote(value: unknown, max = 40): string {
  if (typeof value !== 'string') {
    if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value).slice(0, max);
    return value === null ? 'null' : value === undefined ? 'nothing' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
  }
  const text = value as string;
  return text.length > max ? `${JSON.stringify(text.slice(0, max))}…` : JSON.stringify(text);
}

/** A client-chosen shape inside an error message: at most eight dimensions shown. */
export function shapeText(shape: readonly unknown[]): string {
  const shown = shape.slice(0, 8).map((d) => (typeof d === 'number' || typeof d === 'string' ? quoteDim(d) : '?'));
  return `[${shown.join(',')}${shape.length > 8 ? `,… (${shape.length} dimensions)` : ''}]`;
}

const quoteDim = (d: number | string): string => (typeof d === 'number' ? String(d) : quote(d, 24));
