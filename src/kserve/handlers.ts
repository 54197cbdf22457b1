import type { CdsError } from '../errors.js';
import type { CallContext } from './context.js';
import type { InferRequest, InferResult, ModelMetadata, ServerMetadata } from './types.js';

/**
 * The six KServe v2 operations, independent of transport. The node implements
 * them over its model repository; the gateway implements them over its
 * pipeline. rest-routes.ts and grpc-service.ts bind any implementation to a
 * wire, so both processes speak the protocol from one binding.
 */
export interface KServeHandlers {
  live(ctx: CallContext): Promise<boolean>;
  ready(ctx: CallContext): Promise<boolean>;
  serverMetadata(ctx: CallContext): Promise<ServerMetadata>;
  modelMetadata(ctx: CallContext, model: string, version: string | undefined): Promise<ModelMetadata>;
  modelReady(ctx: CallContext, model: string, version: string | undefined): Promise<boolean>;
  /**
   * `decode` turns the wire payload into the internal request. It is a thunk
   * so that an implementation authenticates and authorizes before it reads
   * the payload at all: a caller without a token gets 401, not a parse error.
   */
  infer(ctx: CallContext, model: string, version: string | undefined, decode: () => InferRequest): Promise<InferResult>;
  /**
   * Authenticates the caller from what the door has before the payload
   * (certificate, headers) and keeps the outcome on `ctx.auth`; never throws.
   * A door that has it calls it first and answers a failure without reading
   * the body. Absent where the door's TLS identity check is all there is (the node).
   */
  authenticate?(ctx: CallContext): Promise<void>;
  /**
   * A request the door could not even decode (a gRPC message that is not
   * protobuf): authenticated and recorded where the implementation audits,
   * then refused with `error`.
   */
  refuse?(ctx: CallContext, route: string, error: CdsError): Promise<never>;
}
