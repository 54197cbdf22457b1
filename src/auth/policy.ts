import { CdsError } from '../errors.js';
import type { Principal } from './principal.js';

export interface ModelPolicy {
  model: string;
  allowRoles: readonly string[];
}

/**
 * Deny by default: a principal may use a model only when it holds one of the
 * roles the model's policy lists. A model with no roles listed is closed.
 * Pure function, no I/O.
 */
export function authorize(principal: Principal, policy: ModelPolicy | undefined, model: string): void {
  if (!policy || policy.allowRoles.length === 0) {
    throw new CdsError('permission_denied', `no policy grants access to model '${model}'`);
  }
  if (!principal.roles.some((role) => policy.allowRoles.includes(role))) {
    throw new CdsError('permission_denied', `subject's roles do not permit model '${model}' (requires one of: ${policy.allowRoles.join(', ')})`);
  }
}
