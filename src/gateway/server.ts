import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyRequest } from 'fastify';
import underPressure from '@fastify/under-pressure';
import * as grpc from '@grpc/grpc-js';
import type { GatewayConfig } from '../config/schema.js';
import { Authenticator } from '../auth/authenticate.js';
import { grpcCallContext, restCallContext, type CallContext } from '../kserve/context.js';
import { kserveGrpcImplementation } from '../kserve/grpc-service.js';
import { registerKServeRoutes } from '../kserve/rest-routes.js';
import { createRestServer } from '../kserve/rest-server.js';
import { GRPC_CHANNELZ_OFF, hardenGrpcServer, tolerantDefinition } from '../kserve/grpc-server.js';
import { inferenceServiceDefinition } from '../kserve/service.js';
import { startAdminServer } from '../metrics/admin-server.js';
import { createGatewayMetrics } from '../metrics/gateway-metrics.js';
import { Gauge, type Registry } from 'prom-client';
import type { ReplayStore } from '../auth/replay-cache.js';
import type { Logger } from '../phi/logger.js';
import { Router, nodeClients } from '../routing/router.js';
import { MtlsServerCredentials, readServerTls, reloadTlsOnChange } from '../tls/server-tls.js';
import { readClientTls, reloadClientTlsOnChange } from '../tls/client-tls.js';
import { requestObserver } from './observe.js';
import { Pipeline } from './pipeline.js';
import { compileRoutes } from '../config/routes.js';
import { CdsHooksDoor, registerCdsHooksRoutes } from '../cds-hooks/door.js';
import { AuditLog } from '../audit/log.js';
import { loadSigningKey } from '../audit/chain.js';
import { Pseudonymizer } from '../phi/pseudonym.js';
import { warmRedactor } from '../phi/text-redactor.js';

export interface RunningGateway {
  ports: { rest: number; grpc: number; admin: number };
  /** What the admin port's /status says (nodes, readiness, audit). */
  status(): unknown;
  close(): Promise<void>;
}

/** How a gateway worker differs from a gateway that runs alone (gateway/workers.ts). */
export interface GatewayProcessOptions {
  /** Its own audit chain segment. */
  auditDir?: string;
  /** Names the segment's genesis record (gateway#N). */
  workerIndex?: number;
  /** The primary serves the admin port for every worker. */
  admin?: boolean;
  /** The primary's jti cache, so a token is used once across every worker. */
  replays?: ReplayStore;
  /** Called with the gateway's metric registry (workers hand it to prom-client's cluster aggregation). */
  registry?: (registry: Registry) => void;
}

export async function startGateway(config: GatewayConfig, log: Logger, options: GatewayProcessOptions = {}): Promise<RunningGateway> {
  const gw = config.gateway;
  const metrics = createGatewayMetrics();
  options.registry?.(metrics.registry);
  const routes = compileRoutes(config);
  const router = new Router(
    config,
    nodeClients(readClientTls(gw.nodeClientTls), gw.grpc.maxMessageBytes, gw.maxTimeoutMs),
    {
      breakerChanged: (node, state) => metrics.setBreaker(node, state),
      nodeReadiness: (node, ready) => metrics.nodeReady.set({ node }, ready ? 1 : 0),
      retried: (pool) => metrics.retries.inc({ pool }),
      retryBudgetExhausted: (pool) => metrics.retryBudgetExhausted.inc({ pool }),
      hedged: (pool, model, outcome) => metrics.hedges.inc({ pool, model, outcome }),
      coalesced: (model, requests) => metrics.coalesced.observe({ model }, requests),
      unsplittable: (model, node) => log.warn({ model, node }, 'the node\'s answer could not be split row by row; the model\'s requests go to this node one at a time from now on (is its batch dimension first in every output?)'),
    },
    log,
    routes,
  );
  for (const node of config.nodes) {
    metrics.setBreaker(node.id, 'closed');
    metrics.nodeReady.set({ node: node.id }, 0);
  }
  warmRedactor(); // the redactor's word lists and tagger, before the first request needs them
  const pseudonymizer = Pseudonymizer.load(config.phi.pseudonymKey, config.phi.pseudonymKey.keyId);
  let pipeline: Pipeline | undefined;
  const audit = await AuditLog.open({
    dir: options.auditDir ?? config.audit.dir,
    signingKey: loadSigningKey(readFileSync(config.audit.signingKey)),
    gateway: options.workerIndex === undefined ? gw.name : `${gw.name}#${options.workerIndex}`,
    checkpointIntervalMs: config.audit.checkpointIntervalMs,
    rotateBytes: config.audit.rotateBytes,
    rotateDaily: config.audit.rotateDaily,
    fsync: config.audit.fsync,
    log,
    // One request in progress: its record is written and synced at once; many: a batch gathers first (audit/log.ts).
    inProgress: () => pipeline?.inProgress ?? 0,
    synced: (placement, seconds) => metrics.auditSync.observe({ placement }, seconds),
  });
  await router.start();
  // A configured NER model loads onnxruntime into the gateway; without one the gateway never does.
  const ner = config.phi.ner ? await (await import('../phi/onnx-ner.js')).OnnxNer.load(config.phi.ner) : undefined;
  const authenticator = new Authenticator(config.auth.issuers, options.replays, config.auth.tokenCacheEntries, {
    reloaded: (issuer) => {
      metrics.fileReloads.inc({ file: 'jwks', result: 'applied' });
      log.info({ issuer }, 'issuer key set changed (file re-read or URL refetched): cached tokens of this issuer will be verified again');
    },
    notReloaded: (issuer, reason) => {
      metrics.fileReloads.inc({ file: 'jwks', result: 'refused' });
      log.error({ issuer, reason }, 'issuer key file changed but could not be read; its previous keys stay in force');
    },
    signatureChecked: (where) => metrics.signatureChecks.inc({ where }),
  }, () => pipeline?.inProgress ?? 0);
  pipeline = new Pipeline({ config, routes, ...(ner ? { ner } : {}), authenticator, router, audit, pseudonymizer, metrics, log });
  pipeline.warmUp();
  const observe = requestObserver(log, metrics, (model) => Object.hasOwn(config.models, model));
  const tls = readServerTls(gw.tls);
  const onHandshakeFailure = (door: string) => (reason: string, remoteAddress: string | undefined) => {
    metrics.handshakeFailures.inc({ door, reason });
    log.warn({ door, reason, remoteAddress }, 'TLS handshake failed');
  };

  // REST door
  const { app: rest, reloadTls: reloadRestTls } = createRestServer({ tls, onHandshakeFailure: onHandshakeFailure('rest'), bodyLimit: gw.rest.bodyLimitBytes, ...gw.rest });
  let closing = false;
  // While draining, a request that arrives on a kept-alive connection is told to go elsewhere, in our format.
  rest.addHook('onRequest', async (_req, reply) => {
    if (!closing) return;
    metrics.shed.inc({ reason: 'draining' });
    await reply.code(503).headers({ 'retry-after': '1', connection: 'close' }).send({ error: 'this gateway is shutting down; retry on another instance' });
  });
  // Event-loop lag protection: answer 503 at once instead of queueing work the process cannot do in time.
  await rest.register(underPressure, {
    maxEventLoopDelay: gw.maxEventLoopDelayMs,
    retryAfter: 1,
    pressureHandler: (_req, reply) => {
      metrics.shed.inc({ reason: 'event_loop_lag' });
      void reply.code(503).header('retry-after', '1').send({ error: 'the gateway is overloaded; retry shortly' });
    },
  });
  // One call context for every route of the REST listener (the CDS Hooks door relabels its door).
  const doorOptions = { defaultTimeoutMs: gw.defaultTimeoutMs, maxTimeoutMs: gw.maxTimeoutMs, readAuthorization: true, cancellable: false };
  const restContext = (req: FastifyRequest): CallContext => restCallContext(req, doorOptions);
  registerKServeRoutes(rest, pipeline, {
    limits: gw.limits,
    context: restContext,
    finished: (ctx, route, status, model, error) => observe(ctx, route, String(status), model, error),
  });
  // CDS Hooks door, on the same mTLS listener.
  if (config.cdsHooks) {
    const cds = config.cdsHooks;
    const door = new CdsHooksDoor({
      config: cds, router, audit, pseudonymizer, metrics, log, ...(options.replays ? { replays: options.replays } : {}),
      baseUrl: () => (cds.baseUrl ?? `https://localhost:${(rest.server.address() as AddressInfo).port}`).replace(/\/+$/, ''),
    });
    registerCdsHooksRoutes(rest, door, { context: restContext, finished: (ctx, route, status, model, error) => observe(ctx, route, String(status), model, error) });
  }
  await rest.listen({ host: gw.rest.host, port: gw.rest.port });

  // gRPC door
  const grpcServer = new grpc.Server({
    'grpc.max_receive_message_length': gw.grpc.maxMessageBytes,
    'grpc.max_send_message_length': gw.grpc.maxMessageBytes,
    // An HTTP/2 connection with no call for this long is closed (REST's equivalent is keepAliveTimeoutMs).
    'grpc.max_connection_idle_ms': gw.grpc.idleTimeoutMs,
    ...GRPC_CHANNELZ_OFF,
  });
  grpcServer.addService(tolerantDefinition(inferenceServiceDefinition), kserveGrpcImplementation(pipeline, {
    limits: gw.limits,
    context: (call) => grpcCallContext(call, doorOptions),
    finished: (ctx, rpc, code, model, error) => observe(ctx, rpc, grpc.status[code] ?? String(code), model, error),
  }));
  const grpcCredentials = new MtlsServerCredentials(tls);
  hardenGrpcServer(grpcServer, { connections: grpcCredentials.connections, onHandshakeFailure: onHandshakeFailure('grpc'), defaultTimeoutMs: gw.defaultTimeoutMs, maxTimeoutMs: gw.maxTimeoutMs });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync(`${gw.grpc.host}:${gw.grpc.port}`, grpcCredentials, (err, port) => (err ? reject(err) : resolve(port))));

  // A changed CRL applies to the next handshake on both doors, without a restart.
  const stopWatchingTls = reloadTlsOnChange(gw.tls, [reloadRestTls, (fresh) => grpcCredentials.reload(fresh)], log, (result) => metrics.fileReloads.inc({ file: 'tls', result }));
  const stopWatchingClientTls = reloadClientTlsOnChange(gw.nodeClientTls, (fresh) => router.reloadClientTls(fresh), log, (result) => metrics.fileReloads.inc({ file: 'node_client_tls', result }));

  const status = () => ({ ready: router.ready() && audit.healthy, audit: audit.healthy ? 'ok' : 'failed', ...router.status() });
  const admin = options.admin === false ? undefined : await startAdminServer(gw.admin.host, gw.admin.port, metrics.registry, status);
  const ports = { rest: (rest.server.address() as AddressInfo).port, grpc: grpcPort, admin: admin?.port ?? 0 };

  for (const [name, help, read] of [
    ['cdsgate_node_in_flight', 'Requests in flight per node', (n: { inFlight: number }) => n.inFlight],
    ['cdsgate_node_latency_ms', 'Recent latency of successful calls per node (EWMA, ms)', (n: { latencyMs: number | null }) => n.latencyMs ?? 0],
  ] as const) {
    new Gauge({
      // Several workers: in-flight requests add up; latencies are averaged.
      name, help, labelNames: ['node'], registers: [metrics.registry], aggregator: name === 'cdsgate_node_in_flight' ? 'sum' : 'average',
      collect() { for (const n of router.status().nodes) this.set({ node: n.node }, read(n as never)); },
    });
  }

  return {
    ports,
    status,
    /**
     * Graceful drain: report not ready, stop accepting connections, let
     * in-flight requests finish, then sign the audit log's final head.
     */
    async close() {
      pipeline.startDraining();
      closing = true;
      log.info('draining: not ready, no new connections, finishing in-flight requests');
      await Promise.all([new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve())), rest.close()]);
      admin?.server.close();
      stopWatchingTls();
      stopWatchingClientTls();
      router.close();
      await audit.close(); // signs the final head
    },
  };
}
