import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { devEhrFiles, devIssuerFiles, mintDevToken } from '../auth/dev-issuer.js';
import { devPkiPaths } from '../tls/dev-pki.js';
import { devSecrets, ensureDevMaterial } from './dev-material.js';
import { devGatewayConfig, devNodeConfig } from './dev-config.js';
import { spawnCdsgate } from './processes.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where the dev PKI, keys, configs and audit log live; CDSGATE_DEV_DIR moves them (the tests do). */
const DEV_DIR = process.env.CDSGATE_DEV_DIR ?? join(ROOT, 'certs', 'dev');

/** Fixed loopback ports for development; CDSGATE_DEV_PORT_BASE moves them all. */
function devPorts() {
  const base = Number(process.env.CDSGATE_DEV_PORT_BASE ?? 8443);
  return {
    gateway: { rest: base, grpc: base + 1, admin: base + 2 },
    nodes: [0, 1].map((i) => ({ grpc: base + 10 + i * 3, rest: base + 11 + i * 3, admin: base + 12 + i * 3 })),
  };
}

export interface StartOptions {
  /** Every dev node's `executionProvider` (default `auto`). */
  provider?: 'auto' | 'cuda' | 'webgpu' | 'cpu';
  /** GPU device per node, in node order (default: node i on device i). On a one-GPU host: [0, 0]. */
  devices?: number[];
}

export async function startDev(options: StartOptions = {}): Promise<void> {
  await ensureDevMaterial(DEV_DIR);
  const pki = devPkiPaths(DEV_DIR);
  const issuer = devIssuerFiles(DEV_DIR);
  const ports = devPorts();
  const configDir = join(DEV_DIR, 'config');
  mkdirSync(configDir, { recursive: true });
  const children: ChildProcess[] = [];
  const running = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
  const stopAll = (signal: NodeJS.Signals = 'SIGTERM') => { for (const c of children) if (running(c)) c.kill(signal); };
  let stopping = false;
  /**
   * One Ctrl-C: each child gets one SIGTERM (they run in their own process
   * group, so the terminal's SIGINT does not reach them too), drains, and we
   * wait for every one — the gateway signs its final audit head — then exit 0
   * if they all did. A second Ctrl-C stops them at once.
   */
  const shutdown = () => {
    if (stopping) {
      process.stderr.write('stopping at once\n');
      stopAll('SIGKILL');
      process.exit(1);
    }
    stopping = true;
    process.stdout.write('stopping: each process drains and exits (Ctrl-C again to force)\n');
    const exits = children.map((c) => (running(c) ? new Promise<number | null>((r) => c.once('exit', (code) => r(code))) : Promise.resolve(c.exitCode)));
    stopAll();
    const force = setTimeout(() => { stopAll('SIGKILL'); process.exit(1); }, 30_000);
    void Promise.all(exits).then((codes) => {
      clearTimeout(force);
      process.exit(codes.every((c) => c === 0) ? 0 : 1);
    });
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);

  const prefix = (name: string) => (line: string) => process.stdout.write(`[${name}] ${line}\n`);
  try {
    const nodes = ports.nodes.map((p, index) => {
      const file = join(configDir, `node-${index}.json`);
      writeFileSync(file, JSON.stringify(devNodeConfig({
        pki, index, ports: p, modelRepository: join(ROOT, 'models'),
        executionProvider: options.provider ?? 'auto', deviceId: options.devices?.[index] ?? index,
      }), null, 2));
      const spawned = spawnCdsgate('node', file, prefix(`node-${index}`));
      children.push(spawned.child);
      return spawned;
    });
    await Promise.all(nodes.map((n) => n.ready));
    const gatewayFile = join(configDir, 'gateway.json');
    writeFileSync(gatewayFile, JSON.stringify(devGatewayConfig({
      pki, jwksFile: issuer.jwks, ehrJwksFile: devEhrFiles(DEV_DIR).jwks, secrets: devSecrets(DEV_DIR), ports: ports.gateway,
      nodes: ports.nodes.map((p, index) => ({ index, restPort: p.rest, grpcPort: p.grpc })),
    }), null, 2));
    const gateway = spawnCdsgate('gateway', gatewayFile, prefix('gateway'));
    children.push(gateway.child);
    await gateway.ready;
  } catch (err) {
    stopAll();
    throw err;
  }
  for (const c of children) c.once('exit', (code) => { if (!stopping && code !== 0) { process.stderr.write(`a cdsgate process exited (${code}); stopping\n`); stopAll(); process.exit(1); } });

  const token = await mintDevToken(issuer.privateJwk, { subject: 'dr-dev', roles: ['clinician'], ttlSeconds: 3600 });
  const rel = (p: string) => relative(process.cwd(), p) || '.';
  const body = JSON.stringify({ inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [[24, 93, 1, 105, 115, 0, 38.5]] }] });
  const grpcBody = JSON.stringify({ model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: ['1', '7'], contents: { fp32_contents: [24, 93, 1, 105, 115, 0, 38.5] } }] });
  process.stdout.write(`
cdsgate is ready: gateway REST https://localhost:${ports.gateway.rest}, gRPC localhost:${ports.gateway.grpc}, metrics http://127.0.0.1:${ports.gateway.admin}/metrics

Run the NEWS2 model over REST (token valid 1 hour, subject dr-dev, role clinician):

TOKEN=${token}

curl --cacert ${rel(pki.ca)} --cert ${rel(pki.apps.ehr.cert)} --key ${rel(pki.apps.ehr.key)} \\
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
  https://localhost:${ports.gateway.rest}/v2/models/news2/infer \\
  -d '${body}'

The same over gRPC, with the bundled client (KServe JSON in, raw tensors on the wire):

npx cdsgate infer --address localhost:${ports.gateway.grpc} --model news2 \\
  --ca ${rel(pki.ca)} --cert ${rel(pki.apps.ehr.cert)} --key ${rel(pki.apps.ehr.key)} --token "$TOKEN" \\
  --body '${body}'

or with grpcurl (https://github.com/fullstorydev/grpcurl), if you have it:

grpcurl -cacert ${rel(pki.ca)} -cert ${rel(pki.apps.ehr.cert)} -key ${rel(pki.apps.ehr.key)} \\
  -import-path ${rel(resolve(ROOT, 'proto'))} -proto grpc_predict_v2.proto \\
  -H "authorization: Bearer $TOKEN" \\
  -d '${grpcBody}' \\
  localhost:${ports.gateway.grpc} inference.GRPCInferenceService/ModelInfer

Expected NEWS2 for those vitals: 10 (risk 3 = high).

CDS Hooks (an EHR calling the NEWS2 service on patient-view; the EHR's JWT is single-use, so mint one per call):

CDS_TOKEN=$(node ${rel(join(ROOT, 'dist', 'cli', 'main.js'))} token --ehr --key ${rel(devEhrFiles(DEV_DIR).privateJwk)} --aud https://localhost:${ports.gateway.rest}/cds-services/news2-deterioration)

curl --cacert ${rel(pki.ca)} --cert ${rel(pki.apps.ehr.cert)} --key ${rel(pki.apps.ehr.key)} \\
  -H "Authorization: Bearer $CDS_TOKEN" -H 'Content-Type: application/json' \\
  https://localhost:${ports.gateway.rest}/cds-services/news2-deterioration \\
  -d '${JSON.stringify(exampleHookRequest())}'

Discovery: GET https://localhost:${ports.gateway.rest}/cds-services (with a token whose aud is that URL). Ctrl-C stops everything.
`);
}

/**
 * A patient-view call with all seven NEWS2 observations prefetched, taken
 * now; expected card: NEWS2 10, high clinical risk (indicator critical).
 */
export function exampleHookRequest(now = new Date()): Record<string, unknown> {
  const at = new Date(now.getTime() - 10 * 60_000).toISOString();
  const obs = (id: string, code: string, value: Record<string, unknown>) => ({
    resource: {
      resourceType: 'Observation', id, status: 'final', subject: { reference: 'Patient/example' }, effectiveDateTime: at,
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
      code: { coding: [{ system: 'http://loinc.org', code }] }, ...value,
    },
  });
  const quantity = (value: number, code: string) => ({ valueQuantity: { value, unit: code, system: 'http://unitsofmeasure.org', code } });
  return {
    hook: 'patient-view',
    hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea',
    context: { userId: 'Practitioner/example', patientId: 'example' },
    prefetch: {
      vitals: {
        resourceType: 'Bundle', type: 'searchset',
        entry: [
          obs('rr', '9279-1', quantity(24, '/min')), obs('spo2', '59408-5', quantity(93, '%')), obs('o2', '3151-8', quantity(2, 'L/min')),
          obs('bp', '85354-9', { component: [{ code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, ...quantity(105, 'mm[Hg]') }] }),
          obs('hr', '8867-4', quantity(115, '/min')), obs('temp', '8310-5', quantity(38.5, 'Cel')),
        ],
      },
      responsiveness: {
        resourceType: 'Bundle', type: 'searchset',
        entry: [obs('avpu', '67775-7', { valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '248234008', display: 'Mentally alert' }] } })],
      },
    },
  };
}
