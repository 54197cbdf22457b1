import { CdsError } from '../errors.js';
import type { GatewayConfig } from '../config/schema.js';
import { Authenticator } from '../auth/authenticate.js';
import { authorize, type ModelPolicy } from '../auth/policy.js';
import type { Principal } from '../auth/principal.js';
import type { CallContext } from '../kserve/context.js';
import type { KServeHandlers } from '../kserve/handlers.js';
import type { InferRequest, InferResult, ModelMetadata, ServerMetadata } from '../kserve/types.js';
import type { Router } from '../routing/router.js';
import { SERVER_VERSION } from '../node/service.js';

const METADATA_TIMEOUT_MS = 2_000;
const PUBLIC_MODEL_PARAMETERS = new Set(['sha256', 'execution_provider']);

/**
 * The request path every door runs: authenticate → authorize → route.
 * (PHI redaction and the audit record slot in between authorize and route.)
 * Server liveness and readiness need only the mTLS handshake; everything
 * model-scoped needs a token whose roles the model's policy accepts.
 */
export class Pipeline implements KServeHandlers {
  private readonly policies = new Map<string, ModelPolicy>();

  constructor(private readonly config: GatewayConfig, private readonly authenticator: Authenticator, private readonly router: Router) {
    for (const [model, route] of Object.entries(config.models)) this.policies.set(model, { model, allowRoles: route.allowRoles });
  }

  async live(): Promise<boolean> {
    return true;
  }

  async ready(): Promise<boolean> {
    return this.router.ready();
  }

  async serverMetadata(): Promise<ServerMetadata> {
    return { name: this.config.gateway.name, version: SERVER_VERSION, extensions: [], parameters: {} };
  }

  private async admit(ctx: CallContext, model: string): Promise<Principal> {
    const principal = await this.authenticator.authenticate(ctx.authorization, ctx.peer);
    ctx.trace.subject = principal.subject;
    if (!this.router.knows(model)) throw new CdsError('not_found', `model '${model}' is not served by this gateway`);
    authorize(principal, this.policies.get(model), model);
    return principal;
  }

  async modelMetadata(ctx: CallContext, model: string, version: string | undefined): Promise<ModelMetadata> {
    await this.admit(ctx, model);
    const metadata = await this.router.metadata(model, version, Math.min(METADATA_TIMEOUT_MS, Math.max(1, ctx.deadline - Date.now())));
    // Node internals (file paths, load errors) are for operators on the node's own port, not for callers.
    const parameters = Object.fromEntries(Object.entries(metadata.parameters).filter(([k]) => PUBLIC_MODEL_PARAMETERS.has(k)));
    return { ...metadata, parameters };
  }

  async modelReady(ctx: CallContext, model: string): Promise<boolean> {
    await this.admit(ctx, model);
    return this.router.modelReady(model);
  }

  async infer(ctx: CallContext, model: string, _version: string | undefined, decode: () => InferRequest): Promise<InferResult> {
    await this.admit(ctx, model);
    const request = decode();
    const { result, node } = await this.router.infer(request, ctx.deadline, ctx.requestId);
    ctx.trace.node = node;
    return result;
  }
}
