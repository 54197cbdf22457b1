#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadGatewayConfig, loadNodeConfig } from '../config/load.js';
import { createLogger, type Logger } from '../phi/logger.js';
import { ProviderError } from '../node/provider-error.js';

const HELP: Record<string, string> = {
  main: `cdsgate — mTLS inference gateway for clinical decision support

Usage: cdsgate <command> [options]

Commands:
  start     development mode: PKI, gateway and two nodes on loopback
  gateway   run the gateway            (cdsgate gateway --config FILE)
  node      run an inference node      (cdsgate node --config FILE)
  certs     generate the development PKI and token issuer key
  token     mint a development JWT
  infer     call a model over the gRPC door with a KServe JSON body
  audit     verify the audit log, or export it as FHIR AuditEvents
  phi       de-identify text or FHIR with the gateway's redactor
  gpu-check prove the GPU path on this host (providers, outputs, timings, gateway)

Run "cdsgate <command> --help" for a command's options.`,
  gateway: `Usage: cdsgate gateway --config FILE

Runs the gateway: the REST and gRPC doors (mTLS only), authentication,
authorization and routing to the nodes in FILE. Metrics on the admin port.`,
  node: `Usage: cdsgate node --config FILE

Runs one inference node (one per GPU): KServe v2 over gRPC and REST (mTLS,
gateway identity only), sessions in worker threads.`,
  certs: `Usage: cdsgate certs [--out DIR] [--nodes N] [--force]
       cdsgate certs revoke NAME [--out DIR]
       cdsgate certs renew NAME [--out DIR]

Generates a development PKI and a development token issuer into DIR
(default certs/dev, git-ignored): root CA, gateway server and client
certificates, N node certificates (default 3), two application client
certificates, an untrusted CA with a client certificate, and an ES256 issuer
key with its JWKS. Existing files are kept unless --force is given.

revoke NAME adds the certificate DIR/NAME.pem (e.g. app-ehr) to the CA's
revocation list DIR/crl.pem and re-signs it. Gateways and nodes whose
tls.crl names that file refuse the certificate from the next handshake,
within about a second, without a restart.

renew NAME issues DIR/NAME.pem again with a new key (same names and
purpose), as a certificate manager would. Gateways and nodes serving or
trusting files that changed reload them within about a second.`,
  token: `Usage: cdsgate token --sub SUBJECT --roles R1,R2 [--ttl SECONDS] [--aud AUDIENCE]
                     [--key FILE] [--bind-cert PEM]
       cdsgate token --ehr --aud SERVICE_URL [--key FILE]

Mints a development JWT signed by the development issuer key
(default certs/dev/issuer-private.jwk.json). --bind-cert binds the token to a
client certificate (RFC 8705 cnf.x5t#S256). Prints the token.
--ehr mints a CDS Hooks client JWT instead, as the development EHR signs it
(ES384, default key certs/dev/ehr-private.jwk.json): aud is the exact CDS
service URL, jti fresh (single use), at most 5 minutes.`,
  infer: `Usage: cdsgate infer --address HOST:PORT --model NAME --body JSON
                     --ca PEM --cert PEM --key PEM --token JWT
                     [--server-name NAME] [--timeout-ms MS]

Sends a KServe v2 JSON inference request (the REST door's body) over the gRPC
door with raw tensors, presenting the client certificate and token, and
prints the result as KServe JSON. Exit code 1 with the gRPC status on failure.`,
  audit: `Usage: cdsgate audit verify [--public-key PEM] [--heads FILE] FILE|DIR...
       cdsgate audit export --format fhir FILE|DIR...

verify  checks the whole hash chain, every checkpoint signature and the signed
        heads (heads.jsonl beside the log), and names the first bad record:
        edited, deleted, reordered, inserted or truncated. Exit 0 when the log
        verifies (warnings are printed), 1 when it does not.
        --public-key: the gateway's Ed25519 public key (PEM) to trust; without
        it, signatures are checked against the key recorded in the log.
export  writes one FHIR R4 AuditEvent (IHE BALP shape) per request record as
        NDJSON on standard output.
A DIR stands for its audit-NNNNNN.jsonl files, in order.`,
  phi: `Usage: cdsgate phi redact [--fhir] [--key-file FILE --key-id ID] [--ner DIR --ner-sha256 HEX [--ner-cased]]

Reads JSON Lines on standard input and writes them de-identified:
  text  (default) each line {"id", "text"} → {"id", "text", "spans": [{"start", "end", "type"}]},
        the text with typed placeholders ([NAME], [DATE], …), span offsets into the original;
  --fhir each line a FHIR R4 resource or Bundle → the redacted resource (names, telecom,
        photos removed; dates to the year; ZIP to three digits; free text scrubbed).
With --key-file (base64 HMAC key, as the gateway's) identifier values and ids become
keyed pseudonyms; without it they are removed. A line that is not valid JSON is an
error naming its line number.
--ner DIR adds a token-classification ONNX model's spans to the rules' and the tagger's
(DIR/model.onnx pinned by --ner-sha256, DIR/vocab.txt WordPiece, DIR/labels.json; uncased
unless --ner-cased). Nothing is downloaded.`,
  start: `Usage: cdsgate start [--provider auto|cuda|webgpu|cpu] [--devices 0,1]

Development mode: creates the development PKI and keys if missing, starts two
nodes and the gateway on loopback, waits until they are ready and prints a
working curl command (and its gRPC equivalent) for the NEWS2 model.
Ctrl-C stops everything.
  --provider  every node's executionProvider (default auto: CUDA if usable, else CPU)
  --devices   the GPU of node 0 and node 1 (default 0,1; on a one-GPU host 0,0)`,
  'gpu-check': `Usage: cdsgate gpu-check [--models DIR] [--device N] [--seconds S] [--out DIR] [--no-gateway]

Proves the GPU path on this host: prints the GPU, the Vulkan drivers and the
onnxruntime provider libraries (and which of their shared libraries are
missing); creates sessions for news2 and cxr-loadtest on every provider that
works here (cuda, webgpu) and compares their outputs with the CPU provider's
(news2 exactly, the CNN within 1e-3); times batch sizes 1, 8, 32 and 64 on
each provider; then runs "cdsgate start" with both nodes on the first working
GPU provider and sends requests through the gateway, checking the answers and
each node's execution_provider metric. Writes gpu-check.json and gpu-check.md
to --out (default load-tests/reports).
Exit 0: a GPU provider works and every check passed; 1: a check failed;
4: no GPU provider could be used here (the report says why).
  --device   CUDA device id (default 0)
  --seconds  time spent per timing case (default 1)`,
};

function fail(message: string, code = 1): never {
  process.stderr.write(`cdsgate: ${message}\n`);
  process.exit(code);
}

function configFlag(args: string[], command: string): string {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    process.stdout.write(`${HELP[command]}\n`);
    process.exit(0);
  }
  if (!values.config) fail(`${command}: --config FILE is required\n\n${HELP[command]}`, 2);
  return values.config;
}

/** SIGTERM/SIGINT → close gracefully, then exit; a second signal exits at once. */
function onShutdown(log: Logger, close: () => Promise<void>): void {
  let closing = false;
  const handler = (signal: string) => {
    if (closing) process.exit(1);
    closing = true;
    log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => process.exit(1), 10_000);
    close().then(() => { clearTimeout(timer); log.flush(); process.exit(0); }, () => process.exit(1));
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
  // Started by `cdsgate start` (or the tests): when the supervisor goes away, so do we, cleanly.
  if (process.env.CDSGATE_SUPERVISED === '1') {
    process.stdin.on('data', () => undefined);
    process.stdin.once('end', () => handler('supervisor-exit'));
    process.stdin.once('error', () => handler('supervisor-exit'));
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${HELP.main}\n`);
    return;
  }
  switch (command) {
    case 'gateway': {
      const config = loadGatewayConfig(configFlag(args, 'gateway'));
      const { gatewayWorkerIndex, runGatewayWorker, startGatewayPrimary } = await import('../gateway/workers.js');
      const worker = gatewayWorkerIndex();
      const log = createLogger('cdsgate-gateway', config.logging.level, worker === undefined ? {} : { worker });
      if (worker !== undefined) {
        await runGatewayWorker(config, log, worker);
        return;
      }
      const { startGateway } = await import('../gateway/server.js');
      const gateway = config.gateway.workers > 1 ? await startGatewayPrimary(config, log) : await startGateway(config, log);
      // Signal handlers first: a supervisor may stop us the moment it reads the ready line, and a SIGTERM
      // before them would end the process without draining or signing the audit log's final head.
      onShutdown(log, () => gateway.close());
      log.info({ ports: gateway.ports }, 'gateway ready');
      log.flush(); // the supervisor waits for this line; the batch would send it within 100 ms anyway
      return;
    }
    case 'node': {
      const config = loadNodeConfig(configFlag(args, 'node'));
      const log = createLogger('cdsgate-node', config.logging.level, { node: config.node.id });
      const { startNode } = await import('../node/server.js');
      const node = await startNode(config, log);
      onShutdown(log, () => node.close()); // before the ready line, as for the gateway
      log.info({ ports: node.ports, executionProvider: node.provider }, 'node ready');
      log.flush(); // the supervisor waits for this line
      return;
    }
    case 'certs': {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: 'string', default: 'certs/dev' }, nodes: { type: 'string', default: '3' }, force: { type: 'boolean' }, help: { type: 'boolean' } } });
      if (values.help) return void process.stdout.write(`${HELP.certs}\n`);
      if (positionals[0] === 'renew' || positionals[0] === 'revoke') {
        const verb = positionals[0], name = positionals[1];
        if (!name || !/^[A-Za-z0-9._-]+$/.test(name)) fail(`certs ${verb}: give the certificate's name, e.g. ${verb === 'renew' ? 'gateway-server' : 'app-ehr'}\n\n${HELP.certs}`, 2);
        const { renewDevCertificate, revokeDevCertificate } = await import('../tls/dev-pki.js');
        const { join } = await import('node:path');
        const { existsSync } = await import('node:fs');
        const file = join(values.out!, `${name}.pem`);
        if (!existsSync(file)) fail(`certs ${verb}: ${file} does not exist`, 2);
        if (verb === 'renew') {
          const renewed = await renewDevCertificate(values.out!, name);
          process.stdout.write(`renewed ${name} (serial ${renewed.serialNumber}): ${renewed.cert}, ${renewed.key}\n`);
        } else {
          const revoked = await revokeDevCertificate(values.out!, file);
          process.stdout.write(`revoked ${name} (serial ${revoked.serialNumber}); CRL written to ${revoked.crl}\n`);
        }
        return;
      }
      if (positionals.length > 0) fail(`certs: unknown argument ${positionals[0]}\n\n${HELP.certs}`, 2);
      const { ensureDevMaterial } = await import('./dev-material.js');
      const dir = await ensureDevMaterial(values.out!, Number(values.nodes), Boolean(values.force));
      process.stdout.write(`development PKI and issuer key in ${dir}\n`);
      return;
    }
    case 'token': {
      const { values } = parseArgs({
        args,
        options: {
          sub: { type: 'string' }, roles: { type: 'string', default: '' }, ttl: { type: 'string', default: '900' },
          aud: { type: 'string' }, key: { type: 'string', default: 'certs/dev/issuer-private.jwk.json' },
          'bind-cert': { type: 'string' }, ehr: { type: 'boolean' }, help: { type: 'boolean' },
        },
      });
      if (values.help) return void process.stdout.write(`${HELP.token}\n`);
      if (values.ehr) {
        if (!values.aud) fail('token --ehr: --aud is required (the exact CDS service URL)', 2);
        const { mintCdsClientToken } = await import('../auth/dev-issuer.js');
        const key = values.key === 'certs/dev/issuer-private.jwk.json' ? 'certs/dev/ehr-private.jwk.json' : values.key!;
        return void process.stdout.write(`${await mintCdsClientToken(key, { audience: values.aud, ttlSeconds: Math.min(Number(values.ttl), 300) })}\n`);
      }
      if (!values.sub) fail(`token: --sub is required\n\n${HELP.token}`, 2);
      const ttl = Number(values.ttl);
      if (!Number.isInteger(ttl) || ttl <= 0) fail('token: --ttl must be a positive number of seconds', 2);
      const { mintDevToken } = await import('../auth/dev-issuer.js');
      let thumbprint: string | undefined;
      if (values['bind-cert']) {
        const { X509Certificate } = await import('node:crypto');
        const { readFileSync } = await import('node:fs');
        const { certificateThumbprint } = await import('../tls/peer.js');
        thumbprint = certificateThumbprint(new X509Certificate(readFileSync(values['bind-cert'])).raw);
      }
      const token = await mintDevToken(values.key!, {
        subject: values.sub, roles: values.roles!.split(',').filter(Boolean), ttlSeconds: ttl,
        ...(values.aud ? { audience: values.aud } : {}), ...(thumbprint ? { certificateThumbprint: thumbprint } : {}),
      });
      process.stdout.write(`${token}\n`);
      return;
    }
    case 'infer': {
      const { values } = parseArgs({
        args,
        options: {
          address: { type: 'string' }, model: { type: 'string' }, body: { type: 'string' }, ca: { type: 'string' },
          cert: { type: 'string' }, key: { type: 'string' }, token: { type: 'string' },
          'server-name': { type: 'string', default: 'localhost' }, 'timeout-ms': { type: 'string', default: '10000' }, help: { type: 'boolean' },
        },
      });
      if (values.help) return void process.stdout.write(`${HELP.infer}\n`);
      const missing = (['address', 'model', 'body', 'ca', 'cert', 'key', 'token'] as const).filter((k) => !values[k]);
      if (missing.length) fail(`infer: missing ${missing.map((k) => `--${k}`).join(', ')}\n\n${HELP.infer}`, 2);
      const { inferOverGrpc } = await import('./infer.js');
      process.stdout.write(`${await inferOverGrpc({
        address: values.address!, serverName: values['server-name']!, ca: values.ca!, cert: values.cert!, key: values.key!,
        token: values.token!, model: values.model!, body: values.body!, timeoutMs: Number(values['timeout-ms']),
      })}\n`);
      return;
    }
    case 'audit': {
      const [action, ...rest] = args;
      const { values, positionals } = parseArgs({
        args: rest, allowPositionals: true,
        options: { 'public-key': { type: 'string' }, heads: { type: 'string' }, format: { type: 'string', default: 'fhir' }, help: { type: 'boolean' } },
      });
      if (values.help || !action || action === '--help') return void process.stdout.write(`${HELP.audit}\n`);
      const { statSync, readFileSync } = await import('node:fs');
      const { auditChains, auditFiles } = await import('../audit/log.js');
      // A DIR is one chain, or (a gateway with several workers) one chain per worker-N segment.
      const chains = positionals.flatMap((p): Array<{ dir: string | undefined; files: string[] }> => (statSync(p).isDirectory() ? auditChains(p) : [{ dir: undefined, files: [p] }]));
      const files = chains.flatMap((c) => c.files);
      if (files.length === 0) fail(`audit ${action}: no audit files given\n\n${HELP.audit}`, 2);
      if (action === 'verify') {
        const { verifyAuditLog } = await import('../audit/verify.js');
        const { loadVerifyKey } = await import('../audit/chain.js');
        const { join } = await import('node:path');
        const { existsSync } = await import('node:fs');
        let bad = false;
        for (const chain of chains) {
          const heads = values.heads ?? (chain.dir && chains.length > 1 && existsSync(join(chain.dir, 'heads.jsonl')) ? join(chain.dir, 'heads.jsonl') : undefined);
          const report = verifyAuditLog(chain.files, {
            ...(values['public-key'] ? { publicKey: loadVerifyKey(readFileSync(values['public-key'])) } : {}),
            ...(heads ? { headsFile: heads } : {}),
            // A directory of a running gateway may rotate while it is verified.
            ...(chain.dir ? { relist: () => auditFiles(chain.dir!) } : {}),
          });
          const name = chains.length > 1 ? `${chain.dir ?? chain.files[0]}: ` : '';
          for (const w of report.warnings) process.stdout.write(`${name}warning: ${w}\n`);
          if (!report.ok) { process.stderr.write(`cdsgate: ${name}audit log does NOT verify: ${report.problem}\n`); bad = true; continue; }
          process.stdout.write(`${name}audit log verifies: ${report.records} records (0–${report.lastSeq}) in ${chain.files.length} file(s), ${report.checkpoints} signed checkpoint(s), ${report.unsignedTail} record(s) after the last one\n`);
        }
        if (bad) process.exit(1);
        return;
      }
      if (action === 'export') {
        if (values.format !== 'fhir') fail('audit export: only --format fhir is supported', 2);
        const { exportAuditEvents } = await import('../audit/fhir-export.js');
        // Workers' segments interleave in time: one stream, oldest first.
        const events = chains.flatMap((c) => [...exportAuditEvents(c.files)]);
        if (chains.length > 1) events.sort((a, b) => String((a as { recorded?: string }).recorded).localeCompare(String((b as { recorded?: string }).recorded)));
        for (const event of events) process.stdout.write(`${JSON.stringify(event)}\n`);
        return;
      }
      fail(`audit: unknown action "${action}"\n\n${HELP.audit}`, 2);
      return;
    }
    case 'phi': {
      const [action, ...rest] = args;
      const { values } = parseArgs({ args: rest, options: { fhir: { type: 'boolean' }, 'key-file': { type: 'string' }, 'key-id': { type: 'string', default: 'cli' }, ner: { type: 'string' }, 'ner-sha256': { type: 'string' }, 'ner-cased': { type: 'boolean' }, help: { type: 'boolean' } } });
      if (values.help || action !== 'redact') return void (action === 'redact' || action === '--help' || !action ? process.stdout.write(`${HELP.phi}\n`) : fail(`phi: unknown action "${action}"\n\n${HELP.phi}`, 2));
      const { redactLines } = await import('./phi-redact.js');
      if (values.ner && !/^[0-9a-f]{64}$/.test(values['ner-sha256'] ?? '')) fail('phi redact: --ner needs --ner-sha256 (the SHA-256 of DIR/model.onnx, hex)', 2);
      await redactLines(process.stdin, process.stdout, {
        fhir: Boolean(values.fhir), keyFile: values['key-file'], keyId: values['key-id']!,
        ...(values.ner ? { ner: { dir: values.ner, sha256: values['ner-sha256']!, lowercase: !values['ner-cased'] } } : {}),
      });
      return;
    }
    case 'start': {
      const { values } = parseArgs({ args, options: { provider: { type: 'string', default: 'auto' }, devices: { type: 'string' }, help: { type: 'boolean' } } });
      if (values.help) return void process.stdout.write(`${HELP.start}\n`);
      const provider = values.provider!;
      if (!['auto', 'cuda', 'webgpu', 'cpu'].includes(provider)) fail(`start: --provider must be auto, cuda, webgpu or cpu\n\n${HELP.start}`, 2);
      const devices = values.devices?.split(',').map(Number);
      if (devices && (devices.length !== 2 || !devices.every((d) => Number.isInteger(d) && d >= 0))) fail(`start: --devices takes two device ids, e.g. 0,0\n\n${HELP.start}`, 2);
      const { startDev } = await import('./start.js');
      await startDev({ provider: provider as 'auto' | 'cuda' | 'webgpu' | 'cpu', ...(devices ? { devices } : {}) });
      return;
    }
    case 'gpu-check': {
      const { values } = parseArgs({
        args,
        options: {
          models: { type: 'string' }, device: { type: 'string', default: '0' }, seconds: { type: 'string', default: '1' },
          out: { type: 'string', default: 'load-tests/reports' }, 'no-gateway': { type: 'boolean' }, help: { type: 'boolean' },
        },
      });
      if (values.help) return void process.stdout.write(`${HELP['gpu-check']}\n`);
      const device = Number(values.device);
      const seconds = Number(values.seconds);
      if (!Number.isInteger(device) || device < 0) fail('gpu-check: --device must be a device id (0, 1, …)', 2);
      if (!(seconds > 0 && seconds <= 60)) fail('gpu-check: --seconds must be between 0 and 60', 2);
      const { runGpuCheck } = await import('./gpu-check.js');
      process.exitCode = await runGpuCheck({
        ...(values.models ? { modelRepository: values.models } : {}), deviceId: device, secondsPerCase: seconds,
        outDir: values.out!, gateway: !values['no-gateway'],
      });
      return;
    }
    default:
      fail(`unknown command "${command}"\n\n${HELP.main}`, 2);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) fail(err.message, 2);
  if (err instanceof ProviderError) fail(err.message, 3);
  fail(err instanceof Error ? err.message : String(err));
});
