/** What one audited request says: who did what, to whose data, for what purpose, with what result. */
export interface AuditEntry {
  type: 'request';
  requestId: string;
  /** Pseudonym of the caller's own request id, when it did not match the strict pattern and the gateway minted one. */
  clientRequestId?: string;
  door: string;
  route: string;
  client: { name: string; thumbprint: string } | null;
  remoteAddress?: string;
  principal: { sub: string; issuer: string; clientId?: string; roles: string[]; tokenId?: string } | null;
  purposeOfUse: string[];
  /** BTG or ETREAT asserted: emergency access (HIPAA §164.312(a)(2)(ii)). */
  emergency: boolean;
  /** Allowed only through break-the-glass. */
  breakTheGlass?: boolean;
  /**
   * The configured model name; '(unknown)' with the pseudonym of what was
   * asked for when no model of that name is configured. A requested version
   * that is not a plain number is kept only as a pseudonym.
   */
  model: { name: string; version?: string; requestedVersion?: string; sha256?: string; requested?: string } | null;
  /** The node that answered. */
  node?: string;
  /** Every node the request's data was sent to, when that is more than the one that answered. */
  sentTo?: string[];
  outcome: 'success' | 'failure';
  /** ok, or the error kind (unauthenticated, permission_denied, …). */
  status: string;
  /** The HTTP status equivalent, for both doors. */
  code: number;
  latencyMs: number;
  /** Keyed pseudonyms of the patients the request concerns. */
  patients: string[];
  /** HMAC digest of the input tensors, when the request got as far as decoding them. */
  inputDigest?: string;
  /** What the request carried, with PHI redacted or pseudonymised. */
  request?: unknown;
  /** CDS Hooks calls: the service, the hook instance, and what was answered (cards as digests), or the feedback given. */
  cds?: {
    service: string;
    hook?: string;
    hookInstance?: string;
    /** Prefetch keys the gateway fetched from the FHIR server itself. */
    fetched?: string[];
    /** Inputs with no usable recent observation (no score was computed). */
    missing?: string[];
    /** Observations about another patient, found in the prefetch and ignored. */
    ignoredOtherPatients?: number;
    cards?: Array<{ uuid: string; indicator: string; digest: string }>;
    feedback?: Array<{ card: string; outcome: string; reason?: string; acceptedSuggestions?: number; comment?: boolean }>;
  };
}

/**
 * Written while a request's data is with its node, and on disk before the
 * answer leaves: who sent whose data to which model and node, and why. The
 * request's own record (AuditEntry, same requestId) follows with the
 * outcome, the redacted view and the rest; it is written before the answer
 * and made durable by the next sync (AuditLog.appendWritten).
 */
export interface DispatchEntry {
  type: 'dispatch';
  requestId: string;
  door: string;
  route: string;
  client: { name: string; thumbprint: string } | null;
  principal: AuditEntry['principal'];
  purposeOfUse: string[];
  emergency: boolean;
  breakTheGlass?: boolean;
  model: { name: string };
  /** The nodes the data went to so far. */
  sentTo: string[];
  patients: string[];
  inputDigest?: string;
}

/** The fields of a request record that its outcome decides: the last in its line. */
export type OutcomeKey = 'outcome' | 'status' | 'code' | 'latencyMs' | 'model' | 'node' | 'sentTo';
/** The fields known once a request is authorized and described: who, whose data, what it carried. */
export type EarlyFields = Omit<AuditEntry, OutcomeKey | 'cds'>;
/** `EarlyFields` as JSON: the members of an object, without its braces. */
export interface SerialisedEarlyFields { readonly members: string }

/**
 * A request record in two parts, so that the larger part can be serialised
 * while the request's node works rather than after it answers (the pipeline
 * does so for infer). Its line holds the early fields first, then the
 * outcome's: the same fields as an AuditEntry, in that order.
 */
export interface SplitEntry {
  early: SerialisedEarlyFields;
  outcome: Pick<AuditEntry, OutcomeKey>;
}

export function serialiseEarlyFields(fields: EarlyFields): SerialisedEarlyFields {
  return { members: JSON.stringify(fields).slice(1, -1) };
}

/** Records the log itself writes. */
export type ChainEntry =
  | { type: 'genesis'; keyId: string; gateway: string; publicKey: string }
  | { type: 'rotation'; previousFile: string }
  | { type: 'recovered'; discardedBytes: number; reason: string }
  | { type: 'checkpoint'; keyId: string; signature: string; final: boolean };

/** Every line: seq, type, time, prev first, then the entry's own fields. */
export type AuditLine = { seq: number; time: string; prev: string } & (AuditEntry | DispatchEntry | ChainEntry);
