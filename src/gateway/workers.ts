/**
 * Several gateway processes on the same ports (node:cluster), so the
 * gateway uses every core: one event loop caps it at about one core's worth.
 *
 * The primary runs no door. It forks `gateway.workers` workers, serves the
 * admin port for all of them (metrics summed across workers by prom-client's
 * AggregatorRegistry, /status per worker), holds the one jti replay cache
 * every worker claims tokens in (so a one-time token is used once, whichever
 * worker sees it), and drains them together on SIGTERM.
 *
 * Each worker is a whole gateway: its own router (health checks, breakers,
 * admission limits are per worker: the pool limits apply per worker, and each
 * worker health-checks the nodes), and its own audit chain segment in
 * audit.dir/worker-N, which `cdsgate audit verify` and `export` read together.
 */
import cluster, { type Worker } from 'node:cluster';
import { join } from 'node:path';
import { AggregatorRegistry } from 'prom-client';
import type { GatewayConfig } from '../config/schema.js';
import { CdsError, type ErrorKind } from '../errors.js';
import { ReplayCache, type ReplayStore } from '../auth/replay-cache.js';
import { startAdminServer } from '../metrics/admin-server.js';
import type { Logger } from '../phi/logger.js';
import type { RunningGateway } from './server.js';

type ToPrimary =
  | { cdsgate: 'ready'; ports: { rest: number; grpc: number } }
  | { cdsgate: 'jti'; id: number; issuer: string; jti: string; expiresAtMs: number }
  | { cdsgate: 'status'; id: number; status: unknown };
type ToWorker =
  | { cdsgate: 'jti'; id: number; error?: { kind: ErrorKind; message: string; headers: Record<string, string> } }
  | { cdsgate: 'status'; id: number }
  | { cdsgate: 'shutdown' };

const isOurs = (m: unknown): m is { cdsgate: string } => typeof m === 'object' && m !== null && typeof (m as { cdsgate?: unknown }).cdsgate === 'string';

/** The worker's index, when this process is a gateway worker. */
export function gatewayWorkerIndex(): number | undefined {
  return cluster.isWorker && process.env.CDSGATE_GATEWAY_WORKER !== undefined ? Number(process.env.CDSGATE_GATEWAY_WORKER) : undefined;
}

/** The audit chain segment of worker `index`. */
export const workerAuditDir = (config: GatewayConfig, index: number): string => join(config.audit.dir, `worker-${index}`);

/** The primary: forks the workers and returns once every one of them serves. */
export async function startGatewayPrimary(config: GatewayConfig, log: Logger): Promise<RunningGateway> {
  const count = config.gateway.workers;
  // The kernel hands each connection to one worker's accept (SO_REUSEADDR on one shared socket): no
  // round trip through the primary per connection, which cost more than it balanced (load-tests/peers.ts).
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const replays = new ReplayCache();
  const aggregator = new AggregatorRegistry();
  const workers: Worker[] = [];
  const statusWaiters = new Map<number, (status: unknown) => void>();
  let nextId = 0;
  let closing = false;

  const readies = Array.from({ length: count }, (_, index) => new Promise<{ rest: number; grpc: number }>((resolve, reject) => {
    const worker = cluster.fork({ CDSGATE_GATEWAY_WORKER: String(index) });
    workers.push(worker);
    worker.on('message', (m: unknown) => {
      if (!isOurs(m)) return; // prom-client's own aggregation messages
      const message = m as ToPrimary;
      if (message.cdsgate === 'ready') resolve(message.ports);
      else if (message.cdsgate === 'jti') {
        let reply: ToWorker = { cdsgate: 'jti', id: message.id };
        try {
          replays.claim(message.issuer, message.jti, message.expiresAtMs);
        } catch (err) {
          const e = err as CdsError;
          reply = { cdsgate: 'jti', id: message.id, error: { kind: e.kind, message: e.message, headers: e.headers } };
        }
        worker.send(reply);
      } else if (message.cdsgate === 'status') statusWaiters.get(message.id)?.(message.status);
    });
    worker.once('exit', (code, signal) => {
      reject(new Error(`gateway worker ${index} exited (${code ?? signal}) before it was ready`));
      if (!closing) {
        // A worker that dies takes its share of the doors with it: stop all rather than run degraded unnoticed.
        log.error({ worker: index, code, signal }, 'gateway worker exited; stopping the gateway');
        for (const w of workers) if (w.isConnected()) w.send({ cdsgate: 'shutdown' } satisfies ToWorker);
        setTimeout(() => process.exit(1), 15_000).unref();
        void Promise.all(workers.map((w) => new Promise((r) => (w.isDead() ? r(undefined) : w.once('exit', r))))).then(() => process.exit(1));
      }
    });
  }));
  let ports: { rest: number; grpc: number };
  try {
    [ports] = await Promise.all(readies) as [{ rest: number; grpc: number }];
  } catch (err) {
    closing = true;
    for (const w of workers) w.kill('SIGKILL');
    throw err;
  }

  const workerStatus = (w: Worker, index: number) => new Promise<unknown>((resolve) => {
    const id = nextId++;
    const timer = setTimeout(() => { statusWaiters.delete(id); resolve({ worker: index, ready: false, error: 'no answer' }); }, 2_000);
    statusWaiters.set(id, (status) => { clearTimeout(timer); statusWaiters.delete(id); resolve({ worker: index, ...(status as object) }); });
    w.send({ cdsgate: 'status', id } satisfies ToWorker);
  });
  const status = async () => {
    const each = await Promise.all(workers.map(workerStatus));
    return { ready: each.every((s) => (s as { ready?: boolean }).ready === true), workers: each };
  };
  const admin = await startAdminServer(config.gateway.admin.host, config.gateway.admin.port,
    { metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType }, status);
  log.info({ workers: count }, 'gateway workers serving');

  return {
    ports: { ...ports, admin: admin.port },
    status,
    async close() {
      closing = true;
      const exits = workers.map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
      for (const w of workers) if (w.isConnected()) w.send({ cdsgate: 'shutdown' } satisfies ToWorker);
      await Promise.all(exits);
      admin.server.close();
    },
  };
}

/** A worker's jti claims go to the primary, which answers for every worker. */
class PrimaryReplayStore implements ReplayStore {
  private readonly waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private nextId = 0;

  constructor() {
    process.on('message', (m: unknown) => {
      if (!isOurs(m) || (m as ToWorker).cdsgate !== 'jti') return;
      const reply = m as Extract<ToWorker, { cdsgate: 'jti' }>;
      const w = this.waiting.get(reply.id);
      if (!w) return;
      this.waiting.delete(reply.id);
      if (reply.error) w.reject(new CdsError(reply.error.kind, reply.error.message, reply.error.headers));
      else w.resolve();
    });
  }

  claim(issuer: string, jti: string, expiresAtMs: number): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      process.send!({ cdsgate: 'jti', id, issuer, jti, expiresAtMs } satisfies ToPrimary);
    });
  }
}

/** A worker: a whole gateway on the shared ports, with its own audit segment and no admin port. */
export async function runGatewayWorker(config: GatewayConfig, log: Logger, index: number): Promise<void> {
  const { startGateway } = await import('./server.js');
  const gateway = await startGateway(config, log, {
    auditDir: workerAuditDir(config, index), workerIndex: index, admin: false, replays: new PrimaryReplayStore(),
    registry: (registry) => {
      // prom-client answers the primary's metric requests only once an AggregatorRegistry exists in this process.
      new AggregatorRegistry();
      AggregatorRegistry.setRegistries([registry]);
    },
  });
  let closing = false;
  const close = () => {
    if (closing) return;
    closing = true;
    gateway.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('message', (m: unknown) => {
    if (!isOurs(m)) return;
    const message = m as ToWorker;
    if (message.cdsgate === 'shutdown') close();
    else if (message.cdsgate === 'status') process.send!({ cdsgate: 'status', id: message.id, status: gateway.status() } satisfies ToPrimary);
  });
  // The primary coordinates shutdown; a terminal's Ctrl-C reaches the whole group, so a worker leaves signals to it.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  // If the primary goes away, so does this worker, cleanly.
  process.once('disconnect', close);
  process.send!({ cdsgate: 'ready', ports: { rest: gateway.ports.rest, grpc: gateway.ports.grpc } } satisfies ToPrimary);
  log.info({ worker: index }, 'gateway worker serving');
}
