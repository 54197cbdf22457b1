import { CdsError, quote } from '../errors.js';
import type { Principal } from './principal.js';
import { grantedAlternative, type ClinicalScope } from './smart-scopes.js';

export interface ModelPolicy {
  model: string;
  allowRoles: readonly string[];
  /** SMART scopes, any one of which the token must hold (in addition to a role, when roles are listed too). */
  scopes?: readonly ClinicalScope[];
  /** When set, the request must carry one of these purposes of use. */
  purposes?: readonly string[];
  /** Roles that may break the glass (purpose BTG or ETREAT) when not otherwise allowed. */
  breakTheGlassRoles?: readonly string[];
}

export const EMERGENCY_PURPOSES: readonly string[] = ['BTG', 'ETREAT'];

export interface Decision {
  /** The purposes of use the decision relied on (for the audit record). */
  purposes: string[];
  /** BTG or ETREAT was asserted: alert and mark the record. */
  emergency: boolean;
  /** Allowed only because of break-the-glass. */
  breakTheGlass: boolean;
  /**
   * Allowed through a patient/ scope: the request may concern only this
   * patient (the token's launch context), checked once the payload is decoded.
   */
  launchPatient?: string;
}

/**
 * Deny by default. A principal may use a model when it holds one of the
 * model's roles and, if the model requires a purpose of use, asserts one of
 * its purposes; or, where the model allows break-the-glass, when it holds a
 * break-the-glass role and asserts BTG or ETREAT. Pure function, no I/O.
 */
export function authorize(principal: Principal, policy: ModelPolicy | undefined, model: string): Decision {
  const scopes = policy?.scopes ?? [];
  if (!policy || (policy.allowRoles.length === 0 && scopes.length === 0 && !policy.breakTheGlassRoles?.length)) {
    throw new CdsError('permission_denied', `no policy grants access to model ${quote(model)}`);
  }
  const asserted = principal.purposeOfUse;
  const emergency = asserted.some((p) => EMERGENCY_PURPOSES.includes(p));
  const roleOk = policy.allowRoles.length === 0 ? scopes.length > 0 : principal.roles.some((role) => policy.allowRoles.includes(role));
  const scope = scopes.length ? grantedAlternative(principal.scopes, scopes) : undefined;
  const scopeOk = scopes.length === 0 || scope !== undefined;
  if (roleOk && scopeOk) {
    if (policy.purposes && !asserted.some((p) => policy.purposes!.includes(p))) {
      throw new CdsError('permission_denied', `model ${quote(model)} requires a purpose of use of ${policy.purposes.join(', ')}`
        + (asserted.length ? ` (the token asserts ${asserted.join(', ')})` : ' (the token asserts none)'));
    }
    if (scope?.context === 'patient' && !principal.patient) {
      throw new CdsError('permission_denied', `model ${quote(model)} is granted through a patient/ scope, and the token names no patient (launch context)`);
    }
    return { purposes: asserted, emergency, breakTheGlass: false, ...(scope?.context === 'patient' ? { launchPatient: principal.patient } : {}) };
  }
  if (emergency && policy.breakTheGlassRoles && principal.roles.some((role) => policy.breakTheGlassRoles!.includes(role))) {
    return { purposes: asserted, emergency: true, breakTheGlass: true };
  }
  if (roleOk) {
    throw new CdsError('permission_denied', `the token's scopes do not permit model ${quote(model)} (requires one of: ${scopes.map(scopeText).join(', ')})`);
  }
  throw new CdsError('permission_denied', `subject's roles do not permit model ${quote(model)} (requires one of: ${policy.allowRoles.join(', ') || 'none'})`);
}

const scopeText = (s: ClinicalScope): string => `${s.context}/${s.resource}.${'cruds'.split('').filter((p) => s.permissions.has(p)).join('')}${s.query ? `?${s.query}` : ''}`;

/**
 * SMART launch context: a request allowed through a patient/ scope may
 * concern only the token's patient. `patients` are the values of the model's
 * declared patient input; any other value is refused (403).
 */
export function checkLaunchPatient(decision: Decision, patients: readonly string[], model: string): void {
  if (decision.launchPatient === undefined) return;
  if (patients.some((p) => p !== decision.launchPatient)) {
    throw new CdsError('permission_denied', `the token acts for one patient (its launch context), and this request to model ${quote(model)} concerns another`);
  }
}
