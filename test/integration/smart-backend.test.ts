import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestRecords, httpsCall, makeMaterial, rid, startCluster, type Cluster, type Material } from '../helpers/cluster.js';

/**
 * SMART Backend Services against a real authorization server: oidc-provider
 * (from the npm registry) over HTTPS issues client_credentials tokens to a
 * client that authenticates with a private_key_jwt assertion (ES384), as a
 * JWT access token (checked with the provider's JWKS) or as an opaque token
 * (checked by RFC 7662 introspection at the provider). The gateway grants a
 * model by `system/` scope alone.
 */
let material: Material;
let cluster: Cluster;
let server: Server;
let issuer: string;
let clientKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let clientKid: string;
let provider: Provider;
const GATEWAY_SECRET = `gw-${randomUUID()}`;
let tls: Agent;

const WDBC_ROW = [20.57, 17.77, 132.9, 1326, 0.08474, 0.07864, 0.0869, 0.07017, 0.1812, 0.05667, 0.5435, 0.7339, 3.398, 74.08, 0.005225, 0.01308, 0.0186, 0.0134, 0.01389, 0.003532, 24.99, 23.41, 158.8, 1956, 0.1238, 0.1866, 0.2416, 0.186, 0.275, 0.08902];

beforeAll(async () => {
  material = await makeMaterial();
  tls = new Agent({ connect: { ca: readFileSync(material.pki.ca) } });
  server = createServer({ cert: readFileSync(material.pki.gatewayServer.cert), key: readFileSync(material.pki.gatewayServer.key) });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  issuer = `https://localhost:${(server.address() as AddressInfo).port}`;

  const signing = await generateKeyPair('ES256', { extractable: true });
  const client = await generateKeyPair('ES384', { extractable: true });
  clientKey = client.privateKey;
  clientKid = randomUUID();
  provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'risk-batch', token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES384',
        jwks: { keys: [{ ...(await exportJWK(client.publicKey)), kid: clientKid, alg: 'ES384', use: 'sig' }] },
        grant_types: ['client_credentials'], redirect_uris: [], response_types: [], id_token_signed_response_alg: 'ES256', scope: 'system/Observation.rs system/Patient.rs',
      },
      { client_id: 'cdsgate-gateway', client_secret: GATEWAY_SECRET, id_token_signed_response_alg: 'ES256', grant_types: [], redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic' },
    ],
    jwks: { keys: [{ ...(await exportJWK(signing.privateKey)), kid: 'as-1', alg: 'ES256', use: 'sig' }] as never },
    scopes: ['system/Observation.rs', 'system/Patient.rs'],
    // SMART Backend Services: client assertions signed with RS384 or ES384.
    enabledJWA: { clientAuthSigningAlgValues: ['ES384', 'RS384'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: async () => true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'https://cdsgate.example/jwt',
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => ({
          scope: 'system/Observation.rs system/Patient.rs', audience: 'cdsgate', accessTokenTTL: 300,
          accessTokenFormat: resource.endsWith('/opaque') ? 'opaque' : 'jwt', jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  server.on('request', provider.callback());

  const secretFile = join(material.dir, 'introspection-secret');
  writeFileSync(secretFile, GATEWAY_SECRET, { mode: 0o600 });
  cluster = await startCluster({
    nodes: 1, material,
    gatewayPatch: (c) => {
      c.auth.issuers.push({
        issuer, audience: 'cdsgate', jwks: { url: `${issuer}/jwks`, ca: material.pki.ca }, algorithms: ['ES256'], maxTokenLifetimeSeconds: 300,
        introspection: { endpoint: `${issuer}/token/introspection`, clientId: 'cdsgate-gateway', clientSecret: { file: secretFile }, ca: material.pki.ca, cacheMaxSeconds: 0 },
      });
      c.models['wdbc-risk'] = { pool: 'default', allowRoles: [], scopes: ['system/Observation.rs'] };
    },
  });
}, 90_000);
afterAll(async () => {
  await cluster?.stop();
  server?.close();
  await tls?.close();
});

/** client_credentials with a private_key_jwt assertion, as SMART Backend Services prescribes. */
async function clientAssertion(audience: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES384', kid: clientKid, typ: 'JWT' })
    .setIssuer('risk-batch').setSubject('risk-batch').setAudience(audience).setIssuedAt(now).setExpirationTime(now + 240)
    .sign(clientKey);
}

async function backendToken(scope: string, resource = 'https://cdsgate.example/jwt'): Promise<string> {
  const assertion = await clientAssertion(`${issuer}/token`);
  const res = await request(`${issuer}/token`, {
    method: 'POST', dispatcher: tls,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials', scope, resource,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion,
    }).toString(),
  });
  const body = await res.body.json() as { access_token?: string; error?: string; error_description?: string };
  if (!body.access_token) throw new Error(`token endpoint: ${res.statusCode} ${body.error} ${body.error_description}`);
  return body.access_token;
}

const infer = (token: string) => httpsCall(cluster.gateway.ports.rest!, '/v2/models/wdbc-risk/infer', {
  ca: material.pki.ca, identity: material.pki.apps.ehr, token, headers: { 'x-request-id': rid('backend') },
  body: { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: WDBC_ROW }] },
});

describe('SMART Backend Services (oidc-provider as the authorization server)', () => {
  it('a JWT access token with a system/ scope runs the model, recorded as the client', async () => {
    const token = await backendToken('system/Observation.rs');
    expect(token.split('.')).toHaveLength(3);
    const res = await infer(token);
    expect(res.status, res.body).toBe(200);
    const record = requestRecords(cluster.secrets.auditDir).at(-1)!;
    expect(record.principal).toMatchObject({ sub: 'risk-batch', issuer });
  });

  it('a token without the model\'s system/ scope is a 403', async () => {
    const res = await infer(await backendToken('system/Patient.rs'));
    expect(res.status).toBe(403);
    expect(res.json().error).toMatch(/scopes do not permit/);
  });

  it('an opaque token is introspected at the provider and accepted while active', async () => {
    const token = await backendToken('system/Observation.rs', 'https://cdsgate.example/opaque');
    expect(token).not.toContain('.');
    expect((await infer(token)).status).toBe(200);
  });

  it('a revoked opaque token is refused at once (introspection says inactive)', async () => {
    const token = await backendToken('system/Observation.rs', 'https://cdsgate.example/opaque');
    expect((await infer(token)).status).toBe(200);
    // The client revokes its own token (RFC 7009), authenticating as it does at the token endpoint.
    const revoke = await request(`${issuer}/token/revocation`, {
      method: 'POST', dispatcher: tls,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        token, token_type_hint: 'access_token',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await clientAssertion(issuer),
      }).toString(),
    });
    expect(revoke.statusCode, await revoke.body.text()).toBe(200);
    const res = await infer(token);
    expect(res.status).toBe(401);
    expect(res.json().error).toMatch(/not active/);
  });

  it('an opaque token the provider never issued is refused', async () => {
    const res = await infer(`${randomUUID()}${randomUUID()}`.replaceAll('-', ''));
    expect(res.status).toBe(401);
    expect(res.json().error).toMatch(/not active/);
  });
});
