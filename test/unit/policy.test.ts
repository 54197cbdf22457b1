import { describe, expect, it } from 'vitest';
import { authorize } from '../../src/auth/policy.js';
import type { Principal } from '../../src/auth/principal.js';

const principal = (roles: string[], purposeOfUse: string[] = []): Principal => ({
  subject: 's', issuer: 'i', roles, scopes: [], purposeOfUse, certificate: { name: 'app', thumbprint: 't' }, certificateBound: false,
});

describe('authorize (deny by default)', () => {
  const policy = { model: 'news2', allowRoles: ['clinician', 'nurse'] };
  it('allows a listed role', () => {
    expect(() => authorize(principal(['nurse']), policy, 'news2')).not.toThrow();
    expect(() => authorize(principal(['x', 'clinician']), policy, 'news2')).not.toThrow();
  });
  it('denies a principal with no listed role', () => {
    expect(() => authorize(principal(['billing']), policy, 'news2')).toThrow(/requires one of: clinician, nurse/);
    expect(() => authorize(principal([]), policy, 'news2')).toThrow(/do not permit/);
  });
  it('denies everyone when the model has no policy or an empty one', () => {
    expect(() => authorize(principal(['admin']), undefined, 'm')).toThrow(/no policy grants access/);
    expect(() => authorize(principal(['admin']), { model: 'm', allowRoles: [] }, 'm')).toThrow(/no policy grants access/);
  });
  it('does not treat role names as patterns', () => {
    expect(() => authorize(principal(['clinician*', 'CLINICIAN', ' clinician']), policy, 'news2')).toThrow();
  });
});

describe('purpose of use and break-the-glass', () => {
  const policy = { model: 'm', allowRoles: ['clinician'], purposes: ['TREAT', 'ETREAT'], breakTheGlassRoles: ['physician'] };

  it('requires one of the model\'s purposes', () => {
    expect(authorize(principal(['clinician'], ['TREAT']), policy, 'm')).toEqual({ purposes: ['TREAT'], emergency: false, breakTheGlass: false });
    expect(() => authorize(principal(['clinician'], ['HMARKT']), policy, 'm')).toThrow(/requires a purpose of use of TREAT, ETREAT \(the token asserts HMARKT\)/);
    expect(() => authorize(principal(['clinician']), policy, 'm')).toThrow(/asserts none/);
  });

  it('marks ETREAT by an allowed role as emergency access', () => {
    expect(authorize(principal(['clinician'], ['ETREAT']), policy, 'm')).toMatchObject({ emergency: true, breakTheGlass: false });
  });

  it('lets a break-the-glass role in only with BTG or ETREAT, and says so', () => {
    expect(authorize(principal(['physician'], ['BTG']), policy, 'm')).toEqual({ purposes: ['BTG'], emergency: true, breakTheGlass: true });
    expect(() => authorize(principal(['physician'], ['TREAT']), policy, 'm')).toThrow(/do not permit/);
    expect(() => authorize(principal(['billing'], ['BTG']), policy, 'm')).toThrow(/do not permit/);
  });

  it('offers no break-the-glass where the policy does not', () => {
    expect(() => authorize(principal(['physician'], ['BTG']), { model: 'm', allowRoles: ['clinician'] }, 'm')).toThrow(/do not permit/);
  });
});
