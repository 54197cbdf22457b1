/**
 * SMART App Launch 2.2 clinical scopes: `(patient|user|system)/(Type|*).cruds[?query]`,
 * with the v1 forms `.read`, `.write` and `.*` read as `.rs`, `.cud` and `.cruds`.
 * Pure functions, no I/O.
 */

export type ScopeContext = 'patient' | 'user' | 'system';

export interface ClinicalScope {
  context: ScopeContext;
  /** A FHIR resource type, or '*' for every type. */
  resource: string;
  /** The permission letters, a subset of c r u d s. */
  permissions: ReadonlySet<string>;
  /** A search narrowing (`category=…`), normalised; empty when the scope is not narrowed. */
  query: string;
}

const SCOPE = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]{0,63})\.(read|write|\*|c?r?u?d?s?)(?:\?(.{1,512}))?$/;
const V1: Record<string, string> = { read: 'rs', write: 'cud', '*': 'cruds' };

/** Parses one clinical scope; undefined for anything else (launch, openid, …, or malformed, e.g. letters out of order). */
export function parseScope(text: string): ClinicalScope | undefined {
  const m = SCOPE.exec(text);
  if (!m || m[3] === '') return undefined;
  const letters = V1[m[3]!] ?? m[3]!;
  return { context: m[1] as ScopeContext, resource: m[2]!, permissions: new Set(letters), query: normaliseQuery(m[4]) };
}

/** Query parameters sorted, so `a=1&b=2` and `b=2&a=1` are the same narrowing. */
function normaliseQuery(query: string | undefined): string {
  return query ? query.split('&').filter(Boolean).sort().join('&') : '';
}

/**
 * Whether a granted scope covers a required one: same context; the granted
 * resource is the same or `*`; every required permission granted; and a
 * granted narrowing only covers the same narrowing (an unnarrowed grant
 * covers any narrowing of it).
 */
export function covers(granted: ClinicalScope, required: ClinicalScope): boolean {
  if (granted.context !== required.context) return false;
  if (granted.resource !== '*' && granted.resource !== required.resource) return false;
  for (const p of required.permissions) if (!granted.permissions.has(p)) return false;
  return granted.query === '' || granted.query === required.query;
}

/** The first of `alternatives` (required scopes) that one of the token's scopes covers, if any. */
export function grantedAlternative(tokenScopes: readonly string[], alternatives: readonly ClinicalScope[]): ClinicalScope | undefined {
  const granted = tokenScopes.map(parseScope).filter((s): s is ClinicalScope => s !== undefined);
  return alternatives.find((required) => granted.some((g) => covers(g, required)));
}
