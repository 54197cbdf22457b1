import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { generateDevPki, type DevPkiPaths } from '../../src/tls/dev-pki.js';
import { DEV_EHR_ALG, devEhrFiles, generateDevIssuer, mintDevToken, type DevIssuerFiles, type MintOptions } from '../../src/auth/dev-issuer.js';
import { devGatewayConfig, devNodeConfig } from '../../src/cli/dev-config.js';
import { generateDevSecrets, type DevSecrets } from '../../src/cli/dev-material.js';
import { InferenceServiceClient } from '../../src/kserve/service.js';
import { auditFiles, readAuditText } from '../../src/audit/log.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'dist', 'cli', 'main.js');
export const MODELS = join(ROOT, 'models');

export interface Proc { child: ChildProcess; logs: string[]; ports: Record<string, number> }

/** The process's structured (JSON) log lines; anything else on its output is skipped. */
export function jsonLogs(p: Proc): Array<Record<string, unknown>> {
  return p.logs.flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

export interface Material { dir: string; pki: DevPkiPaths; issuer: DevIssuerFiles; ehr: DevIssuerFiles; secrets: DevSecrets }

export async function makeMaterial(nodeCount = 3): Promise<Material> {
  const dir = mkdtempSync(join(tmpdir(), 'cdsgate-test-'));
  return {
    dir, pki: await generateDevPki(dir, nodeCount), issuer: await generateDevIssuer(dir),
    ehr: await generateDevIssuer(dir, devEhrFiles(dir), DEV_EHR_ALG), secrets: generateDevSecrets(dir),
  };
}

/**
 * Starts `cdsgate node|gateway --config` from dist/ and waits for its ready
 * line. Its log lines are kept for the test to read; a benchmark passes
 * `keepLogs: false` so the load generator does not hold one line per request.
 */
export async function startProcess(kind: 'node' | 'gateway', config: Record<string, unknown>, dir: string, name: string, keepLogs = true, entry = CLI): Promise<Proc> {
  const { spawnCdsgate } = await import('../../src/cli/processes.js');
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  const logs: string[] = [];
  // Tests import src/, but the processes run the built dist/ (npm test builds first).
  const spawned = spawnCdsgate(kind, file, keepLogs ? (line) => logs.push(line) : () => undefined, entry);
  return { child: spawned.child, logs, ports: await spawned.ready };
}

export interface Cluster extends Material {
  nodes: Proc[];
  gateway: Proc;
  token(roles: string[], extra?: Partial<MintOptions>): Promise<string>;
  /** Stops every process; removes the temporary folder unless `keep`. */
  stop(keep?: boolean): Promise<void>;
}

export async function startCluster(options: { nodes?: number; nodeProtocols?: Array<'rest' | 'grpc'>; gatewayPatch?: (c: Record<string, any>) => void; nodeConfigPatch?: (c: Record<string, any>) => void; modelRepository?: string; material?: Material; keepLogs?: boolean } = {}): Promise<Cluster> {
  const count = options.nodes ?? 2;
  const material = options.material ?? await makeMaterial(Math.max(3, count));
  const started = await Promise.allSettled(Array.from({ length: count }, (_, index) => {
    const config = devNodeConfig({ pki: material.pki, index, modelRepository: options.modelRepository ?? MODELS, executionProvider: 'cpu' }) as Record<string, any>;
    options.nodeConfigPatch?.(config);
    return startProcess('node', config, material.dir, `node-${index}`, options.keepLogs);
  }));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (failed) {
    await Promise.all(nodes.map((n) => stopProcess(n))); // never leave the nodes that did start behind
    throw failed.reason;
  }
  const gatewayConfig = devGatewayConfig({
    pki: material.pki, jwksFile: material.issuer.jwks, ehrJwksFile: material.ehr.jwks, secrets: material.secrets, healthIntervalMs: 200,
    nodes: nodes.map((n, index) => ({ index, restPort: n.ports.rest!, grpcPort: n.ports.grpc!, protocol: options.nodeProtocols?.[index] })),
  });
  options.gatewayPatch?.(gatewayConfig);
  let gateway: Proc;
  try {
    gateway = await startProcess('gateway', gatewayConfig, material.dir, 'gateway', options.keepLogs);
  } catch (err) {
    await Promise.all(nodes.map((n) => stopProcess(n))); // never leave nodes behind
    throw err;
  }
  const cluster: Cluster = {
    ...material,
    nodes,
    gateway,
    token: (roles, extra = {}) => mintDevToken(material.issuer.privateJwk, { subject: 'test-user', roles, ttlSeconds: 600, ...extra }),
    async stop(keep = false) {
      // The current processes: tests and the chaos suite replace nodes they restart.
      await Promise.all([...cluster.nodes, cluster.gateway].map((p) => stopProcess(p)));
      if (!keep) rmSync(material.dir, { recursive: true, force: true });
    },
  };
  return cluster;
}

export async function stopProcess(p: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.child.once('exit', () => r()));
  p.child.kill(signal);
  await exited;
}

export interface Identity { cert: string; key: string }

export interface HttpResult { status: number; headers: Record<string, string | string[] | undefined>; body: string; json: () => any }

/** One HTTPS request over a fresh connection, presenting `identity` (or no certificate). */
export function httpsCall(port: number, path: string, o: { ca: string; identity?: Identity; method?: string; token?: string; body?: unknown; rawBody?: string | Buffer; headersFirst?: boolean; headers?: Record<string, string> }): Promise<HttpResult> {
  return new Promise((resolvePromise, reject) => {
    let answered = false;
    const payload = o.rawBody ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
    const req = httpsRequest({
      host: '127.0.0.1', port, path, method: o.method ?? (payload ? 'POST' : 'GET'), agent: false,
      ca: readFileSync(o.ca), servername: 'localhost',
      ...(o.identity ? { cert: readFileSync(o.identity.cert), key: readFileSync(o.identity.key) } : {}),
      headers: {
        ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
        ...o.headers,
      },
    }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolvePromise({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body) });
      });
      res.on('error', reject);
    });
    // A server that refuses a body by its Content-Length answers and closes while we may still be writing.
    req.on('error', (err) => { if (!answered) reject(err); });
    if (payload && o.headersFirst) {
      req.flushHeaders();
      setTimeout(() => { if (!answered) req.end(payload); }, 200);
    } else {
      if (payload) req.write(payload);
      req.end();
    }
  });
}

export type GrpcClient = grpc.Client & Record<string, (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: any) => void) => void>;

export function grpcClient(port: number, ca: string, identity: Identity | undefined, serverName = 'localhost'): GrpcClient {
  const creds = identity
    ? grpc.credentials.createSsl(readFileSync(ca), readFileSync(identity.key), readFileSync(identity.cert))
    : grpc.credentials.createSsl(readFileSync(ca));
  return new InferenceServiceClient(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': serverName }) as unknown as GrpcClient;
}

export function grpcCall(client: GrpcClient, method: string, request: unknown, token?: string, timeoutMs = 10_000, requestId?: string): Promise<any> {
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  if (requestId) md.set('x-request-id', requestId);
  return new Promise((resolvePromise, reject) => {
    client[method]!.call(client, request, md, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolvePromise(res)));
  });
}

export async function scrapeMetrics(adminPort: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  return res.text();
}

/** Node calls of `model` that carried more than one request so far (the gateway's coalescing histogram). */
export async function joinedNodeCalls(adminPort: number, model: string): Promise<number> {
  const text = await scrapeMetrics(adminPort);
  const count = Number(new RegExp(`^cdsgate_node_call_requests_count\\{model="${model}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  const alone = Number(new RegExp(`^cdsgate_node_call_requests_bucket\\{le="1",model="${model}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return count - alone;
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Renews the gateway's client certificate (`cdsgate certs renew gateway-client`), waits until the gateway has
 * reloaded it, then revokes the certificate it replaced and waits until every node has reloaded its CRL (which
 * closes the connections made with the old certificate). What the gateway sends to its nodes after this can only
 * have gone over connections made with the renewed certificate.
 */
export async function renewGatewayClientAndRevokeOld(cluster: Cluster): Promise<void> {
  copyFileSync(join(cluster.dir, 'gateway-client.pem'), join(cluster.dir, 'gateway-client-before-renewal.pem'));
  const renewed = await runCliAsync(['certs', 'renew', 'gateway-client', '--out', cluster.dir]);
  if (renewed.code !== 0) throw new Error(`certs renew failed: ${renewed.stderr}`);
  await waitFor(() => cluster.gateway.logs.some((l) => l.includes('node client TLS file changed: certificate, key and CA bundle reloaded')), 10_000, 'the gateway to reload its client certificate');
  const crlReloads = (n: Proc) => n.logs.filter((l) => l.includes('TLS file changed') && l.includes('crl.pem')).length;
  const before = cluster.nodes.map(crlReloads);
  const revoked = await runCliAsync(['certs', 'revoke', 'gateway-client-before-renewal', '--out', cluster.dir]);
  if (revoked.code !== 0) throw new Error(`certs revoke failed: ${revoked.stderr}`);
  await waitFor(() => cluster.nodes.every((n, i) => crlReloads(n) > before[i]!), 10_000, 'every node to reload its CRL');
}

/** Runs the built CLI without blocking the test's event loop (needed when it talks to servers the test also drives). */
export function runCliAsync(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      resolvePromise({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Runs the built CLI synchronously and returns its exit code and output. */
export function runCli(args: string[]): { code: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    return { code: 0, stdout, stderr: '' };
  } catch (err) {
    const e = err as { status: number; stdout: string; stderr: string };
    return { code: e.status, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The records of an audit directory (complete lines only). */
export function auditRecords(dir: string): Array<Record<string, any>> {
  return auditFiles(dir)
    .flatMap((file) => readAuditText(file).text.split('\n'))
    .flatMap((line) => {
      try {
        return line ? [JSON.parse(line) as Record<string, any>] : [];
      } catch {
        return [];
      }
    });
}

/** The records of an audit directory that are a request's own record (type "request"), one per audited request. */
export function requestRecords(dir: string): Array<Record<string, any>> {
  return auditRecords(dir).filter((r) => r.type === 'request');
}

/** Every file of an audit directory as text (an audit file's up to its preallocated tail), for checks that no PHI is anywhere in it. */
export function auditText(dir: string): string {
  const audit = new Set(auditFiles(dir));
  return readdirSync(dir).map((f) => join(dir, f)).map((file) => (audit.has(file) ? readAuditText(file).text : readFileSync(file, 'utf8'))).join('\n');
}

/**
 * A request id the gateway accepts as given (32 hex digits), derived from a
 * readable label so tests can find their records: labels such as 'a-btg'
 * are the kind of free text the gateway now replaces with its own id.
 */
export function rid(label: string): string {
  return createHash('sha256').update(label).digest('hex').slice(0, 32);
}
