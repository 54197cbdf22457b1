import * as grpc from '@grpc/grpc-js';
import type { AddressInfo } from 'node:net';
import type { NodeConfig } from '../config/schema.js';
import { inferenceServiceDefinition } from '../kserve/service.js';
import { kserveGrpcImplementation } from '../kserve/grpc-service.js';
import { registerKServeRoutes } from '../kserve/rest-routes.js';
import { grpcCallContext, restCallContext, type CallContext } from '../kserve/context.js';
import { createNodeMetrics } from '../metrics/node-metrics.js';
import { startAdminServer } from '../metrics/admin-server.js';
import type { Logger } from '../phi/logger.js';
import { internalCause, type CdsError } from '../errors.js';
import { MtlsServerCredentials, readServerTls, reloadTlsOnChange } from '../tls/server-tls.js';
import { createRestServer } from '../kserve/rest-server.js';
import { GRPC_CHANNELZ_OFF, hardenGrpcServer, tolerantDefinition } from '../kserve/grpc-server.js';
import { loadRepository, type LoadedModel } from './repository.js';
import { resolveProvider } from './provider.js';
import { ortSupports } from './ort-tensor.js';
import { NodeService } from './service.js';
import { INLINE_SLOW_MS, SessionPool } from './session-pool.js';
import { availableParallelism } from 'node:os';

export interface RunningNode {
  ports: { grpc: number; rest: number; admin: number };
  provider: string;
  /** Stop accepting, finish in-flight work, release sessions. */
  close(): Promise<void>;
}

const NODE_DEFAULT_TIMEOUT_MS = 30_000;

export async function startNode(config: NodeConfig, log: Logger): Promise<RunningNode> {
  const cfg = config.node;
  const metrics = createNodeMetrics(cfg.id);
  const entries = loadRepository(cfg.modelRepository, cfg.models).map((e) => {
    const unsupported = e.config && [...e.config.inputs, ...e.config.outputs].find((t) => !ortSupports(t.datatype));
    return unsupported && e.status === 'loaded'
      ? { status: 'failed' as const, name: e.name, version: e.version, config: e.config, reason: `${unsupported.datatype} tensors are not supported by onnxruntime-node` }
      : e;
  });
  for (const e of entries) {
    metrics.modelReady.set({ model: e.name, version: e.version ?? '' }, e.status === 'loaded' ? 1 : 0);
    if (e.status === 'failed') log.error({ model: e.name, reason: e.reason }, 'model refused');
  }
  const loaded = entries.filter((e): e is LoadedModel => e.status === 'loaded');
  if (loaded.length === 0) throw new Error(`no model could be loaded from ${cfg.modelRepository}`);

  const provider = await resolveProvider(cfg.executionProvider, cfg.deviceId, new Uint8Array(loaded[0]!.bytes).slice());
  metrics.executionProvider.set({ provider: provider.name, device: String(provider.deviceId ?? ''), requested: cfg.executionProvider }, 1);
  if (provider.fallbackReason) log.warn({ requested: cfg.executionProvider, reason: provider.fallbackReason }, 'CUDA unavailable, running on CPU');
  log.info({ executionProvider: provider.name, deviceId: provider.deviceId, workers: cfg.workers, intraOpThreads: cfg.intraOpThreads }, 'execution provider selected');

  const logFailure = (ctx: CallContext, route: string, model: string | undefined, error: CdsError | undefined) => {
    if (error?.kind === 'internal') log.error({ requestId: ctx.requestId, door: ctx.door, route, model, ...internalCause(error) }, 'request failed');
  };
  const modelOf = (key: string) => key.slice(0, key.lastIndexOf(':'));
  const pool = new SessionPool({
    models: loaded, provider, workers: cfg.workers, intraOpThreads: cfg.intraOpThreads, maxQueue: cfg.maxQueue,
    onExecuted: (key, instance, computeMs) => {
      metrics.instanceExecutions.inc({ model: modelOf(key), instance: String(instance) });
      metrics.computeSeconds.observe({ model: modelOf(key) }, computeMs / 1000);
    },
    onSlowInline: (key, computeMs) => log.warn({ model: modelOf(key), typicalRunMs: Math.round(computeMs * 100) / 100, limitMs: INLINE_SLOW_MS }, 'an inline model\'s runs hold the main thread for longer than they should: remove "inline" from its config'),
  });
  for (const m of loaded) metrics.modelInstances.set({ model: m.name }, m.config.inline ? 1 : m.config.instances ?? cfg.workers);
  const cores = availableParallelism();
  if (pool.threads * cfg.intraOpThreads > cores) {
    log.warn({ threads: pool.threads, intraOpThreads: cfg.intraOpThreads, cores }, 'worker threads × intraOpThreads exceed the cores: runs will contend for them');
  }
  await pool.warmUp();
  const service = new NodeService(cfg.id, entries, provider, pool, cfg.allowedClients, metrics);
  const tls = readServerTls(cfg.tls);
  const onHandshakeFailure = (listener: string) => (reason: string, remoteAddress: string | undefined) => {
    metrics.handshakeFailures.inc({ listener, reason });
    log.warn({ listener, reason, remoteAddress }, 'TLS handshake failed');
  };

  // The gateway sets each call's deadline; one without gets the node's default, and none may exceed it.
  const nodeDoors = { defaultTimeoutMs: NODE_DEFAULT_TIMEOUT_MS, maxTimeoutMs: NODE_DEFAULT_TIMEOUT_MS, readAuthorization: false, cancellable: true };

  // gRPC (the gateway's path)
  const grpcServer = new grpc.Server({ 'grpc.max_receive_message_length': cfg.maxMessageBytes, 'grpc.max_send_message_length': cfg.maxMessageBytes, ...GRPC_CHANNELZ_OFF });
  grpcServer.addService(tolerantDefinition(inferenceServiceDefinition), kserveGrpcImplementation(service, {
    limits: cfg.limits,
    context: (call) => grpcCallContext(call, nodeDoors),
    finished: (ctx, rpc, _code, model, error) => logFailure(ctx, rpc, model, error),
  }));
  const grpcCredentials = new MtlsServerCredentials(tls);
  hardenGrpcServer(grpcServer, { connections: grpcCredentials.connections, onHandshakeFailure: onHandshakeFailure('grpc'), defaultTimeoutMs: NODE_DEFAULT_TIMEOUT_MS, maxTimeoutMs: NODE_DEFAULT_TIMEOUT_MS });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync(`${cfg.grpc.host}:${cfg.grpc.port}`, grpcCredentials, (err, port) => (err ? reject(err) : resolve(port))));

  // REST (direct checks and benchmarks), same identity rule
  const { app: rest, reloadTls: reloadRestTls } = createRestServer({ tls, onHandshakeFailure: onHandshakeFailure('rest'), bodyLimit: cfg.maxMessageBytes, ...cfg.rest });
  registerKServeRoutes(rest, service, {
    limits: cfg.limits,
    context: (req, res) => restCallContext(req, nodeDoors, res),
    finished: (ctx, route, _status, model, error) => logFailure(ctx, route, model, error),
  });
  await rest.listen({ host: cfg.rest.host, port: cfg.rest.port });
  const restPort = (rest.server.address() as AddressInfo).port;
  // A revoked gateway certificate is refused from the next handshake on.
  const stopWatchingTls = reloadTlsOnChange(cfg.tls, [reloadRestTls, (fresh) => grpcCredentials.reload(fresh)], log, (result) => metrics.fileReloads.inc({ file: 'tls', result }));

  const admin = await startAdminServer(cfg.admin.host, cfg.admin.port, metrics.registry, () => ({
    node: cfg.id,
    executionProvider: provider,
    models: entries.map((e) => ({ name: e.name, version: e.version, status: e.status, ...(e.status === 'failed' ? { reason: e.reason } : {}) })),
    queued: pool.queued,
    ...(cfg.faultInjection ? { faultDelayMs: service.faultDelayMs, faultProbability: service.faultProbability } : {}),
  }), cfg.faultInjection ? {
    '/fault': (q) => {
      service.faultDelayMs = Math.max(0, Number(q.get('delayMs') ?? 0));
      const probability = Number(q.get('probability') ?? 1);
      service.faultProbability = Number.isFinite(probability) ? Math.min(1, Math.max(0, probability)) : 1;
      log.warn({ faultDelayMs: service.faultDelayMs, faultProbability: service.faultProbability }, 'fault injection: inference delay set');
      return { faultDelayMs: service.faultDelayMs, faultProbability: service.faultProbability };
    },
  } : {});
  if (cfg.faultInjection) log.warn('fault injection is enabled (test only)');

  return {
    ports: { grpc: grpcPort, rest: restPort, admin: admin.port },
    provider: provider.name,
    /**
     * Drain: not ready at once (the gateway's health checks move traffic away),
     * still serving for drainGraceMs, then refusing new calls and finishing
     * the ones in flight.
     */
    async close() {
      service.startDraining();
      log.info({ drainGraceMs: cfg.drainGraceMs }, 'draining: reporting not ready, still serving');
      await new Promise((r) => setTimeout(r, cfg.drainGraceMs));
      service.stopAccepting();
      await new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()));
      await rest.close();
      admin.server.close();
      stopWatchingTls();
      await pool.close();
    },
  };
}
