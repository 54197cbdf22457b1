import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseGatewayConfig, parseNodeConfig } from '../../src/config/load.js';
import { devGatewayConfig, devNodeConfig } from '../../src/cli/dev-config.js';
import { devPkiPaths } from '../../src/tls/dev-pki.js';
import { devSecrets } from '../../src/cli/dev-material.js';
import { runCli } from '../helpers/cluster.js';

const pki = devPkiPaths('/pki');
const gateway = () => devGatewayConfig({ pki, jwksFile: '/pki/jwks.json', secrets: devSecrets('/pki'), nodes: [{ index: 0, restPort: 9010, grpcPort: 9000 }, { index: 1, restPort: 9011, grpcPort: 9001 }] }) as any;

const configError = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('configuration schema', () => {
  it('accepts the development configs and fills defaults', () => {
    const g = parseGatewayConfig(gateway(), '/etc/cdsgate');
    expect(g.pools.default!.breaker.errorThresholdPercentage).toBe(50);
    expect(g.auth.issuers[0]!.algorithms).not.toContain('HS256');
    const n = parseNodeConfig(devNodeConfig({ pki, index: 0, modelRepository: 'models' }), '/srv/cdsgate');
    expect(n.node.modelRepository).toBe('/srv/cdsgate/models');
    expect(n.node.executionProvider).toBe('auto');
  });

  it('names the bad key', () => {
    const c = gateway();
    c.gateway.rest.port = 'eighty';
    expect(configError(() => parseGatewayConfig(c, '/'))).toMatch(/gateway\.rest\.port: .*number/);
  });

  it('refuses unknown keys (typos must not silently disable a setting)', () => {
    const c = gateway();
    c.gateway.tls.requireClientCert = false;
    expect(configError(() => parseGatewayConfig(c, '/'))).toMatch(/gateway\.tls.*requireClientCert/);
  });

  it('requires the audit log and the pseudonym key (no way to run unaudited by omission)', () => {
    const c = gateway();
    delete c.audit;
    delete c.phi;
    const message = configError(() => parseGatewayConfig(c, '/'));
    expect(message).toMatch(/audit: /);
    expect(message).toMatch(/phi: /);
  });

  it('refuses symmetric or "none" algorithms', () => {
    const c = gateway();
    c.auth.issuers[0].algorithms = ['HS256'];
    expect(configError(() => parseGatewayConfig(c, '/'))).toMatch(/auth\.issuers\.0\.algorithms\.0/);
    c.auth.issuers[0].algorithms = ['none'];
    expect(configError(() => parseGatewayConfig(c, '/'))).toMatch(/auth\.issuers\.0\.algorithms\.0/);
  });

  it('refuses a plain-http JWKS URL', () => {
    const c = gateway();
    c.auth.issuers[0].jwks = { url: 'http://idp.example/jwks' };
    expect(configError(() => parseGatewayConfig(c, '/'))).toMatch(/auth\.issuers\.0\.jwks/);
  });

  it('checks references between pools, nodes and models', () => {
    const c = gateway();
    c.pools.default.nodes.push('node-9');
    c.models.news2.pool = 'gpu';
    const message = configError(() => parseGatewayConfig(c, '/'));
    expect(message).toMatch(/pools\.default\.nodes\.2: unknown node "node-9"/);
    expect(message).toMatch(/models\.news2\.pool: unknown pool "gpu"/);
  });

  it('refuses to route a model that receives identified data to a de-identified pool', () => {
    const c = gateway();
    c.pools.default.dataClass = 'deidentified';
    expect(configError(() => parseGatewayConfig(c, '/'))).toMatch(/models\.news2\.receives: pool "default" is de-identified/);
    for (const m of Object.values(c.models) as Array<Record<string, unknown>>) m.receives = 'deidentified';
    expect(() => parseGatewayConfig(c, '/')).not.toThrow();
  });

  it('hedging is off unless configured, has p95 defaults, and needs a second node in the pool', () => {
    const c = gateway();
    expect(parseGatewayConfig(c, '/').models.news2!.hedging).toBeUndefined();
    c.models.news2.hedging = {};
    expect(parseGatewayConfig(c, '/').models.news2!.hedging).toEqual({ percentile: 95, minDelayMs: 2, minSamples: 20 });
    c.pools.default.nodes = ['node-0'];
    expect(configError(() => parseGatewayConfig(c, '/'))).toMatch(/models\.news2\.hedging: hedging needs a second node/);
  });

  it('node: requires an allow-list of caller identities', () => {
    const n = devNodeConfig({ pki, index: 0, modelRepository: 'models' }) as any;
    n.node.allowedClients = [];
    expect(configError(() => parseNodeConfig(n, '/'))).toMatch(/node\.allowedClients/);
  });

  it('the CLI exits non-zero naming the bad key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdsgate-cfg-'));
    const file = join(dir, 'gateway.json');
    const c = gateway();
    delete c.gateway.tls;
    writeFileSync(file, JSON.stringify(c));
    const run = runCli(['gateway', '--config', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/gateway\.tls/);
    writeFileSync(file, '{ not json');
    expect(runCli(['gateway', '--config', file]).stderr).toMatch(/not valid JSON/);
    expect(runCli(['node', '--config', join(dir, 'missing.json')]).stderr).toMatch(/cannot read configuration file/);
  });

  it('every command has --help', () => {
    for (const cmd of ['start', 'gateway', 'node', 'certs', 'token', 'infer', 'audit']) {
      const run = runCli([cmd, '--help']);
      expect(run.code, cmd).toBe(0);
      expect(run.stdout, cmd).toMatch(/^Usage: cdsgate/);
    }
  });
});

describe('example configurations in config/examples', () => {
  it('validate against the schema (the README documents them)', async () => {
    const { loadGatewayConfig, loadNodeConfig } = await import('../../src/config/load.js');
    const { ROOT } = await import('../helpers/cluster.js');
    expect(loadGatewayConfig(join(ROOT, 'config/examples/gateway.json')).models.news2!.allowRoles).toEqual(['clinician', 'nurse']);
    expect(Object.keys(loadGatewayConfig(join(ROOT, 'config/examples/gateway.json')).cdsHooks!.services)).toEqual(['news2-deterioration', 'news2-encounter-start']);
    expect(loadNodeConfig(join(ROOT, 'config/examples/node.json')).node.executionProvider).toBe('cuda');
  });
});
