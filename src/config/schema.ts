import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { DATATYPES } from '../tensor/datatypes.js';
import { AEAD_CIPHERS } from '../tls/server-tls.js';
import { parseScope } from '../auth/smart-scopes.js';

/**
 * The one configuration schema. Gateway, node and model-repository files are
 * JSON validated here; paths are resolved against the file's own directory.
 */
const port = z.number().int().min(0).max(65535);
const host = z.string().min(1);
const listener = (defaultHost: string) => z.strictObject({ host: host.default(defaultHost), port });

function schemas(baseDir: string) {
  const filePath = z.string().min(1).transform((p) => resolve(baseDir, p));

  const serverTls = z.strictObject({
    cert: filePath,
    key: filePath,
    /** CA bundle that client certificates must chain to. */
    ca: filePath,
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    /** OpenSSL cipher list; the default allows AEAD suites only (no CBC, no SHA-1). */
    ciphers: z.string().min(1).default(AEAD_CIPHERS),
    /** CRL file (PEM, one or more CRLs) for client certificates; re-read within a second of changing, no restart. */
    crl: filePath.optional(),
    /** A connection whose TLS handshake is not finished by then is closed. */
    handshakeTimeoutMs: z.number().int().positive().default(5_000),
  });

  /**
   * HTTP time limits. A request whose headers have not all arrived within
   * headersTimeoutMs, or whose body has not all arrived within
   * requestTimeoutMs of its first byte, is answered 408 and its connection
   * closed. An answer that closes the connection before the body was read
   * keeps reading (and discarding) for at most lingerMs, so the client sees it.
   */
  const restLimits = {
    headersTimeoutMs: z.number().int().positive().default(5_000),
    requestTimeoutMs: z.number().int().positive().default(15_000),
    keepAliveTimeoutMs: z.number().int().positive().default(30_000),
    lingerMs: z.number().int().min(0).default(2_000),
  };

  /** Bounds on one decoded request, checked on tensor headers before any data is read or allocated. */
  const tensorLimits = z.strictObject({
    maxTensorBytes: z.number().int().positive().default(8 * 1024 * 1024),
    maxNameLength: z.number().int().min(1).max(4096).default(128),
    maxRank: z.number().int().min(1).max(64).default(16),
    maxTensors: z.number().int().min(1).max(1024).default(64),
  });
  const clientTls = z.strictObject({ cert: filePath, key: filePath, ca: filePath });

  const breaker = z.strictObject({
    /** Per-try timeout: a node slower than this is treated as failed and the request moves on (ms). */
    timeoutMs: z.number().int().positive().default(2_000),
    errorThresholdPercentage: z.number().min(1).max(100).default(50),
    volumeThreshold: z.number().int().min(0).default(5),
    resetTimeoutMs: z.number().int().positive().default(5_000),
    rollingCountTimeoutMs: z.number().int().positive().default(10_000),
  });

  const healthCheck = z.strictObject({
    intervalMs: z.number().int().positive().default(1_000),
    timeoutMs: z.number().int().positive().default(500),
    /** Consecutive passed checks before an ejected node rejoins (no flapping). */
    healthyThreshold: z.number().int().min(1).default(2),
  });

  const retryBudget = z.strictObject({
    /** Retries in flight may be at most this share of the pool's active requests (Envoy: 20%)… */
    percent: z.number().min(0).max(100).default(20),
    /** …but this many are always allowed. */
    minConcurrent: z.number().int().min(0).default(3),
  });

  const jwks = z.union([
    z.strictObject({
      file: filePath,
      /** Minimum time between re-reads of the file triggered by an unknown kid. */
      cooldownMs: z.number().int().positive().default(30_000),
    }),
    z.strictObject({
      url: z.url({ protocol: /^https$/ }),
      /** CA bundle for the JWKS server when it is not publicly trusted. */
      ca: filePath.optional(),
      cacheMaxAgeMs: z.number().int().positive().default(600_000),
      /** Minimum time between refetches triggered by an unknown kid. */
      cooldownMs: z.number().int().positive().default(30_000),
    }),
  ]);

  const asymmetricAlg = z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']);

  const issuer = z.strictObject({
    issuer: z.string().min(1),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** Keys for the issuer's JWT access tokens; may be left out for an issuer whose tokens are opaque (introspection). */
    jwks: jwks.optional(),
    /**
     * RFC 7662 token introspection, for an issuer that hands out opaque
     * (non-JWT) access tokens. At most one issuer may have it: an opaque token
     * names no issuer, and it is never sent to more than one.
     */
    introspection: z.strictObject({
      endpoint: z.url({ protocol: /^https$/ }),
      /** The gateway's own client credentials at the authorization server (client_secret_basic). */
      clientId: z.string().min(1),
      clientSecret: z.union([z.strictObject({ file: filePath }), z.strictObject({ env: z.string().min(1) })]),
      /** CA bundle for the endpoint when it is not publicly trusted. */
      ca: filePath.optional(),
      /** An answer is reused for at most this long, and never past the token's exp. */
      cacheMaxSeconds: z.number().int().min(0).max(3_600).default(60),
      timeoutMs: z.number().int().positive().default(5_000),
    }).optional(),
    algorithms: z.array(asymmetricAlg).min(1).default(['RS256', 'RS384', 'PS256', 'ES256', 'ES384', 'EdDSA']),
    /** Dot path of the roles claim, e.g. "roles" or "realm_access.roles". */
    rolesClaim: z.string().min(1).default('roles'),
    /**
     * How the roles claim is written: a JSON array of strings (the default;
     * a string is then refused, never split), or one space-delimited string.
     */
    rolesClaimFormat: z.enum(['array', 'space-delimited']).default('array'),
    clockSkewSeconds: z.number().int().min(0).max(300).default(60),
    /** Tokens older than this (by iat) are refused; iat is required. */
    maxTokenAgeSeconds: z.number().int().positive().default(3_600),
    /** Tokens whose lifetime (exp − iat) is longer than this are refused: an exp years ahead is not a credential to honour. */
    maxTokenLifetimeSeconds: z.number().int().positive().default(3_600),
    /**
     * Refuse a token whose jti was seen before (kept until its exp). Off by
     * default because OAuth access tokens are meant to be reused for many
     * calls (RFC 6750); turn it on for issuers of one-time tokens (CDS Hooks
     * client JWTs, SMART backend-services assertions). jti is then required.
     */
    replayProtection: z.boolean().default(false),
    /** When true every token must carry cnf.x5t#S256 matching the client certificate (RFC 8705). */
    requireCertificateBinding: z.boolean().default(false),
    /**
     * Where purpose of use is read from, after the IHE IUA claim
     * extensions.ihe_iua.purpose_of_use: a dot path to a code, a Coding, or a list of them.
     */
    purposeOfUseClaim: z.string().min(1).default('purpose_of_use'),
  }).refine((i) => i.jwks !== undefined || i.introspection !== undefined, { message: 'an issuer needs jwks (JWT access tokens) or introspection (opaque tokens)', path: ['jwks'] });

  const phiClass = phiClassSchema;
  const dataClass = z.enum(['identified', 'deidentified']);

  const purposeCode = z.string().regex(/^[A-Z][A-Z0-9]{1,15}$/, 'a v3-ActReason code such as TREAT');
  const modelRoute = z.strictObject({
    pool: z.string().min(1),
    /** Deny by default: only principals holding one of these roles may call the model. */
    allowRoles: z.array(z.string().min(1)).default([]),
    /** When set, a request must carry one of these purposes of use. */
    purposes: z.array(purposeCode).optional(),
    /**
     * SMART clinical scopes (v2 `patient/Observation.rs`, v1 `.read` too), any
     * one of which the token must hold. With allowRoles also listed, both are
     * required; with scopes alone, the scopes decide. A scope the token holds
     * covers one listed here when it has the same context, the same resource
     * type (or `*`), every permission letter, and no narrower query.
     */
    scopes: z.array(z.string().refine((t) => parseScope(t) !== undefined, 'a SMART clinical scope such as patient/Observation.rs')).optional(),
    /**
     * The input holding the patient's id. When access comes through a
     * patient/ scope, every value of it must equal the token's `patient`
     * claim (launch context), or the request is 403. Defaults to the model's
     * one `identifier` PHI input, when it has exactly one.
     */
    patientInput: z.string().min(1).optional(),
    /**
     * Break-the-glass: principals with one of these roles, not otherwise
     * allowed, may call the model when their purpose of use is BTG or ETREAT.
     * Every such call raises an alert and is marked in the audit log.
     */
    breakTheGlass: z.strictObject({ allowRoles: z.array(z.string().min(1)).min(1) }).optional(),
    /** Which inputs carry PHI, and how; inputs not listed carry none. */
    phiInputs: z.record(z.string().min(1), phiClass).default({}),
    /**
     * The class of data the model may receive. `deidentified`: the gateway
     * de-identifies text, FHIR and identifier inputs before forwarding.
     */
    receives: dataClass.default('identified'),
    /**
     * Hedging, off unless this is present: when the first node has not
     * answered within the pool's recent `percentile` latency for this model,
     * the same request goes to a second node; the first success wins and the
     * other call is cancelled. Hedges draw on the pool's retry budget. Each
     * hedge sends the request's data to one more node, and the audit record
     * names every node that received it.
     */
    hedging: z.strictObject({
      percentile: z.number().min(50).max(99.9).default(95),
      /** Never sooner than this (ms): below it a second copy costs more than it can save. */
      minDelayMs: z.number().int().min(0).default(2),
      /** First attempts observed before hedging starts; until then there is no p95 to go by. */
      minSamples: z.number().int().min(1).max(512).default(20),
    }).optional(),
    /**
     * Coalescing, off unless this is present: requests for this model that
     * reach the gateway together (one pass of its event loop) while a call of
     * theirs is out to a node go to that node as one call, joined along the
     * batch dimension, and the answer is split back row by row
     * (routing/coalescer.ts). Only for a model whose rows are independent, with the
     * batch dimension first in every input and output (what the node's
     * dynamic batching assumes too); at most `maxRows` rows per call, within
     * the model's maxBatchSize.
     */
    coalesce: z.strictObject({
      maxRows: z.number().int().min(2).max(4_096).default(64),
    }).optional(),
  });

  /**
   * CDS Hooks 2.0 door (on the REST listener). A service is configuration:
   * the model it runs, how FHIR Observations become the model's input row,
   * and how the outputs become cards.
   */
  const cdsClient = z.strictObject({
    /** The CDS client's `iss`. */
    issuer: z.string().min(1),
    /** Keys for the client's JWTs when they name no `jku` (or one not on the allow-list is refused). */
    jwks,
    /** `jku` URLs honoured for this issuer, exactly as the JWT names them; any other `jku` is refused. */
    jkuAllowList: z.array(z.url({ protocol: /^https$/ })).default([]),
    /** CA for the jku URLs when they are not publicly trusted. */
    jkuCa: filePath.optional(),
    /** Never none or HMAC; ES384 and RS384 are the spec's recommendation. */
    algorithms: z.array(asymmetricAlg).min(1).default(['ES384', 'RS384', 'ES256', 'RS256', 'ES512', 'RS512']),
    /** When set, the JWT's `tenant` must equal it. */
    tenant: z.string().min(1).optional(),
    clockSkewSeconds: z.number().int().min(0).max(300).default(60),
    /** exp − iat may be at most this: CDS client tokens are per call. */
    maxTokenLifetimeSeconds: z.number().int().positive().max(3_600).default(300),
    /**
     * FHIR servers this client may send (prefixes of `fhirServer`, https only).
     * The gateway fetches missing prefetch only from these: a client-named URL
     * is otherwise a way to make the gateway call anywhere.
     */
    fhirServers: z.array(z.url({ protocol: /^https$/ })).default([]),
    /** CA bundle for those FHIR servers when they are not publicly trusted. */
    fhirCa: filePath.optional(),
  });
  const loincFeature = z.strictObject({
    /** The model input column this fills (for messages and the card). */
    label: z.string().min(1),
    /** LOINC codes that carry it, on the Observation or on a component (a blood-pressure panel). */
    loinc: z.array(z.string().regex(/^\d{1,7}-\d$/)).min(1),
    /** valueQuantity: UCUM code (or unit text) → factor and offset into the model's unit. */
    units: z.record(z.string().min(1), z.strictObject({ factor: z.number().default(1), offset: z.number().default(0) })).optional(),
    /** valueCodeableConcept: code → value. */
    codes: z.record(z.string().min(1), z.number()).optional(),
    /** valueQuantity read as a flag: 1 when the value is above this, else 0 (e.g. inhaled oxygen flow > 0). */
    above: z.number().optional(),
  });
  const cdsService = z.strictObject({
    hook: z.enum(['patient-view', 'encounter-start', 'order-select', 'order-sign']),
    title: z.string().min(1),
    description: z.string().min(1),
    usageRequirements: z.string().optional(),
    /** The configured model (under `models`) it runs; its policy's scopes do not apply: the CDS client is authorised here. */
    model: z.string().min(1),
    /** Issuers allowed to call; empty: every configured CDS client. */
    allowIssuers: z.array(z.string().min(1)).default([]),
    /** FHIR types `context.userId` may name (Practitioner, PractitionerRole, Patient, RelatedPerson). */
    allowUserTypes: z.array(z.enum(['Practitioner', 'PractitionerRole', 'Patient', 'RelatedPerson'])).default(['Practitioner', 'PractitionerRole']),
    /**
     * SMART scopes, any one of which the request's fhirAuthorization.scope must
     * grant before the gateway fetches FHIR data with it (e.g. patient/Observation.rs).
     */
    fhirScopes: z.array(z.string().refine((t) => parseScope(t) !== undefined, 'a SMART clinical scope such as patient/Observation.rs')).default([]),
    /** Prefetch templates: key → FHIR query with {{context.patientId}}-style tokens. */
    prefetch: z.record(z.string().regex(/^[A-Za-z0-9_]{1,64}$/), z.string().min(1)).default({}),
    input: z.strictObject({
      tensor: z.string().min(1),
      /** Observations older than this are stale and not used. */
      maxAgeHours: z.number().positive().max(24 * 365).default(24),
      features: z.array(loincFeature).min(1),
    }),
    cards: z.strictObject({
      /** Template over outputs: {{output}} is its first value, or its label when `labels` names one. */
      summary: z.string().min(1),
      detail: z.string().optional(),
      labels: z.record(z.string().min(1), z.array(z.string())).default({}),
      /** The indicator from an output's first value (an index into `values`). */
      indicator: z.strictObject({ output: z.string().min(1), values: z.array(z.enum(['info', 'warning', 'critical'])).min(1) }),
      /** Values of that output below this index yield no card (e.g. 1: say nothing at low risk). */
      minimum: z.number().int().min(0).default(0),
      source: z.strictObject({ label: z.string().min(1), url: z.url().optional() }),
      links: z.array(z.strictObject({ label: z.string().min(1), url: z.url(), type: z.enum(['absolute', 'smart']).default('absolute') })).default([]),
      /** Missing or stale data: an info card saying what is missing, or no card. Never a score from invented values. */
      whenDataMissing: z.enum(['card', 'none']).default('card'),
    }),
  });
  const cdsHooks = z.strictObject({
    /**
     * The public base URL clients call (https://host[:port][/path]); the JWT's
     * `aud` must be this plus /cds-services[/{id}[/feedback]]. Omitted (development
     * only): https://localhost:<the REST door's port>.
     */
    baseUrl: z.url({ protocol: /^https$/ }).optional(),
    clients: z.array(cdsClient).min(1),
    services: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/), cdsService),
    /** Bounds on fetching missing prefetch from the FHIR server. */
    fhirTimeoutMs: z.number().int().positive().default(5_000),
    maxFhirResponseBytes: z.number().int().positive().default(4 * 1024 * 1024),
  });

  const gateway = z.strictObject({
    gateway: z.strictObject({
      name: z.string().min(1).default('cdsgate'),
      /**
       * Gateway processes serving the same ports (node:cluster), each with its
       * own event loop and audit chain segment (audit.dir/worker-N). Default:
       * one per core. The jti replay cache is shared through the primary;
       * admission limits, breakers and health checks are per worker.
       */
      workers: z.number().int().min(1).max(256).default(availableParallelism()),
      rest: listener('127.0.0.1').extend({ bodyLimitBytes: z.number().int().positive().default(8 * 1024 * 1024), ...restLimits }),
      grpc: listener('127.0.0.1').extend({
        maxMessageBytes: z.number().int().positive().default(8 * 1024 * 1024),
        /** A connection with no call in flight for this long is closed. */
        idleTimeoutMs: z.number().int().positive().default(300_000),
      }),
      limits: tensorLimits.default(tensorLimits.parse({})),
      admin: listener('127.0.0.1'),
      tls: serverTls,
      /** The gateway's own client identity toward nodes. */
      nodeClientTls: clientTls,
      defaultTimeoutMs: z.number().int().positive().default(10_000),
      /** Upper bound for a client's own deadline (Request-Timeout header, gRPC deadline). */
      maxTimeoutMs: z.number().int().positive().default(60_000),
      /** The REST door answers 503 while the event loop lags more than this. */
      maxEventLoopDelayMs: z.number().int().positive().default(1_000),
    }),
    auth: z.strictObject({
      issuers: z.array(issuer).min(1),
      /**
       * Verified tokens kept until they expire so that a token's signature is checked once, not on every call
       * (token-cache.ts; its key is looked up again each minute): each entry holds the token and its claims, about
       * 1 KB for a 0.5 KB token. More distinct tokens than this and the oldest go first; when the tokens in use
       * outnumber it, nearly every call is verified afresh.
       */
      tokenCacheEntries: z.number().int().min(0).max(1_000_000).default(16_384),
    }).refine((a) => a.issuers.filter((i) => i.introspection).length <= 1, { message: 'at most one issuer may use introspection: an opaque token is never sent to more than one', path: ['issuers'] }),
    nodes: z.array(z.strictObject({
      id: z.string().min(1),
      address: z.string().regex(/^[^:]+:\d+$/, 'expected host:port'),
      /** Name the node's certificate must carry (SAN), checked on every connection. */
      serverName: z.string().min(1),
      /**
       * Which KServe v2 door `address` is: `rest` (HTTP/1.1 with binary tensor
       * data, the cheaper path measured by bench:peers) or `grpc`. Triton and
       * KServe servers offer both.
       */
      protocol: z.enum(['rest', 'grpc']).default('rest'),
    })).min(1),
    pools: z.record(z.string().min(1), z.strictObject({
      nodes: z.array(z.string().min(1)).min(1),
      /** A `deidentified` pool never receives a request that carries PHI. */
      dataClass: dataClass.default('identified'),
      breaker: breaker.default(breaker.parse({})),
      healthCheck: healthCheck.default(healthCheck.parse({})),
      retryBudget: retryBudget.default(retryBudget.parse({})),
      /**
       * least-request: fewest requests in flight weighted by recent latency (a slow node is avoided, and
       * probed again as its latency record ages); round-robin: in turn (kept to measure against).
       */
      balancing: z.enum(['least-request', 'round-robin']).default('least-request'),
      /** Requests sent to the pool's nodes at once; beyond it requests wait in the queue. */
      concurrencyLimit: z.number().int().min(1).default(64),
      /** Requests that may wait; beyond it the gateway answers 503 / RESOURCE_EXHAUSTED with Retry-After at once. */
      queueSize: z.number().int().min(0).default(128),
    })),
    models: z.record(z.string().min(1), modelRoute),
    audit: z.strictObject({
      /** Folder of the hash-chained audit files and heads.jsonl. */
      dir: filePath,
      /** The gateway's Ed25519 private key (PEM) that signs checkpoints. */
      signingKey: filePath,
      checkpointIntervalMs: z.number().int().positive().default(10_000),
      rotateBytes: z.number().int().positive().default(64 * 1024 * 1024),
      rotateDaily: z.boolean().default(true),
      /** fdatasync each batch before answering. Turn off only to measure its cost. */
      fsync: z.boolean().default(true),
    }),
    phi: z.strictObject({
      /** The HMAC key for pseudonyms and input digests: base64, at least 32 bytes, from a file or an environment variable. */
      pseudonymKey: z.union([
        z.strictObject({ file: filePath, keyId: z.string().regex(/^[a-z0-9]{1,16}$/) }),
        z.strictObject({ env: z.string().min(1), keyId: z.string().regex(/^[a-z0-9]{1,16}$/) }),
      ]),
      /**
       * A token-classification ONNX model whose spans join the text redactor's
       * (phi/onnx-ner.ts): DIR/model.onnx pinned by sha256, DIR/vocab.txt, DIR/labels.json.
       * Used for the text inputs of the audit view and of de-identified requests.
       */
      ner: z.strictObject({
        dir: filePath,
        sha256: z.string().regex(/^[0-9a-f]{64}$/),
        lowercase: z.boolean().default(true),
        maxLength: z.number().int().min(8).max(4096).default(512),
      }).optional(),
    }),
    logging: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).default({ level: 'info' }),
    cdsHooks: cdsHooks.optional(),
  }).superRefine((cfg, ctx) => {
    for (const [id, service] of Object.entries(cfg.cdsHooks?.services ?? {})) {
      if (!cfg.models[service.model]) ctx.addIssue({ code: 'custom', path: ['cdsHooks', 'services', id, 'model'], message: `unknown model "${service.model}"` });
      const issuers = new Set(cfg.cdsHooks!.clients.map((c) => c.issuer));
      service.allowIssuers.forEach((iss, i) => {
        if (!issuers.has(iss)) ctx.addIssue({ code: 'custom', path: ['cdsHooks', 'services', id, 'allowIssuers', i], message: `no CDS client with issuer "${iss}"` });
      });
    }
    const nodeIds = new Set(cfg.nodes.map((n) => n.id));
    for (const [poolName, pool] of Object.entries(cfg.pools)) {
      pool.nodes.forEach((id, i) => {
        if (!nodeIds.has(id)) ctx.addIssue({ code: 'custom', path: ['pools', poolName, 'nodes', i], message: `unknown node "${id}"` });
      });
    }
    for (const [modelName, route] of Object.entries(cfg.models)) {
      const pool = cfg.pools[route.pool];
      if (!pool) ctx.addIssue({ code: 'custom', path: ['models', modelName, 'pool'], message: `unknown pool "${route.pool}"` });
      else if (pool.dataClass === 'deidentified' && route.receives !== 'deidentified') {
        ctx.addIssue({ code: 'custom', path: ['models', modelName, 'receives'], message: `pool "${route.pool}" is de-identified, so model "${modelName}" must declare "receives": "deidentified"` });
      }
      if (pool && route.hedging && pool.nodes.length < 2) {
        ctx.addIssue({ code: 'custom', path: ['models', modelName, 'hedging'], message: `hedging needs a second node to send to, and pool "${route.pool}" has one` });
      }
    }
  });

  const node = z.strictObject({
    node: z.strictObject({
      id: z.string().min(1),
      grpc: listener('127.0.0.1'),
      rest: listener('127.0.0.1').extend(restLimits),
      admin: listener('127.0.0.1'),
      tls: serverTls,
      limits: tensorLimits.default(tensorLimits.parse({})),
      /**
       * Certificate identities (SAN URI or DNS, or subject CN) allowed to call
       * this node. The CA alone is not enough: applications share the CA.
       */
      allowedClients: z.array(z.string().min(1)).min(1),
      modelRepository: filePath,
      /** Models to load; all in the repository when omitted. */
      models: z.array(z.string().min(1)).optional(),
      /** auto: CUDA on deviceId, else CPU (node/provider.ts AUTO_ORDER); cuda, webgpu: that provider or refuse to start; cpu. */
      executionProvider: z.enum(['auto', 'cuda', 'webgpu', 'cpu']).default('auto'),
      deviceId: z.number().int().min(0).default(0),
      /**
       * Worker threads shared by the models without `instances`, each with a
       * session per model. (workers + every model's instances) × intraOpThreads
       * should not exceed the cores: the node warns at startup when it does.
       */
      workers: z.number().int().min(1).max(64).default(1),
      intraOpThreads: z.number().int().min(1).max(64).default(1),
      /** Tasks waiting for a worker beyond this are refused (RESOURCE_EXHAUSTED). */
      maxQueue: z.number().int().min(1).default(256),
      maxMessageBytes: z.number().int().positive().default(64 * 1024 * 1024),
      /**
       * Drain on SIGTERM: report not ready but keep serving this long, so the
       * gateway's health checks take the node out of rotation before it refuses anything.
       */
      drainGraceMs: z.number().int().min(0).default(2_000),
      /**
       * TEST ONLY: enables POST /fault?delayMs=N on the (loopback) admin port,
       * which slows every inference — how the chaos suite simulates a slow GPU.
       */
      faultInjection: z.boolean().default(false),
    }),
    logging: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).default({ level: 'info' }),
  });

  return { gateway, node };
}

export const phiClassSchema = z.enum(['none', 'identifier', 'text', 'fhir']);

const plausibleRange = z.strictObject({ min: z.number(), max: z.number() }).refine((r) => r.min <= r.max, 'min must not exceed max');

const tensorSpec = z.strictObject({
  name: z.string().min(1),
  datatype: z.enum(DATATYPES),
  /** -1 marks a variable dimension (the batch dimension first). */
  shape: z.array(z.number().int().min(-1)).min(1),
  labels: z.array(z.string()).optional(),
  /**
   * Floating-point inputs: NaN and ±Infinity are refused unless this is true.
   * A clinical model must never turn an impossible value into a score.
   */
  allowNonFinite: z.boolean().default(false),
  /** Plausible range of every element; outside it the request is refused (400), naming the element. */
  range: plausibleRange.optional(),
  /** Plausible range per position along the last dimension (one per feature, in order), as the model card states. */
  featureRanges: z.array(plausibleRange).optional(),
}).superRefine((spec, ctx) => {
  const last = spec.shape[spec.shape.length - 1]!;
  if (spec.featureRanges && spec.featureRanges.length !== last) {
    ctx.addIssue({ code: 'custom', path: ['featureRanges'], message: `has ${spec.featureRanges.length} entries but the last dimension is ${last}` });
  }
  if (spec.range && spec.featureRanges) ctx.addIssue({ code: 'custom', path: ['range'], message: 'give range or featureRanges, not both' });
});

export const modelConfigSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'lowercase letters, digits, "_", "." and "-"'),
  platform: z.literal('onnx_onnxv1'),
  description: z.string().optional(),
  maxBatchSize: z.number().int().min(1),
  inputs: z.array(tensorSpec).min(1),
  outputs: z.array(tensorSpec).min(1),
  /**
   * Dynamic batching (Triton's semantics), off unless present: concurrent
   * requests are merged along the batch dimension and run once. A batch goes
   * out when it holds the largest preferred size (or maxBatchSize), or when
   * its oldest request has waited maxQueueDelayMicroseconds.
   */
  dynamicBatching: z.strictObject({
    preferredBatchSizes: z.array(z.number().int().min(1)).default([]),
    maxQueueDelayMicroseconds: z.number().int().min(0).max(1_000_000).default(100),
    /** Requests that may wait to be batched; beyond it RESOURCE_EXHAUSTED at once. */
    maxQueueSize: z.number().int().min(1).default(1024),
  }).optional(),
  /**
   * Sessions of this model that run concurrently, each on a worker thread of
   * its own (Triton's instance groups). Absent: the model shares the node's
   * `workers` threads with the other models that set none.
   */
  instances: z.number().int().min(1).max(16).optional(),
  /**
   * Run on the node's main thread rather than a worker thread: for a model
   * whose run takes microseconds (a tabular score), where the hand-off to a
   * worker and back costs more than the run. Each run blocks the main thread,
   * so a model that takes longer (the node warns when its runs typically take
   * over 2 ms) must not ask.
   */
  inline: z.boolean().default(false),
  /** version → SHA-256 (hex) of <version>/model.onnx; a file that differs is refused. */
  versions: z.record(z.string().regex(/^[1-9]\d*$/), z.strictObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
}).superRefine((m, ctx) => {
  if (m.dynamicBatching && ![...m.inputs, ...m.outputs].every((t) => t.shape[0] === -1)) {
    ctx.addIssue({ code: 'custom', path: ['dynamicBatching'], message: 'needs the batch dimension (-1) first on every input and output' });
  }
  if (m.inline && m.instances !== undefined) ctx.addIssue({ code: 'custom', path: ['inline'], message: 'an inline model runs on the main thread: give inline or instances, not both' });
});

export type GatewayConfig = z.output<ReturnType<typeof schemas>['gateway']>;
export type NodeConfig = z.output<ReturnType<typeof schemas>['node']>;
export type ModelConfig = z.output<typeof modelConfigSchema>;
export type CdsHooksConfig = NonNullable<GatewayConfig['cdsHooks']>;
export type CdsServiceConfig = CdsHooksConfig['services'][string];
export type CdsClientConfig = CdsHooksConfig['clients'][number];
/** Whether a model can be batched: every input and output has the batch dimension (-1) first. */
export const batchable = (m: Pick<ModelConfig, 'inputs' | 'outputs'>): boolean => [...m.inputs, ...m.outputs].every((t) => t.shape[0] === -1);
export type TensorSpec = z.output<typeof tensorSpec>;
export type IssuerConfig = GatewayConfig['auth']['issuers'][number];
export type PoolConfig = GatewayConfig['pools'][string];
export type ModelRouteConfig = GatewayConfig['models'][string];
export type PhiClass = z.output<typeof phiClassSchema>;

export const gatewaySchema = (baseDir: string) => schemas(baseDir).gateway;
export const nodeSchema = (baseDir: string) => schemas(baseDir).node;
