import { describe, expect, it } from 'vitest';
import { covers, grantedAlternative, parseScope } from '../../src/auth/smart-scopes.js';
import { authorize, checkLaunchPatient } from '../../src/auth/policy.js';
import type { Principal } from '../../src/auth/principal.js';
import { CdsError } from '../../src/errors.js';

const s = (t: string) => parseScope(t)!;

describe('SMART scopes', () => {
  it('parses v2 and v1 syntax, and refuses what is not a clinical scope', () => {
    expect(s('patient/Observation.rs')).toMatchObject({ context: 'patient', resource: 'Observation', query: '' });
    expect([...s('patient/Observation.read').permissions].sort()).toEqual(['r', 's']);
    expect([...s('user/*.write').permissions].sort()).toEqual(['c', 'd', 'u']);
    expect([...s('system/*.*').permissions].sort()).toEqual(['c', 'd', 'r', 's', 'u']);
    expect(s('patient/Observation.rs?code=1&category=vital-signs').query).toBe('category=vital-signs&code=1');
    for (const bad of ['launch', 'openid', 'patient/Observation.sr', 'doctor/Observation.rs', 'patient/observation.rs', 'patient/Observation.', 'patient/Observation.x']) {
      expect(parseScope(bad), bad).toBeUndefined();
    }
  });

  it('coverage: context, resource or *, permissions, narrowing', () => {
    expect(covers(s('patient/Observation.rs'), s('patient/Observation.r'))).toBe(true);
    expect(covers(s('patient/*.read'), s('patient/Observation.rs'))).toBe(true);
    expect(covers(s('user/Observation.rs'), s('patient/Observation.rs'))).toBe(false);
    expect(covers(s('patient/Observation.r'), s('patient/Observation.rs'))).toBe(false);
    expect(covers(s('patient/Condition.rs'), s('patient/Observation.rs'))).toBe(false);
    expect(covers(s('patient/Observation.rs?category=laboratory'), s('patient/Observation.rs'))).toBe(false);
    expect(covers(s('patient/Observation.rs'), s('patient/Observation.rs?category=laboratory'))).toBe(true);
    expect(covers(s('patient/Observation.rs?category=laboratory'), s('patient/Observation.rs?category=laboratory'))).toBe(true);
    expect(grantedAlternative(['launch', 'openid', 'user/*.cruds'], [s('patient/Observation.rs'), s('user/Observation.rs')])?.context).toBe('user');
  });
});

describe('policy with scopes and launch context', () => {
  const principal = (o: Partial<Principal>): Principal => ({
    subject: 'u', issuer: 'i', roles: [], scopes: [], purposeOfUse: [], certificate: { name: 'c', thumbprint: 't' }, certificateBound: false, ...o,
  });
  const policy = { model: 'm', allowRoles: [] as string[], scopes: [s('patient/Observation.rs'), s('user/Observation.rs')] };
  const denied = (run: () => unknown, message: RegExp) => {
    try { run(); } catch (err) { expect(err).toBeInstanceOf(CdsError); expect((err as CdsError).kind).toBe('permission_denied'); expect((err as CdsError).message).toMatch(message); return; }
    throw new Error('expected a denial');
  };

  it('scopes alone decide when no roles are listed; deny by default', () => {
    expect(authorize(principal({ scopes: ['user/Observation.read'] }), policy, 'm').launchPatient).toBeUndefined();
    denied(() => authorize(principal({ scopes: ['user/Condition.rs'] }), policy, 'm'), /scopes do not permit/);
    denied(() => authorize(principal({ scopes: ['patient/Observation.rs'] }), policy, 'm'), /names no patient/);
    denied(() => authorize(principal({}), { model: 'm', allowRoles: [] }, 'm'), /no policy grants access/);
  });

  it('roles and scopes together are both required', () => {
    const both = { ...policy, allowRoles: ['clinician'] };
    denied(() => authorize(principal({ roles: ['clinician'] }), both, 'm'), /scopes do not permit/);
    denied(() => authorize(principal({ scopes: ['user/Observation.rs'] }), both, 'm'), /roles do not permit/);
    expect(authorize(principal({ roles: ['clinician'], scopes: ['user/Observation.rs'] }), both, 'm')).toMatchObject({ breakTheGlass: false });
  });

  it('a patient/ scope binds the request to the token\'s patient', () => {
    const decision = authorize(principal({ scopes: ['patient/Observation.rs'], patient: 'Patient-123' }), policy, 'm');
    expect(decision.launchPatient).toBe('Patient-123');
    expect(() => checkLaunchPatient(decision, ['Patient-123'], 'm')).not.toThrow();
    denied(() => checkLaunchPatient(decision, ['Patient-999'], 'm'), /concerns another/);
    denied(() => checkLaunchPatient(decision, ['Patient-123', 'Patient-999'], 'm'), /concerns another/);
  });
});
