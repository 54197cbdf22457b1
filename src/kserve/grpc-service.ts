import * as grpc from '@grpc/grpc-js';
import { CdsError, asCdsError, grpcStatusOf, invalid } from '../errors.js';
import type { TensorLimits } from '../tensor/datatypes.js';
import { undecodableReason } from './grpc-server.js';
import type { CallContext } from './context.js';
import type { KServeHandlers } from './handlers.js';
import { inferRequestFromGrpc, inferResultToGrpc, modelMetadataToGrpc, serverMetadataToGrpc } from './grpc-codec.js';
import type { ModelInferRequest, ModelRef } from './messages.js';
import type { InferenceRpc } from './service.js';

type AnyCall = grpc.ServerUnaryCall<unknown, unknown>;

export interface GrpcBinding {
  context(call: AnyCall): CallContext;
  finished?(ctx: CallContext, rpc: InferenceRpc, code: grpc.status, model: string | undefined, error: CdsError | undefined): void;
  /** Bounds on a decoded request (tensor sizes, names, counts). */
  limits: TensorLimits;
}

/** Binds KServe handlers to inference.GRPCInferenceService. */
export function kserveGrpcImplementation(handlers: KServeHandlers, binding: GrpcBinding): grpc.UntypedServiceImplementation {
  const unary = <Req>(rpc: InferenceRpc, run: (ctx: CallContext, request: Req) => Promise<unknown>, modelOf: (request: Req) => string | undefined) =>
    (call: grpc.ServerUnaryCall<Req, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      let ctx: CallContext | undefined;
      const undecodable = undecodableReason(call.request);
      const model = undecodable === undefined ? modelOf(call.request) : undefined;
      Promise.resolve()
        .then(() => {
          ctx = binding.context(call as AnyCall);
          if (undecodable === undefined) return run(ctx, call.request);
          const error = invalid(undecodable);
          return handlers.refuse ? handlers.refuse(ctx, rpc, error) : Promise.reject(error);
        })
        .then(
          (response) => {
            callback(null, response);
            // The log line and metrics once the answer is on its way: they are not on the caller's path.
            if (ctx) binding.finished?.(ctx, rpc, grpc.status.OK, model, undefined);
          },
          (err: unknown) => {
            const error = asCdsError(err);
            const code = grpcStatusOf(error.kind);
            callback({ code, details: error.message });
            if (ctx) binding.finished?.(ctx, rpc, code, model, error);
          },
        );
    };


  return {
    ServerLive: unary<object>('ServerLive', async (ctx) => ({ live: await handlers.live(ctx) }), () => undefined),
    ServerReady: unary<object>('ServerReady', async (ctx) => ({ ready: await handlers.ready(ctx) }), () => undefined),
    ModelReady: unary<ModelRef>('ModelReady', async (ctx, r) => ({ ready: await handlers.modelReady(ctx, r.name, r.version || undefined) }), (r) => r.name),
    ServerMetadata: unary<object>('ServerMetadata', async (ctx) => serverMetadataToGrpc(await handlers.serverMetadata(ctx)), () => undefined),
    ModelMetadata: unary<ModelRef>('ModelMetadata', async (ctx, r) => modelMetadataToGrpc(await handlers.modelMetadata(ctx, r.name, r.version || undefined)), (r) => r.name),
    ModelInfer: unary<ModelInferRequest>('ModelInfer', async (ctx, r) => inferResultToGrpc(await handlers.infer(ctx, r.model_name, r.model_version || undefined, () => inferRequestFromGrpc(r, binding.limits))), (r) => r.model_name),
  } as grpc.UntypedServiceImplementation;
}
