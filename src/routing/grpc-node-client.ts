import * as grpc from '@grpc/grpc-js';
import { kindFromGrpcStatus } from '../errors.js';
import { nodeError } from './retry-policy.js';
import { attemptCancelled, type NodeAddress, type NodeClientLike } from './node-client.js';
import type { ClientTlsMaterial } from '../tls/client-tls.js';
import { InferenceServiceClient } from '../kserve/service.js';
import { inferRequestToGrpc, inferResultFromGrpc, modelMetadataFromGrpc } from '../kserve/grpc-codec.js';
import { GRPC_CHANNELZ_OFF } from '../kserve/grpc-server.js';
import type { ModelInferResponse, ModelMetadataResponse, ModelReadyResponse, ServerReadyResponse } from '../kserve/messages.js';
import type { CdsError } from '../errors.js';
import type { InferRequest, InferResult, ModelMetadata } from '../kserve/types.js';

type Unary<Req, Res> = (req: Req, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientUnaryCall;

/**
 * One mTLS gRPC channel to one node (ours, Triton or KServe), presenting the
 * gateway's client certificate and checking the node's certificate carries
 * the configured server name.
 */
export class GrpcNodeClient implements NodeClientLike {
  private client: grpc.Client & Record<string, Unary<unknown, unknown>>;
  /** Channels replaced by reloadTls, still open for the calls made on them. */
  private readonly retired = new Set<{ client: grpc.Client; timer: NodeJS.Timeout }>();

  /**
   * `retiredGraceMs`: how long a channel replaced by reloadTls stays open for the calls already on it; the gateway
   * passes more than the longest deadline it allows (gateway.maxTimeoutMs).
   */
  constructor(readonly node: NodeAddress, tls: ClientTlsMaterial, private readonly maxMessageBytes: number, private readonly retiredGraceMs = 10 * 60_000) {
    this.client = this.channelFor(tls);
  }

  private channelFor(tls: ClientTlsMaterial): grpc.Client & Record<string, Unary<unknown, unknown>> {
    return new InferenceServiceClient(this.node.address, grpc.credentials.createSsl(tls.ca, tls.key, tls.cert), {
      'grpc.ssl_target_name_override': this.node.serverName,
      'grpc.default_authority': this.node.serverName,
      'grpc.max_receive_message_length': this.maxMessageBytes,
      'grpc.max_send_message_length': this.maxMessageBytes,
      // A node that restarts should be reachable again within a couple of seconds.
      'grpc.initial_reconnect_backoff_ms': 250,
      'grpc.max_reconnect_backoff_ms': 2_000,
      'grpc.keepalive_time_ms': 30_000,
      ...GRPC_CHANNELZ_OFF,
    }) as unknown as grpc.Client & Record<string, Unary<unknown, unknown>>;
  }

  /**
   * A channel's credentials are fixed, so new calls go on a new channel; the
   * old one is closed once the calls on it have had their longest deadline.
   */
  reloadTls(tls: ClientTlsMaterial): void {
    const old = this.client;
    this.client = this.channelFor(tls);
    const timer = setTimeout(() => { old.close(); this.retired.delete(retired); }, this.retiredGraceMs).unref();
    const retired = { client: old, timer };
    this.retired.add(retired);
  }

  private call<Res>(method: string, request: unknown, deadline: number, requestId?: string, signal?: AbortSignal): Promise<Res> {
    const metadata = new grpc.Metadata();
    if (requestId) metadata.set('x-request-id', requestId);
    return new Promise<Res>((resolve, reject) => {
      const onAbort = () => call.cancel();
      const call = this.client[method]!.call(this.client, request, metadata, { deadline }, (err, res) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(res as Res);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** `signal` cancels the call (the node then drops the work if it has not started). */
  async infer(request: InferRequest, deadline: number, requestId: string, signal?: AbortSignal): Promise<InferResult> {
    if (signal?.aborted) throw attemptCancelled(this.node.id);
    try {
      return inferResultFromGrpc(await this.call<ModelInferResponse>('ModelInfer', inferRequestToGrpc(request), deadline, requestId, signal));
    } catch (err) {
      if (signal?.aborted) throw attemptCancelled(this.node.id);
      throw this.translate(err as grpc.ServiceError);
    }
  }

  async serverReady(timeoutMs: number): Promise<boolean> {
    return (await this.call<ServerReadyResponse>('ServerReady', {}, Date.now() + timeoutMs)).ready;
  }

  async modelReady(model: string, timeoutMs: number): Promise<boolean> {
    return (await this.call<ModelReadyResponse>('ModelReady', { name: model, version: '' }, Date.now() + timeoutMs)).ready;
  }

  async modelMetadata(model: string, version: string | undefined, timeoutMs: number): Promise<ModelMetadata> {
    try {
      return modelMetadataFromGrpc(await this.call<ModelMetadataResponse>('ModelMetadata', { name: model, version: version ?? '' }, Date.now() + timeoutMs));
    } catch (err) {
      throw this.translate(err as grpc.ServiceError);
    }
  }

  /** Node errors in the gateway's terms (retry-policy.ts): client errors pass through, node trouble becomes retryable. */
  private translate(err: grpc.ServiceError): CdsError {
    return nodeError(this.node.id, kindFromGrpcStatus(err.code), err.details || err.message);
  }

  close(): void {
    this.client.close();
    for (const { client, timer } of this.retired) {
      clearTimeout(timer);
      client.close();
    }
    this.retired.clear();
  }
}
