import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CdsHooksConfig, CdsServiceConfig } from '../config/schema.js';
import { CdsError, asCdsError, httpStatusOf, quote } from '../errors.js';
import type { AuditEntry } from '../audit/record.js';
import type { AuditLog } from '../audit/log.js';
import type { CallContext } from '../kserve/context.js';
import { jsonBytes, sendError, type RestBody } from '../kserve/rest-server.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';
import type { Logger } from '../phi/logger.js';
import type { Pseudonymizer } from '../phi/pseudonym.js';
import { redactFhir } from '../phi/fhir-redactor.js';
import type { Router } from '../routing/router.js';
import type { InferRequest } from '../kserve/types.js';
import { grantedAlternative, parseScope, type ClinicalScope } from '../auth/smart-scopes.js';
import { recordIdentity, recordOutcome, recorded } from '../gateway/pipeline.js';
import { CdsClientAuthenticator, type CdsCaller } from './client-jwt.js';
import type { ReplayStore } from '../auth/replay-cache.js';
import { parseFeedback, parseHookRequest, type HookRequest } from './hook-request.js';
import { fhirFetcher, renderTemplate, type FhirFetcher } from './prefetch.js';
import { featureRow, observationsIn } from './observations.js';
import { cardForMissingData, cardsFromOutputs, type Card } from './cards.js';

export interface CdsHooksDeps {
  config: CdsHooksConfig;
  router: Router;
  audit: AuditLog;
  pseudonymizer: Pseudonymizer;
  metrics: GatewayMetrics;
  log: Logger;
  /** The public base URL (config, or https://localhost:<REST port> in development), known once the door listens. */
  baseUrl: () => string;
  /** Where the EHRs' jti values are claimed (shared by every gateway worker). */
  replays?: ReplayStore;
}

/** What one CDS Hooks call's audit record learns as it goes. */
export interface Draft {
  caller?: CdsCaller;
  user?: string;
  patient?: string;
  model?: AuditEntry['model'];
  node?: string;
  sentTo: string[];
  inputDigest?: string;
  request?: unknown;
  cds: NonNullable<AuditEntry['cds']>;
}

const UNKNOWN_SERVICE = '(unknown)';

/**
 * The CDS Hooks 2.0 door: discovery, service calls and feedback, on the REST
 * listener (so mTLS holds here too). Each call: the CDS client's JWT (aud =
 * the exact URL) → the service's policy (issuer, user type) → the hook
 * request → prefetch, fetching what is missing from the client's FHIR server
 * → the model's input row from Observations → the model through the router →
 * cards; one audit record, durable before the answer, with patient and user
 * as pseudonyms, FHIR only as the redactor's output, cards as digests.
 */
export class CdsHooksDoor {
  private readonly clients: CdsClientAuthenticator;
  private readonly fetchers = new Map<string, FhirFetcher>();
  /** Each service's fhirScopes, parsed once (the schema checked they parse). */
  private readonly fhirScopes = new Map<string, ClinicalScope[]>();

  constructor(private readonly d: CdsHooksDeps) {
    this.clients = new CdsClientAuthenticator(d.config.clients, d.replays);
    for (const [id, s] of Object.entries(d.config.services)) this.fhirScopes.set(id, s.fhirScopes.map((t) => parseScope(t)!));
    for (const c of d.config.clients) this.fetchers.set(c.issuer, fhirFetcher(c, { timeoutMs: d.config.fhirTimeoutMs, maxBytes: d.config.maxFhirResponseBytes }));
  }

  /** Service ids are configuration; anything else a client sends is its text and is never a label. */
  serviceLabel(id: string | undefined): string {
    return id !== undefined && Object.hasOwn(this.d.config.services, id) ? id : UNKNOWN_SERVICE;
  }

  modelOf(id: string | undefined): string | undefined {
    return id !== undefined && Object.hasOwn(this.d.config.services, id) ? this.d.config.services[id]!.model : undefined;
  }

  /** The JWT check for a path, before the body is read. */
  async authenticate(ctx: CallContext, path: string, draft: Draft): Promise<void> {
    if (!ctx.peer) throw new CdsError('unauthenticated', 'a verified client certificate is required');
    draft.caller = await this.clients.verify(ctx.authorization, `${this.d.baseUrl()}${path}`);
  }

  discovery(): unknown {
    return {
      services: Object.entries(this.d.config.services).map(([id, s]) => ({
        hook: s.hook, id, title: s.title, description: s.description,
        ...(Object.keys(s.prefetch).length ? { prefetch: s.prefetch } : {}),
        ...(s.usageRequirements ? { usageRequirements: s.usageRequirements } : {}),
      })),
    };
  }

  private service(id: string, draft: Draft): CdsServiceConfig {
    const service = Object.hasOwn(this.d.config.services, id) ? this.d.config.services[id] : undefined;
    if (!service) {
      throw new CdsError('not_found', `no CDS service ${quote(id)}`);
    }
    if (service.allowIssuers.length > 0 && !service.allowIssuers.includes(draft.caller!.issuer)) {
      throw new CdsError('permission_denied', `this CDS client may not call service ${id}`);
    }
    return service;
  }

  async call(id: string, hookBody: unknown, ctx: CallContext, draft: Draft): Promise<{ cards: Card[] }> {
    const service = this.service(id, draft);
    const request = parseHookRequest(hookBody, service.hook);
    draft.cds.hook = request.hook;
    draft.cds.hookInstance = request.hookInstance;
    draft.user = this.d.pseudonymizer.pseudonym('cds-user', request.context.userId);
    draft.patient = this.d.pseudonymizer.pseudonym('patient', request.context.patientId);
    const userType = request.context.userId.split('/')[0] as CdsServiceConfig['allowUserTypes'][number];
    if (!service.allowUserTypes.includes(userType)) throw new CdsError('permission_denied', `service ${id} does not answer for a ${userType} user`);

    const prefetched = await this.prefetch(id, service, request, ctx, draft);
    const row = featureRow(observationsIn(prefetched), request.context.patientId, service.input);
    if (row.otherPatients > 0) draft.cds.ignoredOtherPatients = row.otherPatients;
    draft.request = {
      hook: request.hook,
      context: { userId: draft.user, patientId: draft.patient, ...(request.context.encounterId ? { encounterId: this.d.pseudonymizer.pseudonym('encounter', request.context.encounterId) } : {}) },
      observations: row.values.map((v) => ({ input: v.label, resource: redactFhir(v.observation, { pseudonym: (kind, value) => this.d.pseudonymizer.pseudonym(kind, value) }) })),
    };
    draft.model = { name: service.model };
    if (row.missing.length > 0) {
      draft.cds.missing = row.missing;
      return { cards: this.recordCards(id, draft, cardForMissingData(service.cards, service.title, row.missing, service.input.maxAgeHours), 'no_score') };
    }

    const values = Float32Array.from(row.values.map((v) => v.value));
    const inferRequest: InferRequest = {
      model: service.model, parameters: {}, outputs: [],
      inputs: [{ name: service.input.tensor, datatype: 'FP32', shape: [1, values.length], data: values }],
    };
    draft.inputDigest = this.d.pseudonymizer.inputDigest([{ name: service.input.tensor, datatype: 'FP32', shape: [1, values.length], bytes: new Uint8Array(values.buffer) }]);
    let outputs;
    try {
      const { result, node } = await this.d.router.infer(inferRequest, ctx.deadline, ctx.requestId, draft.sentTo);
      ctx.trace.node = draft.node = node;
      const sha256 = result.parameters.model_sha256;
      draft.model = { name: service.model, version: result.version, ...(typeof sha256 === 'string' ? { sha256 } : {}) };
      outputs = result.outputs;
    } catch (err) {
      // The model refused the recorded values (outside its plausible ranges): the EHR's request was fine, the data is not scoreable.
      if (asCdsError(err).kind !== 'invalid_argument') throw err;
      draft.cds.missing = ['a plausible value (the model refused a recorded value as out of range)'];
      return { cards: this.recordCards(id, draft, cardForMissingData(service.cards, service.title, ['plausible values'], service.input.maxAgeHours), 'no_score') };
    }
    // The inputs, by label, for the card's text: what the score was computed from.
    const inputs = Object.fromEntries(row.values.map((v) => [v.label, String(Math.round(v.value * 100) / 100)]));
    return { cards: this.recordCards(id, draft, cardsFromOutputs(service.cards, outputs, inputs), undefined) };
  }

  /** Every prefetch key's value: as the client sent it, or fetched when it sent none (or null, which means its own fetch failed). */
  private async prefetch(id: string, service: CdsServiceConfig, request: HookRequest, ctx: CallContext, draft: Draft): Promise<unknown[]> {
    const values: unknown[] = [];
    for (const [key, template] of Object.entries(service.prefetch)) {
      const given = request.prefetch[key];
      if (given !== undefined && given !== null) { values.push(given); continue; }
      const query = renderTemplate(template, request);
      if (query === undefined) continue; // the hook's context lacks a token this template needs (an optional encounter)
      const scopes = this.fhirScopes.get(id)!;
      if (scopes.length > 0 && request.fhirAuthorization && !grantedAlternative(request.fhirAuthorization.scope.split(' ').filter(Boolean), scopes)) {
        throw new CdsError('failed_precondition', `fhirAuthorization does not grant the FHIR access this service needs (one of: ${service.fhirScopes.join(', ')})`);
      }
      try {
        values.push(await this.fetchers.get(draft.caller!.issuer)!.fetch(request, query, ctx.deadline));
        this.d.metrics.cdsFhirFetches.inc({ service: id, outcome: 'ok' });
        (draft.cds.fetched ??= []).push(key);
      } catch (err) {
        this.d.metrics.cdsFhirFetches.inc({ service: id, outcome: 'failed' });
        throw err;
      }
    }
    return values;
  }

  private recordCards(id: string, draft: Draft, cards: Card[], label: string | undefined): Card[] {
    draft.cds.cards = cards.map((c) => ({ uuid: c.uuid, indicator: c.indicator, digest: this.d.pseudonymizer.pseudonym('card', JSON.stringify(c)) }));
    for (const c of cards) this.d.metrics.cdsCards.inc({ service: id, indicator: label ?? c.indicator });
    return cards;
  }

  async feedback(id: string, body: unknown, draft: Draft): Promise<void> {
    this.service(id, draft);
    const feedback = parseFeedback(body);
    draft.cds.feedback = feedback.map((f) => ({
      card: f.card, outcome: f.outcome,
      // A coded reason is terminology; its display and the user's comment are free text, so only the fact of a comment is kept.
      ...(f.overrideReason?.reason?.code ? { reason: `${f.overrideReason.reason.system ?? ''}|${f.overrideReason.reason.code}`.slice(0, 300) } : {}),
      ...(f.acceptedSuggestions ? { acceptedSuggestions: f.acceptedSuggestions.length } : {}),
      ...(f.overrideReason?.userComment ? { comment: true } : {}),
    }));
    for (const f of feedback) this.d.metrics.cdsFeedback.inc({ service: id, outcome: f.outcome });
  }

  /** Runs one call's work and records it, success or failure, before the answer. */
  async audited<T>(ctx: CallContext, route: string, id: string | undefined, work: (draft: Draft) => Promise<T>, started?: Draft): Promise<T> {
    const draft: Draft = started ?? { sentTo: [], cds: { service: id === undefined ? '(discovery)' : this.serviceLabel(id) } };
    // A service id nobody configured is client text: the record keeps its pseudonym only.
    if (id !== undefined && draft.cds.service === UNKNOWN_SERVICE) draft.cds.service = `${UNKNOWN_SERVICE} ${this.d.pseudonymizer.pseudonym('cds-service', id)}`;
    return recorded(this.d, ctx.requestId, () => work(draft), (error) => this.entry(ctx, route, draft, error));
  }

  private entry(ctx: CallContext, route: string, draft: Draft, error: CdsError | undefined): AuditEntry {
    const caller = draft.caller;
    return {
      ...recordIdentity(this.d.pseudonymizer, ctx, 'cds-hooks', route),
      principal: caller ? { sub: draft.user ?? '(none)', issuer: caller.issuer, ...(caller.tenant ? { clientId: caller.tenant } : {}), roles: [], tokenId: caller.tokenId } : null,
      purposeOfUse: ['TREAT'],
      emergency: false,
      patients: draft.patient ? [draft.patient] : [],
      ...(draft.inputDigest ? { inputDigest: draft.inputDigest } : {}),
      ...(draft.request ? { request: draft.request } : {}),
      ...recordOutcome(ctx, error, draft.model ?? null, draft.node, draft.sentTo),
      cds: draft.cds,
    };
  }

}

interface HookState { ctx: CallContext; draft?: Draft }
const HOOK_STATE = 'cdsgateHookState';

export interface CdsHooksBinding {
  context(request: FastifyRequest): CallContext;
  finished?(ctx: CallContext, route: string, status: number, model: string | undefined, error: CdsError | undefined): void;
}

/**
 * GET /cds-services, POST /cds-services/{id}, POST /cds-services/{id}/feedback.
 * The JWT is checked before the body is read; errors are {"error": "..."}
 * like every other answer of the gateway (412 when FHIR data cannot be had).
 */
export function registerCdsHooksRoutes(app: FastifyInstance, door: CdsHooksDoor, binding: CdsHooksBinding): void {
  // A request property, not a WeakMap keyed by request, for the reason rest-routes.ts gives.
  app.decorateRequest(HOOK_STATE, null);
  const stateOf = (req: FastifyRequest): HookState => {
    const holder = req as unknown as Record<typeof HOOK_STATE, HookState | null>;
    return (holder[HOOK_STATE] ??= { ctx: { ...binding.context(req), door: 'cds-hooks' } });
  };

  const answer = (reply: FastifyReply, req: FastifyRequest, route: string, id: string | undefined, body: unknown) => {
    const { ctx } = stateOf(req);
    reply.code(200).headers({ 'content-type': 'application/json', 'x-request-id': ctx.requestId }).send(jsonBytes(body));
    binding.finished?.(ctx, route, 200, door.modelOf(id), undefined); // once the answer is on its way
    return reply;
  };
  const fail = (reply: FastifyReply, req: FastifyRequest, route: string, id: string | undefined, err: unknown) => {
    const error = asCdsError(err);
    const { ctx } = stateOf(req);
    sendError(reply, error, ctx.requestId);
    binding.finished?.(ctx, route, httpStatusOf(error.kind), door.modelOf(id), error);
    return reply;
  };

  /** The body of a CDS call is JSON (no binary tensor section). */
  const jsonOf = (req: FastifyRequest): unknown => {
    const body = req.body as RestBody | undefined;
    if (body?.binary) throw new CdsError('invalid_argument', 'CDS Hooks bodies are JSON only');
    if (body?.json === undefined || body.json === null || typeof body.json !== 'object' || Array.isArray(body.json)) {
      throw new CdsError('invalid_argument', 'CDS Hooks request: the body must be a JSON object');
    }
    return body.json;
  };

  /** The JWT, from the path and headers: a caller that fails it is recorded and answered before its body is read. */
  const authenticateFirst = (route: string) => async (req: FastifyRequest<{ Params: { id?: string } }>, reply: FastifyReply) => {
    const s = stateOf(req);
    const draft = newDraft(door, req.params.id);
    try {
      await door.authenticate(s.ctx, req.url.split('?')[0]!, draft);
      s.draft = draft;
    } catch (err) {
      reply.header('connection', 'close');
      try {
        await door.audited(s.ctx, route, req.params.id, async () => { throw err; }, draft);
      } catch (recorded) {
        return fail(reply, req, route, req.params.id, recorded);
      }
    }
  };

  /** A CDS route: the caller authenticated before the body (authenticateFirst), the work audited, then answered or failed in the one form. */
  const handle = (route: string, work: (req: FastifyRequest<{ Params: { id?: string } }>, draft: Draft) => Promise<unknown>) =>
    async (req: FastifyRequest<{ Params: { id?: string } }>, reply: FastifyReply) => {
      const s = stateOf(req);
      const { id } = req.params;
      try {
        return answer(reply, req, route, id, await door.audited(s.ctx, route, id, (draft) => work(req, draft), s.draft));
      } catch (err) {
        return fail(reply, req, route, id, err);
      }
    };

  app.get('/cds-services', { onRequest: authenticateFirst('cds-discovery') }, handle('cds-discovery', async () => door.discovery()));
  app.post('/cds-services/:id', { onRequest: authenticateFirst('cds-service') },
    handle('cds-service', (req, draft) => door.call(req.params.id!, jsonOf(req), stateOf(req).ctx, draft)));
  app.post('/cds-services/:id/feedback', { onRequest: authenticateFirst('cds-feedback') },
    handle('cds-feedback', async (req, draft) => { await door.feedback(req.params.id!, jsonOf(req), draft); return {}; }));
}

function newDraft(door: CdsHooksDoor, id: string | undefined): Draft {
  return { sentTo: [], cds: { service: id === undefined ? '(discovery)' : door.serviceLabel(id) } };
}
