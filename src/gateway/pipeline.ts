import { CdsError, asCdsError, httpStatusOf, quote } from '../errors.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Authenticator } from '../auth/authenticate.js';
import { authorize, checkLaunchPatient, type Decision } from '../auth/policy.js';
import type { CompiledRoutes } from '../config/routes.js';
import type { Principal } from '../auth/principal.js';
import type { AuditLog } from '../audit/log.js';
import { serialiseEarlyFields, type AuditEntry, type DispatchEntry, type EarlyFields, type SerialisedEarlyFields, type SplitEntry } from '../audit/record.js';
import type { CallContext } from '../kserve/context.js';
import type { KServeHandlers } from '../kserve/handlers.js';
import type { InferRequest, InferResult, ModelMetadata, ServerMetadata } from '../kserve/types.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';
import type { Logger } from '../phi/logger.js';
import type { Pseudonymizer } from '../phi/pseudonym.js';
import { describeRequest, fhirPatientIds } from '../phi/request-view.js';
import type { OnnxNer } from '../phi/onnx-ner.js';
import type { PhiSpan } from '../phi/text-redactor.js';
import { deidentifyRequest } from '../phi/deidentify.js';
import type { Router } from '../routing/router.js';
import { SERVER_VERSION } from '../kserve/version.js';
import { checkModelVersion } from '../kserve/request-limits.js';
import { peerName } from '../tls/peer.js';
import { setImmediate as nextTurn } from 'node:timers/promises';

const METADATA_TIMEOUT_MS = 2_000;
/** No extra redaction spans (no NER model configured). */
const NO_SPANS = (): readonly PhiSpan[] => [];
const utf8 = new TextDecoder();
/** How logs, metrics and audit records name a model that is not configured: never the caller's text. */
export const UNKNOWN_MODEL = '(unknown)';
const PUBLIC_MODEL_PARAMETERS = new Set(['sha256', 'execution_provider']);

export interface PipelineDeps {
  config: GatewayConfig;
  /** Each model's policy, PHI inputs, data class and pool, compiled once (config/routes.ts), shared with the router. */
  routes: CompiledRoutes;
  authenticator: Authenticator;
  router: Router;
  audit: AuditLog;
  pseudonymizer: Pseudonymizer;
  metrics: GatewayMetrics;
  log: Logger;
  /** A configured NER model for free text (phi.ner); its spans join the text redactor's. */
  ner?: OnnxNer;
}

/** What the stages learn about one request, for its audit record. */
interface Draft {
  principal?: Principal;
  decision?: Decision;
  model?: AuditEntry['model'];
  node?: string;
  /** Every node the request's data went to (retries and hedges add to it). */
  sentTo: string[];
  patients: string[];
  inputDigest?: string;
  request?: unknown;
  /** Its dispatch record is on disk (dispatchEntry): the request's own record need only be written before the answer. */
  dispatched?: boolean;
  /** Its record's early fields, serialised while the node worked (infer); else they are serialised with the outcome. */
  early?: SerialisedEarlyFields;
}

/**
 * What every request record says first, whichever door the call came
 * through: which call, and who connected. An optional field left undefined is
 * absent from the JSON line.
 */
export function recordIdentity(psn: Pseudonymizer, ctx: CallContext, door: string, route: string) {
  return {
    type: 'request' as const,
    requestId: ctx.requestId,
    clientRequestId: ctx.clientRequestId !== undefined ? psn.pseudonym('client-request-id', ctx.clientRequestId) : undefined,
    door,
    route,
    client: clientView(ctx),
    remoteAddress: ctx.remoteAddress || undefined,
  };
}

/**
 * What every request record says last: how the call ended, which model
 * answered from which node, and every node the data went to when that is more
 * than the one that answered (a retry, a hedge, or no answer at all). One
 * object literal, no spreads: it is built after the node's answer, on the
 * caller's path.
 */
export function recordOutcome(ctx: CallContext, error: CdsError | undefined, model: AuditEntry['model'], node: string | undefined, sentTo: string[]): SplitEntry['outcome'] {
  return {
    outcome: error ? 'failure' : 'success',
    status: error ? error.kind : 'ok',
    code: error ? httpStatusOf(error.kind) : 200,
    latencyMs: Math.round((Date.now() - ctx.startedAt) * 10) / 10,
    model,
    node: node || undefined,
    sentTo: sentTo.some((n) => n !== node) ? sentTo : undefined,
  };
}

const clientView = (ctx: CallContext): AuditEntry['client'] => (ctx.peer ? { name: peerName(ctx.peer), thumbprint: ctx.peer.thumbprint } : null);

const principalView = (p: Principal): NonNullable<AuditEntry['principal']> =>
  ({ sub: p.subject, issuer: p.issuer, clientId: p.clientId || undefined, roles: p.roles, tokenId: p.tokenId || undefined });

/**
 * Durable before the answer: the record is on disk, or the request is refused
 * (503) and the failure counted and logged. Every door records through this.
 * `durable` false: the record is written, not yet synced, which is enough
 * only when the request's dispatch record is already on disk (see infer).
 */
export async function appendOrRefuse(d: Pick<PipelineDeps, 'audit' | 'metrics' | 'log'>, requestId: string, entry: AuditEntry | SplitEntry, durable = true): Promise<void> {
  try {
    await (durable ? d.audit.append(entry) : d.audit.appendWritten(entry));
  } catch (auditError) {
    d.metrics.auditFailures.inc();
    d.log.error({ requestId, reason: (auditError as Error).message }, 'audit record not written: request refused');
    throw new CdsError('unavailable', 'the audit log cannot record this request, so it was not answered; try again later');
  }
}

/**
 * Runs a request's work, then records it — success or failure — durably
 * before the answer (or the error) goes back. Every door's work runs in here.
 * When `dispatched()` says the work put the request's dispatch record on disk,
 * its own record is written before the answer and synced with the next batch.
 */
export async function recorded<T>(d: Pick<PipelineDeps, 'audit' | 'metrics' | 'log'>, requestId: string, work: () => Promise<T>, entry: (error: CdsError | undefined) => AuditEntry | SplitEntry, dispatched?: () => boolean): Promise<T> {
  let result: T | undefined;
  let error: CdsError | undefined;
  try {
    result = await work();
  } catch (err) {
    error = asCdsError(err);
  }
  await appendOrRefuse(d, requestId, entry(error), !dispatched?.());
  if (error) throw error;
  return result as T;
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
  private readonly tensorNames = new Map<string, Promise<ReadonlySet<string>>>();
  private draining = false;
  /** Requests between their first stage and their answer (when this is 1 the audit log syncs on the event loop, whatever the disk). */
  inProgress = 0;

  constructor(private readonly d: PipelineDeps) {}

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
    return { name: this.d.config.gateway.name, version: SERVER_VERSION, extensions: ['binary_tensor_data'], parameters: {} };
  }

  async modelMetadata(ctx: CallContext, model: string, version: string | undefined): Promise<ModelMetadata> {
    return this.audited(ctx, 'model_metadata', async (draft) => {
      await this.admit(ctx, model, draft);
      checkModelVersion(version);
      const metadata = await this.d.router.metadata(model, version, Math.min(METADATA_TIMEOUT_MS, Math.max(1, ctx.deadline - Date.now())));
      // Node internals (file paths, load errors) are for operators on the node's own port, not for callers.
      const parameters = Object.fromEntries(Object.entries(metadata.parameters).filter(([k]) => PUBLIC_MODEL_PARAMETERS.has(k)));
      return { ...metadata, parameters };
    });
  }

  async modelReady(ctx: CallContext, model: string): Promise<boolean> {
    return this.audited(ctx, 'model_ready', async (draft) => {
      await this.admit(ctx, model, draft);
      return this.d.router.modelReady(model);
    });
  }

  async infer(ctx: CallContext, model: string, version: string | undefined, decode: () => InferRequest): Promise<InferResult> {
    return this.audited(ctx, 'infer', async (draft) => {
      await this.admit(ctx, model, draft);
      checkModelVersion(version);
      draft.model = { name: model, ...this.versionView(version) };
      const request = decode();
      // Launch context binds only requests allowed through a patient/ scope; others need no patient list.
      if (draft.decision?.launchPatient !== undefined) checkLaunchPatient(draft.decision, this.patientsOf(model, request), model);
      const route = this.d.routes.get(model)!;
      const nerSpans = this.d.ner ? await this.nerSpans(this.d.ner, request, route.phiInputs) : NO_SPANS;
      const forwarded = route.receives === 'deidentified' ? deidentifyRequest(request, route.phiInputs, this.d.pseudonymizer, nerSpans) : request;
      // The request leaves for the node now, and its audit view (pseudonyms, digest, and for free text the text
      // redactor: 1–2 ms for a 2 KB note) is made while the node runs, so such a request waits for the slower of
      // the two rather than their sum. The view never refuses a request (describeRequest does not throw) and the
      // record is still on disk before the answer. The catch only keeps a node failure that comes while the view
      // is made from counting as unhandled; the answer is awaited below.
      const answer = this.d.router.infer(forwarded, ctx.deadline, ctx.requestId, draft.sentTo);
      answer.catch(() => undefined);
      // The view is made only once the request's bytes are on their way. undici writes to an idle keep-alive
      // socket one turn of the event loop after the call (it first reads anything the node sent meanwhile), and
      // the router reaches undici one microtask from here: so one microtask, then a turn queued behind undici's.
      // Without this the view ran before the write (this with the two changes beside it, the audit batch's turn
      // and the log line after the answer: 0.28 ms at p50 on one connection, A/B of two builds). Free
      // text waits a second turn before the redactor takes the thread: only then are the bytes out of the TLS
      // socket (bench:phi:latency: redaction added 2.8 ms at p50 with no turn or one, 1.1 ms with two).
      await Promise.resolve();
      for (let turn = route.redactsText ? 2 : 1; turn > 0; turn--) await nextTurn();
      const described = describeRequest(request, route.phiInputs, this.d.pseudonymizer, await this.knownTensorNames(model), nerSpans);
      draft.patients = described.patients;
      draft.inputDigest = described.inputDigest;
      draft.request = described.view;
      // Durable audit without the sync after the answer: when this request's record would get a sync of its own
      // (a quiet gateway), a dispatch record (who sent whose data to which model and node, and why) is synced now,
      // while the node works, and the full record after the answer need only be written before it leaves (AuditLog
      // appendWritten; the next sync, at most 10 ms later, makes it durable). No answer leaves without a record of
      // the access on disk. Under load, batches gather many records per sync and one record per request costs less
      // (audit/log.ts syncsAlone). A dispatch record that could not be written leaves `dispatched` unset, so the
      // request's own record must be synced before the answer; the log fails for good on a write error, so that
      // append fails too and refuses the request (503), counted and logged once, there.
      // Everything the request's own record says but its outcome is known now, and the dispatch record is made
      // of the same fields: serialised while the node works, not after it answers (at one connection the event
      // loop waits for the node here).
      const early = this.earlyFields(ctx, 'infer', draft);
      const onDisk = this.d.audit.syncsAlone
        ? this.d.audit.append(this.dispatchEntry(early, draft)).then(() => { draft.dispatched = true; }, () => undefined)
        : undefined;
      draft.early = serialiseEarlyFields(early);
      const { result, node } = await answer;
      await onDisk;
      ctx.trace.node = draft.node = node;
      const sha256 = result.parameters.model_sha256;
      draft.model = { name: model, version: result.version, sha256: typeof sha256 === 'string' ? sha256 : undefined };
      // KServe: the response echoes the caller's id (a de-identified request carried a pseudonym instead). The result
      // is this request's own (each node call decodes a new one, and a coalesced call splits into one per member),
      // so it is set in place rather than copied.
      result.id = request.id;
      return result;
    });
  }

  /** A request that did not decode: the caller is authenticated (so the record says who), the refusal recorded, then sent. */
  async refuse(ctx: CallContext, route: string, error: CdsError): Promise<never> {
    return this.audited(ctx, route, async (draft) => {
      await this.authenticated(ctx, draft);
      throw error;
    });
  }

  /** Authentication from the certificate and headers alone; the outcome is kept on the context for admit(). */
  async authenticate(ctx: CallContext): Promise<void> {
    if (ctx.auth) return;
    try {
      ctx.auth = { principal: await this.d.authenticator.authenticate(ctx.authorization, ctx.peer) };
    } catch (err) {
      ctx.auth = { error: asCdsError(err) };
    }
  }

  /** The NER model's spans for every free-text element of the request, looked up by text (none without a model). */
  private async nerSpans(ner: OnnxNer, request: InferRequest, phiInputs: Record<string, string>): Promise<(text: string) => readonly PhiSpan[]> {
    const found = new Map<string, readonly PhiSpan[]>();
    for (const t of request.inputs) {
      if (phiInputs[t.name] !== 'text' || !Array.isArray(t.data)) continue;
      for (const b of t.data) {
        const text = utf8.decode(b);
        if (!found.has(text)) found.set(text, await ner.spans(text));
      }
    }
    return (text) => found.get(text) ?? [];
  }

  /**
   * A version the caller asked for is recorded as given only when it is a
   * plain version number; anything else a client typed could be PHI.
   */
  private versionView(version: string | undefined): { version?: string; requestedVersion?: string } {
    if (version === undefined) return {};
    return /^[1-9]\d{0,8}$/.test(version) ? { version } : { requestedVersion: this.d.pseudonymizer.pseudonym('model-version', version) };
  }

  /**
   * Input and output names the audit record may hold in clear: those the
   * configuration declares and those the model's metadata lists. The first
   * request for a model waits (briefly) for the metadata; when it cannot be
   * had, only declared names are clear and every other name is pseudonymised.
   */
  private async knownTensorNames(model: string): Promise<ReadonlySet<string>> {
    let names = this.tensorNames.get(model);
    if (!names) {
      const declared = Object.keys(this.d.routes.get(model)?.phiInputs ?? {});
      names = this.d.router.metadata(model, undefined, METADATA_TIMEOUT_MS).then(
        (m) => new Set([...declared, ...m.inputs.map((t) => t.name), ...m.outputs.map((t) => t.name)]),
        () => {
          this.tensorNames.delete(model); // asked again by the next request
          return new Set(declared);
        },
      );
      this.tensorNames.set(model, names);
    }
    return names;
  }

  /**
   * The patients this request concerns, for SMART launch context: the values
   * of the model's patient input, and the Patients every FHIR input is about
   * (its Patient resources and Patient references). A FHIR element that is
   * not a JSON object names no one it can be checked against, so it counts as
   * "another patient" and a patient/ scope refuses it.
   */
  private patientsOf(model: string, request: InferRequest): string[] {
    const route = this.d.routes.get(model);
    const text = (t: InferRequest['inputs'][number]) => (Array.isArray(t.data) ? t.data.map((b) => utf8.decode(b)) : Array.from(t.data as ArrayLike<number | bigint>, String));
    const patients: string[] = [];
    const tensor = route?.patientInput === undefined ? undefined : request.inputs.find((t) => t.name === route.patientInput);
    if (tensor) patients.push(...text(tensor));
    for (const t of request.inputs) {
      if (route?.phiInputs[t.name] !== 'fhir') continue;
      for (const element of text(t)) {
        let resource: unknown;
        try { resource = JSON.parse(element); } catch { resource = undefined; }
        if (resource && typeof resource === 'object' && !Array.isArray(resource)) patients.push(...fhirPatientIds(resource as Record<string, unknown>));
        else patients.push('(unreadable FHIR)');
      }
    }
    return patients;
  }

  /** Fetches every configured model's tensor names ahead of the first request. */
  warmUp(): void {
    for (const model of this.d.routes.keys()) void this.knownTensorNames(model);
  }

  /** The caller's principal, recorded on the draft and the trace; the authentication error when there is none. */
  private async authenticated(ctx: CallContext, draft: Draft): Promise<Principal> {
    await this.authenticate(ctx);
    const auth = ctx.auth!;
    if ('error' in auth) throw auth.error;
    draft.principal = auth.principal;
    ctx.trace.subject = auth.principal.subject;
    return auth.principal;
  }

  private async admit(ctx: CallContext, model: string, draft: Draft): Promise<void> {
    const principal = await this.authenticated(ctx, draft);
    if (!this.d.router.knows(model)) {
      // A name nobody configured is client text: the record keeps its pseudonym only.
      draft.model = { name: UNKNOWN_MODEL, requested: this.d.pseudonymizer.pseudonym('model-name', model) };
      throw new CdsError('not_found', `model ${quote(model)} is not served by this gateway`);
    }
    draft.model = { name: model };
    const decision = authorize(principal, this.d.routes.get(model)?.policy, model);
    draft.decision = decision;
    if (decision.emergency) {
      const kind = decision.breakTheGlass ? 'break_the_glass' : 'emergency_treatment';
      this.d.metrics.emergencyAccess.inc({ model, kind });
      this.d.log.warn({ alert: 'emergency_access', kind, requestId: ctx.requestId, subject: principal.subject, client: principal.certificate.name, model, purposes: decision.purposes }, 'EMERGENCY ACCESS');
    }
  }

  /** Runs one request's work and records it, success or failure, before answering. */
  private async audited<T>(ctx: CallContext, route: string, work: (draft: Draft) => Promise<T>): Promise<T> {
    const draft: Draft = { patients: [], sentTo: [] };
    this.inProgress++;
    try {
      return await recorded(this.d, ctx.requestId, () => work(draft), (error) => this.entry(ctx, route, draft, error), () => draft.dispatched === true);
    } finally {
      this.inProgress--;
    }
  }

  /**
   * What an infer request's dispatch record says: made once the request is
   * authorized, decoded, described and sent, from its own record's early
   * fields (the same views of the caller, decision and data) and where it went.
   */
  private dispatchEntry(early: EarlyFields, draft: Draft): DispatchEntry {
    return {
      type: 'dispatch',
      requestId: early.requestId,
      door: early.door,
      route: early.route,
      client: early.client,
      principal: early.principal,
      purposeOfUse: early.purposeOfUse,
      emergency: early.emergency,
      breakTheGlass: early.breakTheGlass,
      model: { name: draft.model!.name },
      sentTo: draft.sentTo.slice(),
      patients: early.patients,
      inputDigest: early.inputDigest,
    };
  }

  /** The request record: its early fields as serialised while the node worked (or now, when the request got no further), then its outcome. */
  private entry(ctx: CallContext, route: string, draft: Draft, error: CdsError | undefined): SplitEntry {
    return {
      early: draft.early ?? serialiseEarlyFields(this.earlyFields(ctx, route, draft)),
      outcome: recordOutcome(ctx, error, draft.model ?? null, draft.node, draft.sentTo),
    };
  }

  /** Who called, under which decision, about which patients, and what the request carried (redacted). */
  private earlyFields(ctx: CallContext, route: string, draft: Draft): EarlyFields {
    const p = draft.principal;
    // Added to the identity in the line's order rather than spread into a new object: a spread copies every field
    // again on every request (1.2% of the gateway's CPU at 32 connections in a V8 profile).
    const fields = recordIdentity(this.d.pseudonymizer, ctx, ctx.door, route) as EarlyFields;
    fields.principal = p ? principalView(p) : null;
    fields.purposeOfUse = draft.decision?.purposes ?? p?.purposeOfUse ?? [];
    fields.emergency = draft.decision?.emergency ?? false;
    fields.breakTheGlass = draft.decision?.breakTheGlass || undefined;
    fields.patients = draft.patients;
    fields.inputDigest = draft.inputDigest || undefined;
    fields.request = draft.request || undefined;
    return fields;
  }

}
