import { CdsError, type ErrorKind } from '../errors.js';

/**
 * The one rule for node errors: what a caller is told, whether another node
 * may be tried, and whether the failure counts against the node's breaker.
 *
 * | what happened                                   | caller gets        | retry elsewhere | counts against the node |
 * | ----------------------------------------------- | ------------------ | --------------- | ----------------------- |
 * | the node refused the input (INVALID_ARGUMENT…)  | that client error  | no              | no                      |
 * | a value the node's tensor form cannot carry     | 400                | no              | no                      |
 * | the model or version is not there (NOT_FOUND)   | 404                | no              | no                      |
 * | the caller's own deadline ran out               | 504                | no              | no                      |
 * | the gateway cancelled it (a hedge won)          | –                  | no              | no                      |
 * | unavailable, overloaded, reset, internal error  | 503 if none answer | yes             | yes                     |
 * | our per-try timeout (node slow or hung)         | 503 if none answer | yes             | yes                     |
 * | the node's breaker is open                      | 503 if none answer | yes             | no (it is already open) |
 */
export class NodeFailure extends CdsError {
  constructor(message: string, readonly retryable: boolean, kind: CdsError['kind'] = 'unavailable') {
    super(kind, message);
  }
}

/**
 * A node's error in the gateway's terms; `kind` is read from its gRPC status
 * or HTTP status (errors.ts). `detail` is the node's own message (short: nodes
 * quote caller text).
 */
export function nodeError(nodeId: string, kind: ErrorKind, detail: string): CdsError {
  switch (kind) {
    case 'invalid_argument':
    case 'not_found':
      return new CdsError(kind, detail);
    case 'deadline_exceeded':
      return new NodeFailure(`node ${nodeId} did not answer before the deadline`, false, 'deadline_exceeded');
    case 'unavailable':
    case 'resource_exhausted':
      return new NodeFailure(`node ${nodeId} is unavailable: ${detail}`, true);
    default:
      // Includes PERMISSION_DENIED from a node that does not accept our certificate: a configuration fault, not the caller's.
      return new NodeFailure(`node ${nodeId} failed: ${detail}${kind === 'permission_denied' ? ' (does the node accept this gateway\'s certificate?)' : ''}`, true);
  }
}

/**
 * The request holds a value that the node's only tensor form cannot carry
 * exactly (a JSON-only node and a BYTES element that is not UTF-8, or a NaN):
 * the caller's data, so a client error; it never left the gateway.
 */
export const unsendable = (nodeId: string, reason: string): CdsError =>
  new CdsError('invalid_argument', `node ${nodeId} takes tensors as JSON only (its server metadata does not list binary_tensor_data), and ${reason}`);

/** Our own per-try timeout fired: the node is slow or hung, which is the node's failure. */
export const perTryTimeout = (nodeId: string, timeoutMs: number): NodeFailure => new NodeFailure(`node ${nodeId} did not answer within ${timeoutMs} ms`, true);

/** The breaker refused the call before it went out. */
export const breakerOpen = (nodeId: string): NodeFailure => new NodeFailure(`node ${nodeId} circuit breaker is open`, true);

/** Anything else that went wrong on the way to a node (a library error): retryable, the node's fault. */
export const unexpectedFailure = (nodeId: string, err: unknown): NodeFailure => new NodeFailure(`node ${nodeId} failed: ${(err as Error)?.message ?? String(err)}`, true);

/** Whether another node should be tried after this error. */
export const shouldRetry = (err: unknown): err is NodeFailure => err instanceof NodeFailure && err.retryable;

/** Whether this error is evidence against the node (opossum's errorFilter is the inverse: true means "not a failure"). */
export const countsAgainstNode = (err: unknown): boolean => err instanceof NodeFailure && err.kind === 'unavailable';
