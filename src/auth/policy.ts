import { CdsError, quote } from '../errors.js';
import type { Principal } from './principal.js';

export interface ModelPolicy {
  model: string;
  allowRoles: readonly string[];
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
}

/**
 * Deny by default. A principal may use a model when it holds one of the
 * model's roles and, if the model requires a purpose of use, asserts one of
 * its purposes; or, where the model allows break-the-glass, when it holds a
 * break-the-glass role and asserts BTG or ETREAT. Pure function, no I/O.
 */
export function authorize(principal: Principal, policy: ModelPolicy | undefined, model: string): Decision {
  if (!policy || (policy.allowRoles.length === 0 && !policy.breakTheGlassRoles?.length)) {
    throw new CdsError('permission_denied', `no policy grants access to model ${quote(model)}`);
  }
  const asserted = principal.purposeOfUse;
  const emergency = asserted.some((p) => EMERGENCY_PURPOSES.includes(p));
  if (principal.roles.some((role) => policy.allowRoles.includes(role))) {
    if (policy.purposes && !asserted.some((p) => policy.purposes!.includes(p))) {
      throw new CdsError('permission_denied', `model ${quote(model)} requires a purpose of use of ${policy.purposes.join(', ')}`
        + (asserted.length ? ` (the token asserts ${asserted.join(', ')})` : ' (the token asserts none)'));
    }
    return { purposes: asserted, emergency, breakTheGlass: false };
  }
  if (emergency && policy.breakTheGlassRoles && principal.roles.some((role) => policy.breakTheGlassRoles!.includes(role))) {
    return { purposes: asserted, emergency: true, breakTheGlass: true };
  }
  throw new CdsError('permission_denied', `subject's roles do not permit model ${quote(model)} (requires one of: ${policy.allowRoles.join(', ') || 'none'})`);
}
