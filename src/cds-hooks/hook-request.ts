import { z } from 'zod';
import { CdsError } from '../errors.js';

/** FHIR's id type: what a context id may be. Anything else could smuggle a query or a path into a prefetch URL. */
const fhirId = z.string().regex(/^[A-Za-z0-9.-]{1,64}$/, 'a FHIR id ([A-Za-z0-9.-], at most 64 characters)');
const reference = (types: readonly string[]) => z.string().regex(new RegExp(`^(${types.join('|')})/[A-Za-z0-9.-]{1,64}$`), `a reference ${types.join('|')}/<id>`);
const USER_TYPES = ['Practitioner', 'PractitionerRole', 'Patient', 'RelatedPerson'] as const;
const ORDER_USER_TYPES = ['Practitioner', 'PractitionerRole'] as const;
const bundle = z.looseObject({ resourceType: z.literal('Bundle') });
/**
 * An optional field that may also be given as JSON null, which means absent:
 * EHRs and SDKs built from typed models write unset fields as null.
 */
const unset = <T extends z.ZodType>(field: T) => field.nullish().transform((v) => v ?? undefined);

/**
 * The context each standard hook defines (CDS Hooks hook pages, hookVersion
 * 1.0). Fields a hook does not define are ignored, not refused: EHRs add
 * their own, and nothing here reads them.
 */
const CONTEXTS = {
  'patient-view': z.looseObject({ userId: reference(USER_TYPES), patientId: fhirId, encounterId: unset(fhirId) }),
  'encounter-start': z.looseObject({ userId: reference(USER_TYPES), patientId: fhirId, encounterId: fhirId }),
  'order-select': z.looseObject({
    userId: reference(ORDER_USER_TYPES), patientId: fhirId, encounterId: unset(fhirId),
    selections: z.array(z.string().regex(/^[A-Za-z]{1,64}\/[A-Za-z0-9.-]{1,64}$/)).min(1).max(100), draftOrders: bundle,
  }),
  'order-sign': z.looseObject({ userId: reference(ORDER_USER_TYPES), patientId: fhirId, encounterId: unset(fhirId), draftOrders: bundle }),
} as const;
export type HookName = keyof typeof CONTEXTS;

const UUID = /^(urn:uuid:)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const serviceRequest = z.strictObject({
  hook: z.string().min(1).max(64),
  hookInstance: z.string().regex(UUID, 'a UUID'),
  fhirServer: unset(z.url({ protocol: /^https?$/ }).max(2048)),
  fhirAuthorization: unset(z.looseObject({
    access_token: z.string().min(1).max(8192),
    token_type: z.literal('Bearer'),
    expires_in: z.number().int().positive(),
    scope: z.string().min(1).max(4096),
    subject: z.string().min(1).max(256),
    patient: unset(fhirId),
  })),
  context: z.record(z.string(), z.unknown()),
  prefetch: unset(z.record(z.string().max(64), z.unknown().nullable())),
  /** CDS Hooks extensions: accepted and not read. */
  extension: unset(z.record(z.string(), z.unknown())),
}).refine((r) => !r.fhirAuthorization || r.fhirServer, { message: 'fhirServer is required when fhirAuthorization is present', path: ['fhirServer'] });

export interface HookRequest {
  hook: HookName;
  hookInstance: string;
  fhirServer?: string;
  fhirAuthorization?: z.output<typeof serviceRequest>['fhirAuthorization'];
  context: { userId: string; patientId: string; encounterId?: string } & Record<string, unknown>;
  prefetch: Record<string, unknown>;
}

/** Where a zod issue is, in the caller's own terms (field paths are ours, never the caller's text). */
function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0]!;
  const path = issue.path.filter((p) => typeof p === 'number' || /^[A-Za-z_]{1,40}$/.test(String(p))).join('.');
  return `${path || 'body'}: ${issue.code === 'unrecognized_keys' ? 'has a field the spec does not define' : issue.message}`;
}

/** Validates a service call for the service's hook; a 400 names the field, never echoing its value. */
export function parseHookRequest(body: unknown, expectedHook: HookName): HookRequest {
  const parsed = serviceRequest.safeParse(body);
  if (!parsed.success) throw new CdsError('invalid_argument', `CDS Hooks request: ${firstIssue(parsed.error)}`);
  const r = parsed.data;
  if (r.hook !== expectedHook) throw new CdsError('invalid_argument', `this service answers the ${expectedHook} hook`);
  const context = CONTEXTS[expectedHook].safeParse(r.context);
  if (!context.success) throw new CdsError('invalid_argument', `CDS Hooks request: context.${firstIssue(context.error)}`);
  if (r.fhirAuthorization?.patient !== undefined && r.fhirAuthorization.patient !== context.data.patientId) {
    throw new CdsError('invalid_argument', 'fhirAuthorization.patient is not context.patientId');
  }
  return {
    hook: expectedHook,
    hookInstance: r.hookInstance,
    ...(r.fhirServer ? { fhirServer: r.fhirServer } : {}),
    ...(r.fhirAuthorization ? { fhirAuthorization: r.fhirAuthorization } : {}),
    context: context.data as HookRequest['context'],
    prefetch: r.prefetch ?? {},
  };
}

const coding = z.strictObject({ system: unset(z.string().max(1024)), code: unset(z.string().max(256)), display: unset(z.string().max(1024)) });
const feedbackBody = z.strictObject({
  feedback: z.array(z.strictObject({
    card: z.string().regex(UUID, 'a card uuid'),
    outcome: z.enum(['accepted', 'overridden']),
    acceptedSuggestions: unset(z.array(z.strictObject({ id: z.string().min(1).max(128) })).max(100)),
    overrideReason: unset(z.strictObject({ reason: unset(coding), userComment: unset(z.string().max(4096)) })),
    outcomeTimestamp: z.iso.datetime({ offset: true }),
  }).refine((f) => f.outcome !== 'accepted' || f.acceptedSuggestions !== undefined, { message: 'acceptedSuggestions is required when the outcome is accepted', path: ['acceptedSuggestions'] })
    .refine((f) => f.outcome !== 'accepted' || f.overrideReason === undefined, { message: 'overrideReason belongs to an overridden card', path: ['overrideReason'] }))
    .min(1).max(100),
});
export type Feedback = z.output<typeof feedbackBody>['feedback'];

export function parseFeedback(body: unknown): Feedback {
  const parsed = feedbackBody.safeParse(body);
  if (!parsed.success) throw new CdsError('invalid_argument', `CDS Hooks feedback: ${firstIssue(parsed.error)}`);
  return parsed.data.feedback;
}
