import { describe, expect, it } from 'vitest';
import { authorize } from '../../src/auth/policy.js';
import type { Principal } from '../../src/auth/principal.js';

const principal = (roles: string[]): Principal => ({
  subject: 's', issuer: 'i', roles, scopes: [], certificate: { name: 'app', thumbprint: 't' }, certificateBound: false,
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
