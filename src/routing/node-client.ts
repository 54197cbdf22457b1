import { CdsError } from '../errors.js';
import type { InferRequest, InferResult, ModelMetadata } from '../kserve/types.js';
import type { ClientTlsMaterial } from '../tls/client-tls.js';

/**
 * A node as the gateway reaches it: `address` is the port of the door named by
 * `protocol` (KServe v2 REST with binary tensors, or KServe v2 gRPC).
 */
export interface NodeAddress { id: string; address: string; serverName: string; protocol: 'rest' | 'grpc' }

/** What the router needs of a node's client: REST (rest-node-client.ts), gRPC (grpc-node-client.ts), or a fake in unit tests. */
export interface NodeClientLike {
  readonly node: NodeAddress;
  infer(request: InferRequest, deadline: number, requestId: string, signal?: AbortSignal): Promise<InferResult>;
  serverReady(timeoutMs: number): Promise<boolean>;
  modelReady(model: string, timeoutMs: number): Promise<boolean>;
  modelMetadata(model: string, version: string | undefined, timeoutMs: number): Promise<ModelMetadata>;
  /** New client TLS material (a renewed certificate): used from the next connection on. */
  reloadTls(tls: ClientTlsMaterial): void;
  close(): void;
}

/** The gateway itself cancelled this call (the other copy of a hedged request answered first): says nothing about the node. */
export const attemptCancelled = (nodeId: string): CdsError => new CdsError('cancelled', `call to node ${nodeId} cancelled: another node answered first`);
