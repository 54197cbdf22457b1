import type { InferRequest, InferResult, ModelMetadata } from '../../src/kserve/types.js';
import type { NodeAddress, NodeClientLike } from '../../src/routing/node-client.js';
import { NodeFailure } from '../../src/routing/retry-policy.js';

/** A node client in memory whose calls answer, or fail as a reset connection would, on demand: a breaker's own work, without sockets. */
export class SwitchableNode implements NodeClientLike {
  failing = false;
  readonly node = { id: 'node-0', address: '127.0.0.1:1', serverName: 'node-0', protocol: 'rest' } as NodeAddress;
  async infer(request: InferRequest): Promise<InferResult> {
    if (this.failing) throw new NodeFailure('node is unavailable: reset', true);
    return { model: request.model, version: '1', parameters: {}, outputs: [] };
  }
  async serverReady(): Promise<boolean> { return true; }
  async modelReady(): Promise<boolean> { return true; }
  async modelMetadata(): Promise<ModelMetadata> { throw new Error('not used'); }
  reloadTls(): void {}
  close(): void {}
}

/** A request the in-memory node answers: a model name and nothing else. */
export const emptyRequest = { model: 'm', inputs: [], outputs: [], parameters: {} } as unknown as InferRequest;
