/**
 * cdsgate against the proxy a user would otherwise put in front of their
 * inference servers: HAProxy (Debian's `haproxy`) terminating mTLS, checking
 * the JWT (signature, iss, aud, exp, role) and proxying to the node's REST
 * door over TLS with the gateway's client certificate — and cdsgate doing all
 * that and more (audit, redaction, policy, routing) in front of the same node.
 *
 *   npm run bench:peers [-- --rounds 3 --seconds 10 --connections 1,32 --tokens 1 --token-cache N --only rest --warmup 4 --prewarm 2 --slow-sync-us N]
 *
 * Rows: node direct (REST and gRPC), HAProxy → node REST (without and with
 * its standard per-request log line, as cdsgate writes one), the Node floor
 * (lib/node-floor.ts: fastify and undici passing bytes through with mTLS on
 * both sides and no other work, what any Node proxy pays), cdsgate REST and
 * gRPC with durable audit, cdsgate REST and gRPC without fsync (each door on
 * a gateway of its own, as each serves in its steady state), cdsgate
 * calling the node's gRPC door instead of its REST door (the earlier default),
 * cdsgate without coalescing (one node call per request), and cdsgate with N
 * worker processes. At one connection, two more rows call the node directly
 * as often as HAProxy, and cdsgate, called it in that round: on a VM a
 * process that sleeps between requests serves the next one slower, so part
 * of what a slower path adds over "node directly" is the node's own
 * slowdown, and the report gives what each proxy adds over the node at its
 * own pace too. Every other cdsgate row coalesces news2 as the development
 * configuration does, and the report gives the requests per node call it
 * measured. Rounds are
 * interleaved (every row once per round: the node's rows first, the paced
 * rows last, the others in a different order each round, lib/round-order.ts;
 * each measured run follows `--prewarm` seconds of the same load, discarded),
 * figures are medians over
 * rounds, and each cdsgate/HAProxy ratio is the median of per-round ratios.
 * CPU µs per request is read from /proc for each process in the path. For
 * each gateway that syncs its audit log, the run's syncs are read from its
 * metrics (records per sync, mean sync duration, share on the thread pool):
 * what "no answer without its record on disk" cost in that run.
 * Writes load-tests/reports/peers.{json,md,svg} (peers-N-tokens.* with --tokens N).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { DEV_AUDIENCE, DEV_ISSUER } from '../src/auth/dev-issuer.js';
import { httpsCall, startCluster, startProcess, stopProcess, type Proc } from '../test/helpers/cluster.js';
import { gatewayTotals, type AuditSyncTotals } from './lib/gateway-metrics.js';
import { grpcLoad } from './lib/grpc-load.js';
import { measure, median, processCpuMicros, writeReport, type Figures, type Target } from './lib/measure.js';
import { wholeOption } from './lib/options.js';
import { NEWS2_GRPC_REQUEST, NEWS2_REST_BODY } from './lib/news2-request.js';
import { roundOrder, type Placed } from './lib/round-order.js';
import { slowSyncOption } from './lib/slow-sync.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '10' },
    /** Warm-up waves per row and connection count before the measured rounds, each min(seconds, 3) s long. */
    warmup: { type: 'string', default: '4' },
    /**
     * Seconds each row runs, discarded, just before each of its measured runs (0: none). Interleaving leaves every
     * row idle while the others run (about a minute in a full run), and a Node process that sat idle for that long
     * runs its next seconds slower (docs/PERFORMANCE.md, "How the comparison is warmed"). HAProxy is warmed the same way, so the
     * rows compare steady states.
     */
    prewarm: { type: 'string', default: '2' },
    connections: { type: 'string', default: '1,32' }, tokens: { type: 'string', default: '1' },
    /**
     * The cdsgate gateways' verified-token cache size (`auth.tokenCacheEntries`; default: the configuration's).
     * 0 verifies every token on every request, as HAProxy does: with `--tokens 5000` the cache otherwise serves
     * each token for up to a minute after its first verification.
     */
    'token-cache': { type: 'string' },
    only: { type: 'string' },
    /** Gateway worker processes for the extra "N workers" row (0: no such row). */
    workers: { type: 'string', default: String(availableParallelism()) },
    /** Every audit sync waits this many microseconds more, one at a time: a disk that syncs slowly (lib/slow-sync.ts). */
    'slow-sync-us': { type: 'string' },
  },
});
const whole = (option: string, text: string, min: number): number => wholeOption('bench:peers', option, text, min);
const rounds = whole('rounds', values.rounds!, 1), seconds = whole('seconds', values.seconds!, 1), tokenCount = whole('tokens', values.tokens!, 1);
const warmupWaves = whole('warmup', values.warmup!, 1), warmupSeconds = Math.min(seconds, 3);
const prewarmSeconds = whole('prewarm', values.prewarm!, 0);
const tokenCacheEntries = values['token-cache'] === undefined ? undefined : whole('token-cache', values['token-cache'], 0);
const connectionCounts = values.connections!.split(',').map((c) => whole('connections', c, 1));
const workerCount = whole('workers', values.workers!, 0);
const slowSyncMicros = slowSyncOption('bench:peers', values['slow-sync-us']);

try {
  execFileSync('haproxy', ['-v'], { stdio: 'ignore' });
} catch {
  console.error('bench:peers needs HAProxy (the peer it measures against): apt-get install haproxy');
  process.exit(2);
}

const FLOOR = 'Node floor (fastify + undici, no checks)';
const HAPROXY_LOGGED = 'HAProxy → node REST, request log';
const UNCOALESCED = 'cdsgate REST, no coalescing (audit fsync)';
/**
 * The node called directly at one connection, as often as it is called behind HAProxy or behind cdsgate
 * (paceBehind): the node's own latency when its requests come that far apart. On a VM a process that sleeps
 * between requests runs the next one slower, so "added over the node directly" also counts the node's own
 * slowdown behind a slower path; these rows separate the two.
 */
const PACED_HAPROXY = 'node REST directly, at HAProxy\'s pace';
const PACED_CDSGATE = 'node REST directly, at cdsgate\'s pace';

const freePort = () => new Promise<number>((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => resolve(port)); });
});


// The gateways' request log lines are not kept here: the load generator should not hold one per request.
// Every cdsgate gateway here is started from the test cluster's gateway configuration, so the patch reaches them all.
const cluster = await startCluster({ nodes: 1, keepLogs: false, gatewayPatch: (c) => { if (tokenCacheEntries !== undefined) c.auth.tokenCacheEntries = tokenCacheEntries; } });
const node = cluster.nodes[0]!;
const d = cluster.dir;
let haproxy: ChildProcess | undefined;
let haproxyLogged: ChildProcess | undefined;
let floor: ChildProcess | undefined;
let noFsync: Proc | undefined;
let multi: Proc | undefined;
let viaGrpc: Proc | undefined;
let uncoalesced: Proc | undefined;
let grpcDoor: Proc | undefined;
let grpcDoorNoFsync: Proc | undefined;
/** Every gateway started here besides the cluster's own, stopped at the end. */
const extraGateways: Proc[] = [];
/**
 * Another gateway over the same node: the cluster gateway's configuration, with an audit directory of its own
 * (`audit-NAME`), changed by `patch`.
 */
const startGateway = async (name: string, patch: (config: Record<string, any>) => void = () => undefined): Promise<Proc> => {
  const config = JSON.parse(readFileSync(join(d, 'gateway.json'), 'utf8'));
  config.audit = { ...config.audit, dir: join(d, `audit-${name}`) };
  patch(config);
  const gateway = await startProcess('gateway', config, d, `gateway-${name}`, false);
  extraGateways.push(gateway);
  return gateway;
};
try {
  // cdsgate with several worker processes on one port (gateway.workers), over the same node.
  if (workerCount > 1) multi = await startGateway('workers', (c) => { c.gateway = { ...c.gateway, workers: workerCount }; });
  // cdsgate calling the node's gRPC door (the gateway → node path before REST with binary tensors was the default).
  viaGrpc = await startGateway('via-grpc', (c) => {
    c.nodes = c.nodes.map((n: Record<string, unknown>) => ({ ...n, protocol: 'grpc', address: `127.0.0.1:${node.ports.grpc}` }));
  });
  // cdsgate without fsync.
  noFsync = await startGateway('nofsync', (c) => { c.audit.fsync = false; });
  // cdsgate without coalescing (the development configuration coalesces news2): one node call per request, as before it.
  uncoalesced = await startGateway('uncoalesced', (c) => { for (const route of Object.values(c.models) as Array<Record<string, unknown>>) delete route.coalesce; });
  // The gRPC door's rows get gateways of their own, so that every cdsgate row is measured on a gateway that serves
  // one door, as it does in its steady state. A gateway that served a burst of gRPC calls serves REST more slowly for
  // the next several seconds at one connection (V8 deoptimises the code the two doors share when the other door's
  // objects reach it, and reoptimises it only as REST calls come): measured with two gateways of one build, REST at
  // one connection right after 3 s of gRPC load against right after REST load, 6 interleaved rounds: p50 1.357
  // against 1.178 ms; with 10 s of REST before each measured run instead of 2, or gRPC load only once before the
  // rounds, no difference (docs/PERFORMANCE.md). Sharing one gateway made the REST row pay that in every round.
  if (values.only !== 'rest') {
    grpcDoor = await startGateway('grpc-door');
    grpcDoorNoFsync = await startGateway('grpc-door-nofsync', (c) => { c.audit.fsync = false; });
  }

  // HAProxy with the equivalent checks. jwt_payload_query reads no arrays, so the role is looked for in roles[0..3].
  const jwks = JSON.parse(readFileSync(cluster.issuer.jwks, 'utf8')) as { keys: Array<Record<string, unknown>> };
  writeFileSync(join(d, 'issuer-pub.pem'), createPublicKey({ key: jwks.keys[0]!, format: 'jwk' } as Parameters<typeof createPublicKey>[0]).export({ type: 'spki', format: 'pem' }));
  writeFileSync(join(d, 'haproxy-server.pem'), readFileSync(cluster.pki.gatewayServer.cert, 'utf8') + readFileSync(cluster.pki.gatewayServer.key, 'utf8'), { mode: 0o600 });
  writeFileSync(join(d, 'haproxy-client.pem'), readFileSync(cluster.pki.gatewayClient.cert, 'utf8') + readFileSync(cluster.pki.gatewayClient.key, 'utf8'), { mode: 0o600 });
  const haproxyPort = await freePort();
  /**
   * HAProxy with the equivalent checks, as the issue set it up: no log line per request. A second instance adds
   * HAProxy's standard request log (`option httplog`, one line per request to standard output, read and dropped
   * here as the gateways' lines are), for readers comparing with a gateway that writes a line per request.
   */
  const haproxyConfig = (port: number, requestLog: boolean): string => [
    'global', '  nbthread 2', '  log stderr format short local0 warning',
    // With its request log: the standard HTTP log line of every request, written to standard output as it ends.
    ...(requestLog ? ['  log stdout format raw local1 info'] : []),
    'defaults', '  mode http', '  timeout connect 5s', '  timeout client 30s', '  timeout server 30s', '  http-reuse always',
    ...(requestLog ? ['  log global', '  option httplog'] : []),
    'frontend cds',
    `  bind 127.0.0.1:${port} ssl crt ${d}/haproxy-server.pem ca-file ${cluster.pki.ca} verify required alpn http/1.1`,
    '  http-request deny deny_status 401 unless { req.hdr(authorization) -m beg "Bearer " }',
    "  http-request set-var(txn.alg) http_auth_bearer,jwt_header_query('$.alg')",
    "  http-request set-var(txn.iss) http_auth_bearer,jwt_payload_query('$.iss')",
    "  http-request set-var(txn.aud) http_auth_bearer,jwt_payload_query('$.aud')",
    "  http-request set-var(txn.exp) http_auth_bearer,jwt_payload_query('$.exp','int')",
    ...[0, 1, 2, 3].map((i) => `  http-request set-var(txn.r${i}) http_auth_bearer,jwt_payload_query('$.roles[${i}]')`),
    '  http-request deny deny_status 401 unless { var(txn.alg) -m str ES256 }',
    `  http-request deny deny_status 401 unless { var(txn.iss) -m str ${DEV_ISSUER} }`,
    `  http-request deny deny_status 401 unless { var(txn.aud) -m str ${DEV_AUDIENCE} }`,
    `  http-request deny deny_status 401 unless { http_auth_bearer,jwt_verify(txn.alg,"${d}/issuer-pub.pem") -m int 1 }`,
    '  http-request set-var(txn.now) date()',
    '  http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }',
    `  http-request deny deny_status 403 unless ${[0, 1, 2, 3].map((i) => `{ var(txn.r${i}) -m str clinician }`).join(' || ')}`,
    '  default_backend node',
    'backend node',
    `  server n0 127.0.0.1:${node.ports.rest} ssl verify required ca-file ${cluster.pki.ca} crt ${d}/haproxy-client.pem sni str(node-0.cdsgate.local) verifyhost node-0.cdsgate.local alpn http/1.1`,
    '',
  ].join('\n');
  writeFileSync(join(d, 'haproxy.cfg'), haproxyConfig(haproxyPort, false));
  const haproxyLoggedPort = await freePort();
  writeFileSync(join(d, 'haproxy-logged.cfg'), haproxyConfig(haproxyLoggedPort, true));
  haproxy = spawn('haproxy', ['-f', join(d, 'haproxy.cfg'), '-db'], { stdio: ['ignore', 'ignore', 'inherit'] });
  haproxyLogged = spawn('haproxy', ['-f', join(d, 'haproxy-logged.cfg'), '-db'], { stdio: ['ignore', 'pipe', 'inherit'] });
  // Counted, so the report shows the lines were written.
  let haproxyLogLines = 0;
  haproxyLogged.stdout!.on('data', (chunk: Buffer) => { for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) haproxyLogLines++; });

  // The Node floor: the gateway's framework, TLS and HTTP client with none of its work.
  floor = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'lib', 'node-floor.ts'), String(node.ports.rest), 'node-0.cdsgate.local',
    cluster.pki.gatewayServer.cert, cluster.pki.gatewayServer.key, cluster.pki.ca, cluster.pki.gatewayClient.cert, cluster.pki.gatewayClient.key], { stdio: ['ignore', 'pipe', 'inherit'] });
  const floorPort = await new Promise<number>((resolve, reject) => {
    createInterface({ input: floor!.stdout! }).on('line', (line) => {
      try { const m = JSON.parse(line) as { ports?: { rest?: number } }; if (m.ports?.rest) resolve(m.ports.rest); } catch { /* not its ready line */ }
    });
    floor!.once('exit', (code) => reject(new Error(`the Node floor proxy exited with code ${code}`)));
  });

  const tokens = await Promise.all(Array.from({ length: tokenCount }, (_, i) => cluster.token(['clinician'], { subject: `bench-user-${i}`, ttlSeconds: 3600 })));
  const body = NEWS2_REST_BODY, grpcRequest = NEWS2_GRPC_REQUEST;
  const rest = (port: number, identity: { cert: string; key: string }, withToken: boolean): Target => ({
    port, path: '/v2/models/news2/infer', identity, ca: cluster.pki.ca, body, ...(withToken ? { token: tokens[0], tokens } : {}),
  });
  const grpcTarget = (port: number, identity: { cert: string; key: string }, serverName: string, withToken: boolean) =>
    ({ port, ca: cluster.pki.ca, identity, serverName, tokens: withToken ? tokens : [], request: grpcRequest });

  // Every path answers before anything is measured (HAProxy needs a moment to listen).
  for (const port of [haproxyPort, haproxyLoggedPort]) {
    for (let i = 0; i < 100 && !(await new Promise<boolean>((r) => { const s = connect(port, '127.0.0.1', () => { s.destroy(); r(true); }).on('error', () => r(false)); })); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const probe = await httpsCall(port, '/v2/models/news2/infer', { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token: tokens[0], body });
    if (probe.status !== 200) throw new Error(`HAProxy path is not serving: ${probe.status} ${probe.body.slice(0, 200)}`);
  }

  /** `admin`: the admin port of a gateway that syncs its audit log, whose sync figures the report gives for the row. */
  interface Row extends Placed {
    name: string; kind: 'rest' | 'grpc'; pids: Array<number | undefined>; proxyPid?: number; admin?: number;
    /** Only at one connection (the paced rows). */
    oneConnectionOnly?: boolean;
    run: (run: number, connections: number, seconds: number) => Promise<Figures>;
  }
  /**
   * How often a proxy's requests reached the node at one connection: 1,000 ÷ its req/s in the latest round that
   * measured it, in ms (2 ms before any has). The paced rows call the node directly that often.
   */
  const paceBehind = (proxy: string): number => {
    const last = samples.filter((x) => x.connections === 1 && x.run > 0 && x.target === proxy).at(-1);
    return last && last.rps > 0 ? 1000 / last.rps : 2;
  };
  const paced = (name: string, proxy: string): Row => ({
    name, kind: 'rest', pids: [node.child.pid], oneConnectionOnly: true, place: 'last',
    run: (r, c, s) => measure(name, r, { ...rest(node.ports.rest!, cluster.pki.gatewayClient, false), intervalMs: paceBehind(proxy) }, s, c),
  });
  const allRows: Row[] = [
    { name: 'node REST directly', kind: 'rest', pids: [node.child.pid], place: 'first', run: (r, c, s) => measure('node REST directly', r, rest(node.ports.rest!, cluster.pki.gatewayClient, false), s, c) },
    { name: 'node gRPC directly', kind: 'grpc', pids: [node.child.pid], place: 'first', run: (r, c, s) => grpcLoad('node gRPC directly', r, grpcTarget(node.ports.grpc!, cluster.pki.gatewayClient, 'node-0.cdsgate.local', false), s, c) },
    { name: 'HAProxy → node REST', kind: 'rest', pids: [haproxy.pid, node.child.pid], proxyPid: haproxy.pid, run: (r, c, s) => measure('HAProxy → node REST', r, rest(haproxyPort, cluster.pki.apps.ehr, true), s, c) },
    { name: HAPROXY_LOGGED, kind: 'rest', pids: [haproxyLogged.pid, node.child.pid], proxyPid: haproxyLogged.pid, run: (r, c, s) => measure(HAPROXY_LOGGED, r, rest(haproxyLoggedPort, cluster.pki.apps.ehr, true), s, c) },
    { name: FLOOR, kind: 'rest', pids: [floor.pid, node.child.pid], proxyPid: floor.pid, run: (r, c, s) => measure(FLOOR, r, rest(floorPort, cluster.pki.apps.ehr, false), s, c) },
    { name: 'cdsgate REST (audit fsync)', kind: 'rest', pids: [cluster.gateway.child.pid, node.child.pid], proxyPid: cluster.gateway.child.pid, admin: cluster.gateway.ports.admin, run: (r, c, s) => measure('cdsgate REST (audit fsync)', r, rest(cluster.gateway.ports.rest!, cluster.pki.apps.ehr, true), s, c) },
    { name: UNCOALESCED, kind: 'rest', pids: [uncoalesced.child.pid, node.child.pid], proxyPid: uncoalesced.child.pid, admin: uncoalesced.ports.admin, run: (r, c, s) => measure(UNCOALESCED, r, rest(uncoalesced!.ports.rest!, cluster.pki.apps.ehr, true), s, c) },
    { name: 'cdsgate REST, node via gRPC (audit fsync)', kind: 'rest', pids: [viaGrpc.child.pid, node.child.pid], proxyPid: viaGrpc.child.pid, admin: viaGrpc.ports.admin, run: (r, c, s) => measure('cdsgate REST, node via gRPC (audit fsync)', r, rest(viaGrpc!.ports.rest!, cluster.pki.apps.ehr, true), s, c) },
    { name: 'cdsgate REST (no fsync)', kind: 'rest', pids: [noFsync.child.pid, node.child.pid], proxyPid: noFsync.child.pid, run: (r, c, s) => measure('cdsgate REST (no fsync)', r, rest(noFsync!.ports.rest!, cluster.pki.apps.ehr, true), s, c) },
    // Last in every round (roundOrder), after the rows whose pace they take, so each round's pace comes from that round.
    paced(PACED_HAPROXY, 'HAProxy → node REST'),
    paced(PACED_CDSGATE, 'cdsgate REST (audit fsync)'),
    ...(multi ? [{ name: `cdsgate REST (${workerCount} workers, audit fsync)`, kind: 'rest' as const, pids: [multi.child.pid, node.child.pid], proxyPid: multi.child.pid, admin: multi.ports.admin, run: (r: number, c: number, s: number) => measure(`cdsgate REST (${workerCount} workers, audit fsync)`, r, rest(multi!.ports.rest!, cluster.pki.apps.ehr, true), s, c) }] : []),
    ...(grpcDoor && grpcDoorNoFsync ? [
      { name: 'cdsgate gRPC (audit fsync)', kind: 'grpc' as const, pids: [grpcDoor.child.pid, node.child.pid], proxyPid: grpcDoor.child.pid, admin: grpcDoor.ports.admin, run: (r: number, c: number, s: number) => grpcLoad('cdsgate gRPC (audit fsync)', r, grpcTarget(grpcDoor!.ports.grpc!, cluster.pki.apps.ehr, 'localhost', true), s, c) },
      { name: 'cdsgate gRPC (no fsync)', kind: 'grpc' as const, pids: [grpcDoorNoFsync.child.pid, node.child.pid], proxyPid: grpcDoorNoFsync.child.pid, run: (r: number, c: number, s: number) => grpcLoad('cdsgate gRPC (no fsync)', r, grpcTarget(grpcDoorNoFsync!.ports.grpc!, cluster.pki.apps.ehr, 'localhost', true), s, c) },
    ] : []),
  ];
  const rows = allRows.filter((row) => !values.only || row.kind === values.only || row.name.startsWith('HAProxy'));

  /** Audit syncs during a run of a row with fsync: how many records each served, how long one took, and where they ran. */
  interface AuditSyncs { recordsPerSync: number; meanSyncMs: number; poolShare: number }
  interface Sample extends Figures { connections: number; proxyCpuUs: number; nodeCpuUs: number; auditSyncs?: AuditSyncs; requestsPerNodeCall?: number }
  const samples: Sample[] = [];
  // Warm-up: JIT, TLS session caches, token cache. Several short waves, each with new connections: V8 settles its
  // compiled code for Node's socket and stream handling only after a few waves of connections opening and closing
  // (deoptimisations counted with --trace-deopt in the gateway, 3 s waves at 32 connections: 3, 18, 4, 25, 0, 1, 1, 0),
  // and a long-running gateway or node has long since seen them. HAProxy, compiled ahead of time, is warmed the same.
  const rowsAt = (c: number) => rows.filter((row) => c === 1 || !row.oneConnectionOnly);
  for (let wave = 0; wave < warmupWaves; wave++) for (const c of connectionCounts) for (const row of rowsAt(c)) await row.run(0, c, warmupSeconds);
  /** The order the rows ran in, per round and connection count (the report's JSON keeps it). */
  const orders: Array<{ round: number; connections: number; rows: string[] }> = [];
  for (let round = 1; round <= rounds; round++) {
    for (const c of connectionCounts) {
      // A different order of the proxy rows every round (lib/round-order.ts says why), so none always follows the same row.
      const order = roundOrder(rowsAt(c), round);
      orders.push({ round, connections: c, rows: order.map((row) => row.name) });
      for (const row of order) {
        if (prewarmSeconds > 0) await row.run(0, c, prewarmSeconds);
        const totalsBefore = row.admin ? await gatewayTotals(row.admin) : undefined;
        const proxyBefore = processCpuMicros(row.proxyPid), nodeBefore = processCpuMicros(node.child.pid);
        const f = await row.run(round, c, seconds);
        const perRequest = (before: number, pid: number | undefined) => Math.round((processCpuMicros(pid) - before) / Math.max(1, f.requests));
        const proxyCpuUs = row.proxyPid ? perRequest(proxyBefore, row.proxyPid) : NaN, nodeCpuUs = perRequest(nodeBefore, node.child.pid);
        const totalsAfter = totalsBefore ? await gatewayTotals(row.admin!) : undefined;
        const auditSyncs = totalsBefore && totalsAfter ? syncFigures(totalsBefore.auditSyncs, totalsAfter.auditSyncs, f.requests) : undefined;
        // Requests per node call in the run, for a gateway that coalesces (its histogram counts only coalesced models).
        const callsBefore = totalsBefore?.nodeCalls, callsAfter = totalsAfter?.nodeCalls;
        const requestsPerNodeCall = callsBefore && callsAfter && callsAfter.count > callsBefore.count ? (callsAfter.requests - callsBefore.requests) / (callsAfter.count - callsBefore.count) : undefined;
        samples.push({ ...f, connections: c, proxyCpuUs, nodeCpuUs, ...(auditSyncs ? { auditSyncs } : {}), ...(requestsPerNodeCall ? { requestsPerNodeCall } : {}) });
        console.log(`round ${round}, ${c} conn: ${row.name}: ${f.rps} req/s, p50 ${f.p50} ms, p99 ${f.p99} ms, non-2xx ${f.non2xx}, errors ${f.errors}`);
      }
    }
  }

  /** Cores the proxy and the node kept busy together during a run: req/s × their CPU per request. */
  const busyCores = (x: Sample): number => (Number.isFinite(x.proxyCpuUs) ? x.rps * (x.proxyCpuUs + x.nodeCpuUs) / 1e6 : NaN);
  const table: string[] = [];
  const summary: Array<Record<string, unknown>> = [];
  for (const c of connectionCounts) {
    table.push('', `### ${c} connection${c === 1 ? '' : 's'}`, '', '| path | req/s | p50 ms | p99 ms | proxy CPU µs/req | node CPU µs/req | proxy + node cores | non-2xx | errors |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const row of rowsAt(c)) {
      const s = samples.filter((x) => x.target === row.name && x.connections === c);
      const m = { path: row.name, connections: c, rps: median(s.map((x) => x.rps)), p50: median(s.map((x) => x.p50)), p99: median(s.map((x) => x.p99)), proxyCpuUs: median(s.map((x) => x.proxyCpuUs)), nodeCpuUs: median(s.map((x) => x.nodeCpuUs)), busyCores: median(s.map(busyCores)), non2xx: s.reduce((n, x) => n + x.non2xx, 0), errors: s.reduce((n, x) => n + x.errors, 0) };
      summary.push(m);
      table.push(`| ${row.name} | ${m.rps} | ${m.p50} | ${m.p99} | ${Number.isNaN(m.proxyCpuUs) ? '–' : m.proxyCpuUs} | ${m.nodeCpuUs} | ${Number.isNaN(m.busyCores) ? '–' : m.busyCores.toFixed(2)} | ${m.non2xx} | ${m.errors} |`);
    }
    // Ratios measured in one run: per round, then the median.
    const ratio = (of: string, metric: 'rps' | 'p99' | 'p50' | 'proxyCpuUs') => {
      const per = Array.from({ length: rounds }, (_, i) => {
        const a = samples.find((x) => x.target === of && x.connections === c && x.run === i + 1);
        const b = samples.find((x) => x.target === 'HAProxy → node REST' && x.connections === c && x.run === i + 1);
        return a && b ? a[metric] / b[metric] : NaN;
      }).filter(Number.isFinite);
      return per.length ? Number(median(per).toFixed(2)) : NaN;
    };
    table.push('', '| ÷ HAProxy (median of per-round ratios) | req/s | p50 | p99 | proxy CPU per request |', '| --- | --- | --- | --- | --- |');
    for (const name of rows.map((r) => r.name).filter((n) => n.startsWith('cdsgate REST') || n === FLOOR || n === HAPROXY_LOGGED)) {
      const r = { path: name, connections: c, rps: ratio(name, 'rps'), p50: ratio(name, 'p50'), p99: ratio(name, 'p99'), cpu: ratio(name, 'proxyCpuUs') };
      summary.push({ ratioToHaproxy: r });
      table.push(`| ${name} | ${r.rps}× | ${r.p50}× | ${r.p99}× | ${r.cpu}× |`);
    }
    // Under load, on a machine whose cores the proxy, the node and the load generator share, the proxy and the node
    // together keep about the same number of cores busy whichever proxy it is (the "proxy + node cores" column), so
    // req/s is about those cores ÷ (proxy + node CPU per request): what 0.8× HAProxy's req/s would take of the gateway
    // follows. Not at one connection, where a request's latency, not CPU, sets the req/s.
    /** A row's medians at this connection count (the table's figures). */
    const figuresOf = (name: string) => summary.find((x) => x.path === name && x.connections === c) as { p50: number; rps: number; proxyCpuUs: number; nodeCpuUs: number; busyCores: number } | undefined;
    const direct = figuresOf('node REST directly'), gw = figuresOf('cdsgate REST (audit fsync)'), hp = figuresOf('HAProxy → node REST');
    // Only while cdsgate serves less than that: above it, the figure answers no question.
    if (c > 1 && gw && hp && Number.isFinite(gw.busyCores) && ratio('cdsgate REST (audit fsync)', 'rps') < 0.8) {
      const neededUs = Math.round(gw.busyCores / (0.8 * hp.rps) * 1e6 - gw.nodeCpuUs);
      summary.push({ gatewayCpuUsForFourFifthsOfHaproxyRps: { connections: c, busyCores: gw.busyCores, neededUs, timesHaproxy: Number((neededUs / hp.proxyCpuUs).toFixed(2)) } });
      table.push('', `At the ${gw.busyCores.toFixed(2)} cores that cdsgate and the node kept busy here, 0.8× HAProxy's req/s would need the gateway at about ${neededUs} µs of CPU per request (${(neededUs / hp.proxyCpuUs).toFixed(2)}× HAProxy's).`);
    }
    // What the durable record cost in syncs: the rows with fsync, medians over rounds.
    const syncRows = rows.filter((row) => row.admin);
    if (syncRows.length) {
      table.push('', '| audit syncs (rows with fsync, median over rounds) | records per sync | mean sync ms | on the thread pool |', '| --- | --- | --- | --- |');
      for (const row of syncRows) {
        const s = samples.filter((x) => x.target === row.name && x.connections === c && x.auditSyncs).map((x) => x.auditSyncs!);
        if (!s.length) continue;
        const a = { path: row.name, connections: c, recordsPerSync: median(s.map((x) => x.recordsPerSync)), meanSyncMs: median(s.map((x) => x.meanSyncMs)), poolShare: median(s.map((x) => x.poolShare)) };
        summary.push({ auditSyncs: a });
        table.push(`| ${row.name} | ${a.recordsPerSync.toFixed(1)} | ${a.meanSyncMs.toFixed(2)} | ${(a.poolShare * 100).toFixed(0)}% |`);
      }
    }
    const coalescing = rows.map((row) => ({ row, s: samples.filter((x) => x.target === row.name && x.connections === c && x.requestsPerNodeCall) })).filter((x) => x.s.length);
    if (coalescing.length) {
      table.push('', '| coalescing (median over rounds) | requests per node call |', '| --- | --- |');
      for (const { row, s } of coalescing) {
        const perCall = median(s.map((x) => x.requestsPerNodeCall!));
        summary.push({ coalescing: { path: row.name, connections: c, requestsPerNodeCall: perCall } });
        table.push(`| ${row.name} | ${perCall.toFixed(1)} |`);
      }
    }
    if (direct && gw && hp) table.push('', `Added at p50 over the node directly: cdsgate ${(gw.p50 - direct.p50).toFixed(2)} ms, HAProxy ${(hp.p50 - direct.p50).toFixed(2)} ms ${c === 1 ? '(exact: one sequential client)' : '(autocannon rounds REST latencies to 1 ms)'}.`);
    // The same, over the node called at each proxy's pace: what the proxy adds itself, the node's slowdown at that pace set apart.
    const gwPace = figuresOf(PACED_CDSGATE), hpPace = figuresOf(PACED_HAPROXY);
    if (c === 1 && direct && gw && hp && gwPace && hpPace) {
      const added = { cdsgate: gw.p50 - gwPace.p50, haproxy: hp.p50 - hpPace.p50, nodeAtCdsgatePace: gwPace.p50 - direct.p50, nodeAtHaproxyPace: hpPace.p50 - direct.p50 };
      summary.push({ addedOverPacedNode: { connections: c, ...added } });
      table.push('', `Added at p50 over the node called directly at the same pace (the paced rows): cdsgate ${added.cdsgate.toFixed(2)} ms, HAProxy ${added.haproxy.toFixed(2)} ms. At those paces the node's own p50 was ${added.nodeAtCdsgatePace.toFixed(2)} and ${added.nodeAtHaproxyPace.toFixed(2)} ms above its back-to-back p50.`);
    }
  }

  const svg = plot(summary.filter((x) => typeof x.rps === 'number' && x.path !== undefined) as Array<{ path: string; connections: number; rps: number; p99: number }>);
  // One report per token count, so the one-token and the many-token runs can both be kept.
  const reportName = (tokenCount === 1 ? 'peers' : `peers-${tokenCount}-tokens`) + (tokenCacheEntries === undefined ? '' : `-token-cache-${tokenCacheEntries}`)
    + (slowSyncMicros === undefined ? '' : `-slow-sync-${slowSyncMicros}us`);
  writeFileSync(join(process.cwd(), 'load-tests', 'reports', `${reportName}.svg`), svg);
  writeReport(reportName, { benchmark: 'peers', date: new Date().toISOString(), warmupWaves, warmupSeconds, prewarmSeconds, rounds, seconds, connections: connectionCounts, tokens: tokenCount, tokenCacheEntries: tokenCacheEntries ?? 'configuration default', slowSyncMicros, machine: { cpus: cpus().length, node: process.version }, haproxyLogLines, orders, summary, samples }, [
    '# cdsgate against HAProxy, in front of the same node (news2)', '',
    `${new Date().toISOString()}; ${warmupWaves} warm-up waves × ${warmupSeconds} s, then ${rounds} interleaved rounds × ${seconds} s per row (the node's rows first, the paced rows last, the others in a different order each round)${prewarmSeconds > 0 ? `, each run after ${prewarmSeconds} s of the same load, discarded` : ''}; ${tokenCount} distinct token${tokenCount === 1 ? '' : 's'}${tokenCacheEntries === undefined ? '' : tokenCacheEntries === 0 ? ', cdsgate\'s verified-token cache off (every token verified on every request, as HAProxy does)' : `, cdsgate's verified-token cache ${tokenCacheEntries} tokens`}; ${cpus().length} cores, everything on 127.0.0.1; `
    + 'HAProxy checks mTLS, the ES256 signature, iss, aud, exp and the role; cdsgate also writes the audit record, redacts, applies policy and routes.'
    + (slowSyncMicros === undefined ? '' : ` Every audit sync waited ${slowSyncMicros} µs more, one at a time (--slow-sync-us: a disk that syncs slowly).`),
    ...table, '', `HAProxy's request log (the "${HAPROXY_LOGGED}" row) wrote ${haproxyLogLines} lines.`, '', `![req/s and p99 per path](${reportName}.svg)`, '',
  ].join('\n'));
} finally {
  haproxy?.kill();
  haproxyLogged?.kill();
  floor?.kill();
  for (const gateway of extraGateways) await stopProcess(gateway);
  await cluster.stop();
}

/** Two bar charts side by side: req/s and p99 per path, one colour per connection count. */
function plot(rows: Array<{ path: string; connections: number; rps: number; p99: number }>): string {
  const paths = [...new Set(rows.map((r) => r.path))];
  const conns = [...new Set(rows.map((r) => r.connections))];
  const colours = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759'];
  const panel = (metric: 'rps' | 'p99', x0: number, title: string) => {
    const max = Math.max(...rows.map((r) => r[metric]), 1);
    const bars = paths.flatMap((p, i) => conns.map((c, j) => {
      const r = rows.find((x) => x.path === p && x.connections === c);
      const w = r ? (r[metric] / max) * 260 : 0;
      const y = 40 + i * 44 + j * 14;
      return `<rect x="${x0 + 170}" y="${y}" width="${w.toFixed(1)}" height="12" fill="${colours[j % colours.length]}"/><text x="${x0 + 174 + w}" y="${y + 10}" font-size="10">${r ? r[metric] : ''}</text>`;
    }));
    const labels = paths.map((p, i) => `<text x="${x0 + 165}" y="${52 + i * 44}" font-size="11" text-anchor="end">${p.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`);
    return `<text x="${x0 + 170}" y="24" font-size="13" font-weight="bold">${title}</text>${labels.join('')}${bars.join('')}`;
  };
  const legend = conns.map((c, j) => `<rect x="${20 + j * 120}" y="${60 + paths.length * 44}" width="12" height="12" fill="${colours[j % colours.length]}"/><text x="${36 + j * 120}" y="${70 + paths.length * 44}" font-size="11">${c} connection${c === 1 ? '' : 's'}</text>`);
  const height = 90 + paths.length * 44;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="980" height="${height}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${panel('rps', 0, 'requests per second')}${panel('p99', 490, 'p99 latency (ms)')}${legend.join('')}</svg>\n`;
}

/** A run's syncs from the counters before and after it (requests: the run's answered requests, one record each). */
function syncFigures(before: AuditSyncTotals, after: AuditSyncTotals, requests: number) {
  const count = after.count - before.count;
  return count > 0
    ? { recordsPerSync: requests / count, meanSyncMs: ((after.seconds - before.seconds) / count) * 1000, poolShare: (after.pool - before.pool) / count }
    : { recordsPerSync: NaN, meanSyncMs: NaN, poolShare: NaN };
}
