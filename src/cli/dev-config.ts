import type { DevPkiPaths } from '../tls/dev-pki.js';
import { DEV_IDENTITIES } from '../tls/dev-pki.js';
import { existsSync } from 'node:fs';

/** The dev CA's revocation list, when the PKI has one (PKIs made before it existed do not). */
const crlOf = (pki: DevPkiPaths): { crl?: string } => (existsSync(pki.crl) ? { crl: pki.crl } : {});
import { DEV_AUDIENCE, DEV_EHR_ISSUER, DEV_ISSUER } from '../auth/dev-issuer.js';
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

/**
 * The worked example of a CDS Hooks service: NEWS2 (RCP 2017) from the latest
 * vital-sign Observations of the last 24 hours. Every column must be there and
 * recent, or the card says what is missing and no score is computed.
 */
export function news2CdsService(hook: 'patient-view' | 'encounter-start'): Record<string, unknown> {
  return {
    hook,
    title: 'NEWS2 deterioration score',
    description: 'National Early Warning Score 2 from the patient\'s latest vital signs (last 24 hours); a card with the score and its risk band, or one saying which observations are missing.',
    usageRequirements: 'Vital-sign Observations (LOINC) for the patient, including inhaled oxygen flow (0 on air) and level of responsiveness.',
    model: 'news2',
    // What the EHR's fhirAuthorization must grant before the gateway fetches vitals it did not prefetch.
    fhirScopes: ['patient/Observation.rs', 'user/Observation.rs'],
    prefetch: {
      vitals: 'Observation?patient={{context.patientId}}&category=vital-signs&_sort=-date&_count=200',
      responsiveness: 'Observation?patient={{context.patientId}}&code=http://loinc.org|67775-7&_sort=-date&_count=5',
    },
    input: {
      tensor: 'vitals',
      maxAgeHours: 24,
      features: [
        { label: 'respiration_rate', loinc: ['9279-1'], units: { '/min': {}, '{breaths}/min': {} } },
        { label: 'spo2_scale1', loinc: ['59408-5', '2708-6'], units: { '%': {} } },
        { label: 'supplemental_oxygen', loinc: ['3151-8'], above: 0 },
        { label: 'systolic_bp', loinc: ['8480-6'], units: { 'mm[Hg]': {}, mmHg: {} } },
        { label: 'pulse', loinc: ['8867-4'], units: { '/min': {}, '{beats}/min': {} } },
        // AVPU/ACVPU by SNOMED CT: alert is 0, any new confusion or lesser responsiveness is 1.
        { label: 'consciousness_cvpu', loinc: ['67775-7'], codes: { 248234008: 0, 130987000: 1, 300202002: 1, 450847001: 1, 422768004: 1 } },
        { label: 'temperature', loinc: ['8310-5'], units: { Cel: {}, '[degF]': { factor: 5 / 9, offset: -32 * 5 / 9 } } },
      ],
    },
    cards: {
      summary: 'NEWS2 {{news2_score}}: {{risk}} clinical risk',
      detail: 'Aggregate NEWS2 **{{news2_score}}** ({{risk}} risk band) from the latest observations: respiration {{respiration_rate}}/min, SpO2 {{spo2_scale1}} %, supplemental oxygen {{supplemental_oxygen}}, systolic BP {{systolic_bp}} mmHg, pulse {{pulse}}/min, new confusion or less than alert {{consciousness_cvpu}}, temperature {{temperature}} °C. Respond as your local NEWS2 escalation policy says.',
      labels: { risk: ['low', 'low-medium', 'medium', 'high'] },
      indicator: { output: 'risk', values: ['info', 'warning', 'warning', 'critical'] },
      source: { label: 'cdsgate NEWS2 (RCP 2017 chart)', url: 'https://www.rcp.ac.uk/improving-care/resources/national-early-warning-score-news-2/' },
    },
  };
}

export interface DevGatewayOptions {
  pki: DevPkiPaths;
  jwksFile: string;
  /** The development EHR's JWKS (a CDS Hooks client); without it the gateway has no CDS Hooks door. */
  ehrJwksFile?: string;
  /** FHIR servers the development EHR may name (tests point one at a fixture server). */
  fhirServers?: string[];
  secrets: DevSecrets;
  /** Each node's two doors; the gateway calls the one `nodeProtocol` names (default REST, as production configs default). */
  nodes: Array<{ index: number; restPort: number; grpcPort: number; protocol?: 'rest' | 'grpc' }>;
  nodeProtocol?: 'rest' | 'grpc';
  ports?: { rest: number; grpc: number; admin: number };
  healthIntervalMs?: number;
  /** Gateway worker processes (default 1 here). */
  workers?: number;
}

/** Models whose rows are independent (tabular scores): concurrent requests share node calls (routing/coalescer.ts). */
const DEV_COALESCED = new Set(['news2', 'wdbc-risk']);

export const DEV_POLICY: Record<string, string[]> = {
  news2: ['clinician', 'nurse'],
  'wdbc-risk': ['clinician', 'oncologist'],
  'cxr-loadtest': ['loadtest'],
};

export function devGatewayConfig(o: DevGatewayOptions): Record<string, unknown> {
  const ports = o.ports ?? { rest: 0, grpc: 0, admin: 0 };
  return {
    gateway: {
      // One process in development and tests (one audit chain to read); production configs default to one worker per core.
      workers: o.workers ?? 1,
      rest: { host: '127.0.0.1', port: ports.rest },
      grpc: { host: '127.0.0.1', port: ports.grpc },
      admin: { host: '127.0.0.1', port: ports.admin },
      tls: { cert: o.pki.gatewayServer.cert, key: o.pki.gatewayServer.key, ca: o.pki.ca, ...crlOf(o.pki) },
      nodeClientTls: { cert: o.pki.gatewayClient.cert, key: o.pki.gatewayClient.key, ca: o.pki.ca },
    },
    auth: { issuers: [{ issuer: DEV_ISSUER, audience: DEV_AUDIENCE, jwks: { file: o.jwksFile } }] },
    nodes: o.nodes.map(({ index, restPort, grpcPort, protocol = o.nodeProtocol ?? 'rest' }) => ({
      id: `node-${index}`, serverName: DEV_IDENTITIES.nodeServerName(index),
      protocol, address: `127.0.0.1:${protocol === 'rest' ? restPort : grpcPort}`,
    })),
    pools: {
      default: {
        nodes: o.nodes.map(({ index }) => `node-${index}`),
        healthCheck: { intervalMs: o.healthIntervalMs ?? 1000, timeoutMs: 500 },
      },
    },
    models: Object.fromEntries(Object.entries(DEV_POLICY).map(([model, allowRoles]) =>
      [model, { pool: 'default', allowRoles, ...(DEV_COALESCED.has(model) ? { coalesce: { maxRows: 64 } } : {}) }])),
    audit: { dir: o.secrets.auditDir, signingKey: o.secrets.auditSigningKey },
    phi: { pseudonymKey: { file: o.secrets.pseudonymKey, keyId: 'dev1' } },
    ...(o.ehrJwksFile ? {
      cdsHooks: {
        clients: [{ issuer: DEV_EHR_ISSUER, jwks: { file: o.ehrJwksFile }, fhirServers: o.fhirServers ?? [], fhirCa: o.pki.ca }],
        services: { 'news2-deterioration': news2CdsService('patient-view'), 'news2-encounter-start': news2CdsService('encounter-start') },
      },
    } : {}),
  };
}
