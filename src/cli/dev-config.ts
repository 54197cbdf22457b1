import type { DevPkiPaths } from '../tls/dev-pki.js';
import { DEV_IDENTITIES } from '../tls/dev-pki.js';
import { existsSync } from 'node:fs';

/** The dev CA's revocation list, when the PKI has one (PKIs made before it existed do not). */
const crlOf = (pki: DevPkiPaths): { crl?: string } => (existsSync(pki.crl) ? { crl: pki.crl } : {});
import { DEV_AUDIENCE, DEV_ISSUER } from '../auth/dev-issuer.js';
import type { DevSecrets } from './dev-material.js';

/** Raw (unparsed) config objects for development and tests; the schema validates them like any file. */

export interface DevNodeOptions {
  pki: DevPkiPaths;
  index: number;
  modelRepository: string;
  ports?: { grpc: number; rest: number; admin: number };
  executionProvider?: 'auto' | 'cuda' | 'webgpu' | 'cpu';
  /** GPU device (default: the node's index, one node per GPU). */
  deviceId?: number;
  workers?: number;
  allowedClients?: string[];
}

export function devNodeConfig(o: DevNodeOptions): Record<string, unknown> {
  const node = o.pki.nodes[o.index];
  if (!node) throw new Error(`the development PKI has no certificate for node ${o.index}`);
  const ports = o.ports ?? { grpc: 0, rest: 0, admin: 0 };
  return {
    node: {
      id: `node-${o.index}`,
      grpc: { host: '127.0.0.1', port: ports.grpc },
      rest: { host: '127.0.0.1', port: ports.rest },
      admin: { host: '127.0.0.1', port: ports.admin },
      tls: { cert: node.cert, key: node.key, ca: o.pki.ca, ...crlOf(o.pki) },
      allowedClients: o.allowedClients ?? [DEV_IDENTITIES.gatewayClient],
      modelRepository: o.modelRepository,
      executionProvider: o.executionProvider ?? 'auto',
      deviceId: o.deviceId ?? o.index,
      workers: o.workers ?? 1,
      intraOpThreads: 1,
    },
  };
}

export interface DevGatewayOptions {
  pki: DevPkiPaths;
  jwksFile: string;
  secrets: DevSecrets;
  nodes: Array<{ index: number; grpcPort: number }>;
  ports?: { rest: number; grpc: number; admin: number };
  healthIntervalMs?: number;
}

export const DEV_POLICY: Record<string, string[]> = {
  news2: ['clinician', 'nurse'],
  'wdbc-risk': ['clinician', 'oncologist'],
  'cxr-loadtest': ['loadtest'],
};

export function devGatewayConfig(o: DevGatewayOptions): Record<string, unknown> {
  const ports = o.ports ?? { rest: 0, grpc: 0, admin: 0 };
  return {
    gateway: {
      rest: { host: '127.0.0.1', port: ports.rest },
      grpc: { host: '127.0.0.1', port: ports.grpc },
      admin: { host: '127.0.0.1', port: ports.admin },
      tls: { cert: o.pki.gatewayServer.cert, key: o.pki.gatewayServer.key, ca: o.pki.ca, ...crlOf(o.pki) },
      nodeClientTls: { cert: o.pki.gatewayClient.cert, key: o.pki.gatewayClient.key, ca: o.pki.ca },
    },
    auth: { issuers: [{ issuer: DEV_ISSUER, audience: DEV_AUDIENCE, jwks: { file: o.jwksFile } }] },
    nodes: o.nodes.map(({ index, grpcPort }) => ({
      id: `node-${index}`, address: `127.0.0.1:${grpcPort}`, serverName: DEV_IDENTITIES.nodeServerName(index),
    })),
    pools: {
      default: {
        nodes: o.nodes.map(({ index }) => `node-${index}`),
        healthCheck: { intervalMs: o.healthIntervalMs ?? 1000, timeoutMs: 500 },
      },
    },
    models: Object.fromEntries(Object.entries(DEV_POLICY).map(([model, allowRoles]) => [model, { pool: 'default', allowRoles }])),
    audit: { dir: o.secrets.auditDir, signingKey: o.secrets.auditSigningKey },
    phi: { pseudonymKey: { file: o.secrets.pseudonymKey, keyId: 'dev1' } },
  };
}
