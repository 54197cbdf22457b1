import { CdsError, quote } from '../errors.js';
import type { CallContext } from '../kserve/context.js';
import type { KServeHandlers } from '../kserve/handlers.js';
import type { InferRequest, InferResult, ModelMetadata, ServerMetadata } from '../kserve/types.js';
import { matchInputs, matchOutputs } from '../tensor/signature.js';
import { identityAllowed, peerName } from '../tls/peer.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import type { ResolvedProvider } from './provider.js';
import type { LoadedModel, RepositoryEntry } from './repository.js';
import { modelKey, type SessionPool } from './session-pool.js';
import { DynamicBatcher } from './batcher.js';

export { SERVER_VERSION } from '../kserve/version.js';
import { SERVER_VERSION } from '../kserve/version.js';

/**
 * The node's KServe operations over its verified model repository. Only the
 * gateway's certificate identity may call it: the CA alone is not enough,
 * because application certificates chain to the same CA.
 */
export class NodeService implements KServeHandlers {
  /** serving → draining (not ready, still serving) → stopped (refuses new work). */
  private phase: 'serving' | 'draining' | 'stopped' = 'serving';
  /** Injected delay per inference (fault injection, test only). */
  faultDelayMs = 0;
  /** Share of inferences that get the delay: 1 is a slow node, less is a node that stalls now and then. */
  faultProbability = 1;

  /** Per batched model, its dynamic batcher; other models go straight to the pool. */
  private readonly batchers = new Map<string, DynamicBatcher>();

  constructor(
    private readonly nodeId: string,
    private readonly entries: RepositoryEntry[],
    private readonly provider: ResolvedProvider,
    private readonly pool: SessionPool,
    private readonly allowedClients: readonly string[],
    private readonly metrics: NodeMetrics,
  ) {
    for (const e of entries) {
      if (e.status !== 'loaded' || !e.config.dynamicBatching) continue;
      const key = modelKey(e.name, e.version);
      const b = e.config.dynamicBatching;
      this.batchers.set(key, new DynamicBatcher(
        (inputs, outputs, deadline) => pool.run(key, inputs, outputs, deadline),
        { maxBatchSize: e.config.maxBatchSize, preferredBatchSizes: b.preferredBatchSizes, maxQueueDelayUs: b.maxQueueDelayMicroseconds, maxQueueSize: b.maxQueueSize },
        {
          executed: (requests, _rows, oldestMs) => {
            metrics.executions.inc({ model: e.name });
            metrics.batchRequests.observe({ model: e.name }, requests);
            metrics.queueSeconds.observe({ model: e.name }, oldestMs / 1000);
          },
        },
      ));
    }
  }

  /** Every handler starts here. */
  private admit(ctx: CallContext): void {
    if (identityAllowed(ctx.peer, this.allowedClients)) return;
    this.metrics.deniedCallers.inc({ listener: ctx.door });
    const who = ctx.peer ? peerName(ctx.peer) : 'no client certificate';
    throw new CdsError('permission_denied', `client certificate ${who} is not allowed to call this node`);
  }

  /** Reports not ready from now on; requests still arriving are served. */
  startDraining(): void {
    if (this.phase === 'serving') this.phase = 'draining';
  }

  /** Refuses new inference (UNAVAILABLE, which the gateway retries elsewhere). */
  stopAccepting(): void {
    this.phase = 'stopped';
  }

  async live(ctx: CallContext): Promise<boolean> {
    this.admit(ctx);
    return true;
  }

  async ready(ctx: CallContext): Promise<boolean> {
    this.admit(ctx);
    return this.phase === 'serving' && this.entries.every((e) => e.status === 'loaded');
  }

  async serverMetadata(ctx: CallContext): Promise<ServerMetadata> {
    this.admit(ctx);
    return { name: `cdsgate-node/${this.nodeId}`, version: SERVER_VERSION, extensions: ['binary_tensor_data'], parameters: this.providerParameters() };
  }

  async modelReady(ctx: CallContext, name: string, version: string | undefined): Promise<boolean> {
    this.admit(ctx);
    const entry = this.find(name, version);
    return this.phase === 'serving' && entry.status === 'loaded';
  }

  async modelMetadata(ctx: CallContext, name: string, version: string | undefined): Promise<ModelMetadata> {
    this.admit(ctx);
    const entry = this.find(name, version);
    if (!entry.config) throw new CdsError('unavailable', `model ${quote(name)} failed to load: ${(entry as { reason: string }).reason}`);
    const { config } = entry;
    const parameters: ModelMetadata['parameters'] = { ...this.providerParameters(), loaded: entry.status === 'loaded' };
    if (entry.status === 'loaded') parameters.sha256 = entry.sha256;
    else parameters.load_error = entry.reason;
    return {
      name: config.name,
      versions: Object.keys(config.versions),
      platform: config.platform,
      inputs: config.inputs.map(({ name: n, datatype, shape }) => ({ name: n, datatype, shape })),
      outputs: config.outputs.map(({ name: n, datatype, shape }) => ({ name: n, datatype, shape })),
      parameters,
    };
  }

  async infer(ctx: CallContext, modelName: string, _version: string | undefined, decode: () => InferRequest): Promise<InferResult> {
    this.admit(ctx);
    const started = performance.now();
    let outcome = 'error';
    try {
      const request = decode();
      if (this.faultDelayMs > 0 && Math.random() < this.faultProbability) await new Promise((r) => setTimeout(r, this.faultDelayMs));
      const model = this.loaded(request.model, request.version);
      const inputs = matchInputs(model.config, request.inputs);
      const outputs = matchOutputs(model.config, request.outputs);
      const key = modelKey(model.name, model.version);
      const batcher = this.batchers.get(key);
      if (!batcher) this.metrics.executions.inc({ model: model.name });
      const tensors = batcher
        ? await batcher.infer(inputs, outputs, ctx.deadline, ctx.signal)
        : await this.pool.run(key, inputs, outputs, ctx.deadline, ctx.signal);
      outcome = 'ok';
      // The pinned hash of the file that answered, so the gateway's audit record can name it.
      return { model: model.name, version: model.version, id: request.id, parameters: { model_sha256: model.sha256 }, outputs: tensors };
    } catch (err) {
      if (err instanceof CdsError) outcome = err.kind;
      throw err;
    } finally {
      // A label is a model this node serves, never a caller's text.
      const label = this.entries.some((e) => e.name === modelName) ? modelName : '(unknown)';
      this.metrics.inferences.inc({ model: label, outcome });
      this.metrics.inferenceSeconds.observe({ model: label }, (performance.now() - started) / 1000);
      this.metrics.queueDepth.set(this.pool.queued);
    }
  }

  private find(name: string, version: string | undefined): RepositoryEntry {
    const entry = this.entries.find((e) => e.name === name);
    if (!entry) throw new CdsError('not_found', `model ${quote(name)} is not served by this node`);
    if (version !== undefined && entry.version !== undefined && version !== entry.version) {
      throw new CdsError('not_found', `model ${quote(name)} version ${quote(version)} is not served by this node (it serves version ${entry.version})`);
    }
    return entry;
  }

  private loaded(name: string, version: string | undefined): LoadedModel {
    if (this.phase === 'stopped') throw new CdsError('unavailable', `node ${this.nodeId} is shutting down`);
    const entry = this.find(name, version);
    if (entry.status !== 'loaded') throw new CdsError('unavailable', `model ${quote(name)} is not ready on node ${this.nodeId}: ${entry.reason}`);
    return entry;
  }

  private providerParameters(): ServerMetadata['parameters'] {
    const p: ServerMetadata['parameters'] = { execution_provider: this.provider.name };
    if (this.provider.deviceId !== undefined) p.device_id = this.provider.deviceId;
    if (this.provider.fallbackReason) p.execution_provider_fallback = this.provider.fallbackReason;
    return p;
  }
}
