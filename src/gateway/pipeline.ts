import { CdsError, asCdsError, httpStatusOf } from '../errors.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Authenticator } from '../auth/authenticate.js';
import { authorize, type Decision, type ModelPolicy } from '../auth/policy.js';
import type { Principal } from '../auth/principal.js';
import type { AuditLog } from '../audit/log.js';
import type { AuditEntry } from '../audit/record.js';
import type { CallContext } from '../kserve/context.js';
import type { KServeHandlers } from '../kserve/handlers.js';
import type { InferRequest, InferResult, ModelMetadata, ServerMetadata } from '../kserve/types.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';
import type { Logger } from '../phi/logger.js';
import type { Pseudonymizer } from '../phi/pseudonym.js';
import { describeRequest } from '../phi/request-view.js';
import { deidentifyRequest } from '../phi/deidentify.js';
import type { Router } from '../routing/router.js';
import { SERVER_VERSION } from '../node/service.js';
import { peerName } from '../tls/peer.js';

const METADATA_TIMEOUT_MS = 2_000;
const PUBLIC_MODEL_PARAMETERS = new Set(['sha256', 'execution_provider']);

export interface PipelineDeps {
  config: GatewayConfig;
  authenticator: Authenticator;
  router: Router;
  audit: AuditLog;
  pseudonymizer: Pseudonymizer;
  metrics: GatewayMetrics;
  log: Logger;
}

/** What the stages learn about one request, for its audit record. */
interface Draft {
  principal?: Principal;
  decision?: Decision;
  model?: { name: string; version?: string; sha256?: string };
  node?: string;
  /** Every node the request's data went to (retries and hedges add to it). */
  sentTo: string[];
  patients: string[];
  inputDigest?: string;
  request?: unknown;
}

/**
 * The request path every door runs:
 *   authenticate → authorize (roles, purpose of use, break-the-glass)
 *   → decode → describe for audit (pseudonyms, digest, redacted view)
 *   → de-identify (for models that receive de-identified data) → route
 * and, whatever happened, one audit record on disk before the answer leaves.
 * Server liveness, readiness and metadata need only the mTLS handshake and
 * are not audited; everything model-scoped is.
 */
export class Pipeline implements KServeHandlers {
  private readonly policies = new Map<string, ModelPolicy>();
  private draining = false;

  constructor(private readonly d: PipelineDeps) {
    for (const [model, route] of Object.entries(d.config.models)) {
      this.policies.set(model, { model, allowRoles: route.allowRoles, purposes: route.purposes, breakTheGlassRoles: route.breakTheGlass?.allowRoles });
    }
  }

  async live(): Promise<boolean> {
    return true;
  }

  async ready(): Promise<boolean> {
    return !this.draining && this.d.audit.healthy && this.d.router.ready();
  }

  /** From now on report not ready, so load balancers stop sending; requests still arriving are served. */
  startDraining(): void {
    this.draining = true;
  }

  async serverMetadata(): Promise<ServerMetadata> {
    return { name: this.d.config.gateway.name, version: SERVER_VERSION, extensions: [], parameters: {} };
  }

  async modelMetadata(ctx: CallContext, model: string, version: string | undefined): Promise<ModelMetadata> {
    return this.audited(ctx, 'model_metadata', model, async (draft) => {
      await this.admit(ctx, model, draft);
      const metadata = await this.d.router.metadata(model, version, Math.min(METADATA_TIMEOUT_MS, Math.max(1, ctx.deadline - Date.now())));
      // Node internals (file paths, load errors) are for operators on the node's own port, not for callers.
      const parameters = Object.fromEntries(Object.entries(metadata.parameters).filter(([k]) => PUBLIC_MODEL_PARAMETERS.has(k)));
      return { ...metadata, parameters };
    });
  }

  async modelReady(ctx: CallContext, model: string): Promise<boolean> {
    return this.audited(ctx, 'model_ready', model, async (draft) => {
      await this.admit(ctx, model, draft);
      return this.d.router.modelReady(model);
    });
  }

  async infer(ctx: CallContext, model: string, version: string | undefined, decode: () => InferRequest): Promise<InferResult> {
    return this.audited(ctx, 'infer', model, async (draft) => {
      await this.admit(ctx, model, draft);
      const request = decode();
      const described = describeRequest(request, this.d.config.models[model]?.phiInputs ?? {}, this.d.pseudonymizer);
      draft.patients = described.patients;
      draft.inputDigest = described.inputDigest;
      draft.request = described.view;
      draft.model = { name: model, ...(version ? { version } : {}) };
      const route = this.d.config.models[model]!;
      const forwarded = route.receives === 'deidentified' ? deidentifyRequest(request, route.phiInputs, this.d.pseudonymizer) : request;
      const { result, node } = await this.d.router.infer(forwarded, ctx.deadline, ctx.requestId, draft.sentTo);
      ctx.trace.node = draft.node = node;
      const sha256 = result.parameters.model_sha256;
      draft.model = { name: model, version: result.version, ...(typeof sha256 === 'string' ? { sha256 } : {}) };
      // KServe: the response echoes the caller's id (a de-identified request carried a pseudonym instead).
      return { ...result, id: request.id };
    });
  }

  private async admit(ctx: CallContext, model: string, draft: Draft): Promise<void> {
    const principal = await this.d.authenticator.authenticate(ctx.authorization, ctx.peer);
    draft.principal = principal;
    ctx.trace.subject = principal.subject;
    if (!this.d.router.knows(model)) throw new CdsError('not_found', `model '${model}' is not served by this gateway`);
    draft.model = { name: model };
    const decision = authorize(principal, this.policies.get(model), model);
    draft.decision = decision;
    if (decision.emergency) {
      const kind = decision.breakTheGlass ? 'break_the_glass' : 'emergency_treatment';
      this.d.metrics.emergencyAccess.inc({ model, kind });
      this.d.log.warn({ alert: 'emergency_access', kind, requestId: ctx.requestId, subject: principal.subject, client: principal.certificate.name, model, purposes: decision.purposes }, 'EMERGENCY ACCESS');
    }
  }

  /** Runs one request's work and records it, success or failure, before answering. */
  private async audited<T>(ctx: CallContext, route: string, model: string, work: (draft: Draft) => Promise<T>): Promise<T> {
    const draft: Draft = { patients: [], sentTo: [] };
    let result: T | undefined;
    let error: CdsError | undefined;
    try {
      result = await work(draft);
    } catch (err) {
      error = asCdsError(err);
    }
    try {
      await this.d.audit.append(this.entry(ctx, route, draft, error));
    } catch (auditError) {
      this.d.metrics.auditFailures.inc();
      this.d.log.error({ requestId: ctx.requestId, reason: (auditError as Error).message }, 'audit record not written: request refused');
      throw new CdsError('unavailable', 'the audit log cannot record this request, so it was not answered; try again later');
    }
    if (error) throw error;
    return result as T;
  }

  private entry(ctx: CallContext, route: string, draft: Draft, error: CdsError | undefined): AuditEntry {
    const p = draft.principal;
    return {
      type: 'request',
      requestId: ctx.requestId,
      door: ctx.door,
      route,
      client: ctx.peer ? { name: peerName(ctx.peer), thumbprint: ctx.peer.thumbprint } : null,
      ...(ctx.remoteAddress ? { remoteAddress: ctx.remoteAddress } : {}),
      principal: p ? { sub: p.subject, issuer: p.issuer, ...(p.clientId ? { clientId: p.clientId } : {}), roles: p.roles, ...(p.tokenId ? { tokenId: p.tokenId } : {}) } : null,
      purposeOfUse: draft.decision?.purposes ?? p?.purposeOfUse ?? [],
      emergency: draft.decision?.emergency ?? false,
      ...(draft.decision?.breakTheGlass ? { breakTheGlass: true } : {}),
      model: draft.model ?? null,
      ...(draft.node ? { node: draft.node } : {}),
      // Named when the data reached a node other than the one that answered (a retry, a hedge, or no answer at all).
      ...(draft.sentTo.some((n) => n !== draft.node) ? { sentTo: draft.sentTo } : {}),
      outcome: error ? 'failure' : 'success',
      status: error ? error.kind : 'ok',
      code: error ? httpStatusOf(error.kind) : 200,
      latencyMs: Math.round((Date.now() - ctx.startedAt) * 10) / 10,
      patients: draft.patients,
      ...(draft.inputDigest ? { inputDigest: draft.inputDigest } : {}),
      ...(draft.request ? { request: draft.request } : {}),
    };
  }
}
