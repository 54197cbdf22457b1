import { Pool, buildConnector, errors as httpErrors, type Dispatcher } from 'undici';
import { CdsError, kindFromHttpStatus } from '../errors.js';
import { inferRequestToRest, inferRequestToRestJson, inferResultFromRest, modelMetadataFromJson } from '../kserve/rest-codec.js';
import type { InferRequest, InferResult, ModelMetadata } from '../kserve/types.js';
import { attemptCancelled, type NodeAddress, type NodeClientLike } from './node-client.js';
import type { ClientTlsMaterial } from '../tls/client-tls.js';
import { nodeError, unexpectedFailure, unsendable } from './retry-policy.js';

/** Longest node error message the gateway keeps (nodes may quote caller text; the gateway never logs it in clear). */
const MAX_DETAIL = 512;
/** How long what a node's server metadata said about binary tensors is trusted before a health check asks again. */
const TENSOR_FORM_TTL_MS = 60_000;
const BINARY_EXTENSION = 'binary_tensor_data';

/**
 * One keep-alive pool of mTLS HTTP/1.1 connections to one node's KServe v2
 * REST door (ours, Triton or KServe), presenting the gateway's client
 * certificate and checking the node's certificate carries the configured
 * server name. Tensors travel as Triton binary tensor data both ways when
 * the node's server metadata (GET /v2) lists `binary_tensor_data` (Triton,
 * our nodes); to a node that does not list it, a KServe v2 server that reads
 * only the Open Inference Protocol's JSON form, they travel as exact JSON.
 *
 * Why REST and not gRPC by default: measured with bench:peers, the same node
 * spends less CPU per request on its REST door than on its gRPC door, and
 * undici's HTTP/1.1 client costs the gateway less than grpc-js over Node's
 * http2 (docs/ARCHITECTURE.md, "Gateway → node").
 */
export class RestNodeClient implements NodeClientLike {
  /** The connections new requests use; replaced, with its connections, when the client certificate is renewed (reloadTls). */
  private pool: Pool;
  /** Pools replaced by reloadTls, finishing the requests already on them before they close. */
  private readonly retired = new Set<Pool>();
  /** Whether the node reads binary tensor data, as its server metadata said, and when that was read. */
  private tensorForm: { binary: boolean; readAt: number } | undefined;
  private readingTensorForm: Promise<boolean> | undefined;

  constructor(readonly node: NodeAddress, tls: ClientTlsMaterial, private readonly maxMessageBytes: number) {
    this.pool = this.poolFor(tls);
  }

  /** A keep-alive pool whose every connection presents `tls`'s client certificate. */
  private poolFor(tls: ClientTlsMaterial): Pool {
    const connector = buildConnector({ ca: tls.ca, cert: tls.cert, key: tls.key, servername: this.node.serverName, rejectUnauthorized: true });
    return new Pool(`https://${this.node.address}`, {
      connect: connector,
      // A node's answer larger than this is refused as it streams in, not buffered.
      maxResponseSize: this.maxMessageBytes,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 300_000,
    });
  }

  async infer(request: InferRequest, deadline: number, requestId: string, signal?: AbortSignal): Promise<InferResult> {
    if (signal?.aborted) throw attemptCancelled(this.node.id);
    const binary = this.tensorForm?.binary ?? await this.readTensorForm(Math.max(1, deadline - Date.now()));
    const path = `/v2/models/${encodeURIComponent(request.model)}${request.version ? `/versions/${encodeURIComponent(request.version)}` : ''}/infer`;
    const encoded = binary ? inferRequestToRest(request) : { body: inferRequestToRestJson(request, (reason) => unsendable(this.node.id, reason)), headerLength: undefined };
    const remainingMs = Math.max(1, deadline - Date.now());
    const headers: Record<string, string> = {
      'content-type': binary ? 'application/octet-stream' : 'application/json',
      'x-request-id': requestId,
      // The node bounds its own work by the caller's deadline (our doors read it; others ignore it).
      'request-timeout': (remainingMs / 1000).toFixed(3),
    };
    if (encoded.headerLength !== undefined) headers['inference-header-content-length'] = String(encoded.headerLength);
    try {
      const res = await this.exchange({ method: 'POST', path, body: encoded.body, headers, headersTimeout: remainingMs, bodyTimeout: remainingMs }, signal);
      if (res.status !== 200) throw this.statusError(res.status, res.body);
      const bytes = res.body;
      const headerLengthOut = res.headers['inference-header-content-length'];
      const jsonLength = typeof headerLengthOut === 'string' ? Number(headerLengthOut) : bytes.length;
      if (!Number.isSafeInteger(jsonLength) || jsonLength < 0 || jsonLength > bytes.length) throw this.malformed('Inference-Header-Content-Length is not the length of its JSON header');
      try {
        return inferResultFromRest(JSON.parse(bytes.subarray(0, jsonLength).toString('utf8')), jsonLength < bytes.length ? bytes.subarray(jsonLength) : undefined);
      } catch (err) {
        throw this.malformed((err as Error).message);
      }
    } catch (err) {
      if (signal?.aborted) throw attemptCancelled(this.node.id);
      throw this.translate(err);
    }
  }

  /**
   * One request and its whole answer, through undici's dispatch API: the
   * answer's bytes are collected as they arrive, without the response stream,
   * async resource and body mixin of `request()`, which profiles of the
   * gateway under load put at a few percent of its CPU. The pool's
   * `maxResponseSize` still ends an oversized answer as it streams in.
   * `signal` cancels the call whether it is queued in the pool or on a socket.
   */
  private exchange(options: Omit<Dispatcher.DispatchOptions, 'origin'>, signal?: AbortSignal): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    return new Promise((resolve, reject) => {
      let controller: Dispatcher.DispatchController | undefined;
      let status = 0;
      let headers: Record<string, string | string[] | undefined> = {};
      const chunks: Buffer[] = [];
      let settled = false;
      const onAbort = () => {
        controller?.abort(new httpErrors.RequestAbortedError());
        finish(new httpErrors.RequestAbortedError());
      };
      const finish = (err: Error | undefined) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve({ status, headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pool.dispatch(options, {
        onRequestStart: (c) => {
          controller = c;
          if (settled) c.abort(new httpErrors.RequestAbortedError()); // cancelled while it waited in the pool
        },
        onResponseStart: (_c, statusCode, responseHeaders) => {
          // An informational (1xx) answer comes before the real one and carries no body.
          if (statusCode < 200) return;
          status = statusCode;
          headers = responseHeaders;
        },
        onResponseData: (_c, chunk) => {
          if (status >= 200) chunks.push(chunk);
        },
        onResponseEnd: () => finish(undefined),
        onResponseError: (_c, err) => finish(err),
      });
    });
  }

  /**
   * A renewed client certificate (or CA bundle) takes over at once: new
   * requests go on a new pool, whose connections present it, and the old
   * pool finishes the requests already on it and closes. Its idle keep-alive
   * connections are not reused: a renewal usually comes before the old
   * certificate is revoked, and a node that then drops the revoked
   * certificate's connections would fail whatever request rode one, and
   * with it a health check or a request counted against a healthy node.
   * As the gRPC client does with its channel.
   */
  reloadTls(tls: ClientTlsMaterial): void {
    const old = this.pool;
    this.pool = this.poolFor(tls);
    this.retired.add(old);
    void old.close().catch(() => undefined).finally(() => this.retired.delete(old));
  }

  async serverReady(timeoutMs: number): Promise<boolean> {
    const ready = await this.ready('/v2/health/ready', timeoutMs);
    // A health check also keeps what the node said about binary tensors fresh (a node replaced by another
    // server at the same address is read again within a minute), so requests do not wait to learn it.
    if (ready && (!this.tensorForm || Date.now() - this.tensorForm.readAt > TENSOR_FORM_TTL_MS)) await this.readTensorForm(timeoutMs);
    return ready;
  }

  /**
   * Reads the node's server metadata: binary tensor data when its extensions
   * list `binary_tensor_data`, JSON otherwise. When the metadata cannot be
   * read (no answer, or a server error), this request goes as JSON, which
   * every KServe v2 server reads, and the next request asks again.
   * Concurrent callers share one read.
   */
  private readTensorForm(timeoutMs: number): Promise<boolean> {
    this.readingTensorForm ??= this.get('/v2', timeoutMs).then((res) => {
      // A server error says nothing about the node's tensors (a proxy before it, a restart): asked again next time.
      if (res.status >= 500) return false;
      // Any other answer is the node's word: one without a readable extension list (a 404, not JSON) means JSON.
      const binary = res.status === 200 && listsBinaryExtension(res.body);
      this.tensorForm = { binary, readAt: Date.now() };
      return binary;
    }, () => false).finally(() => { this.readingTensorForm = undefined; });
    return this.readingTensorForm;
  }

  async modelReady(model: string, timeoutMs: number): Promise<boolean> {
    return this.ready(`/v2/models/${encodeURIComponent(model)}/ready`, timeoutMs);
  }

  async modelMetadata(model: string, version: string | undefined, timeoutMs: number): Promise<ModelMetadata> {
    try {
      const res = await this.get(`/v2/models/${encodeURIComponent(model)}${version ? `/versions/${encodeURIComponent(version)}` : ''}`, timeoutMs);
      if (res.status !== 200) throw this.statusError(res.status, res.body);
      try {
        return modelMetadataFromJson(JSON.parse(res.body.toString('utf8')));
      } catch (err) {
        throw this.malformed((err as Error).message);
      }
    } catch (err) {
      throw this.translate(err);
    }
  }

  /** A probe: 200 is ready, 503 (or 400/404 for a model it lacks) is not; anything else is the node failing. */
  private async ready(path: string, timeoutMs: number): Promise<boolean> {
    const res = await this.get(path, timeoutMs);
    if (res.status === 200) return true;
    if (res.status === 503 || res.status === 400 || res.status === 404) return false;
    throw this.statusError(res.status, res.body);
  }

  private get(path: string, timeoutMs: number): Promise<{ status: number; body: Buffer }> {
    return this.exchange({ method: 'GET', path, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  }

  /** A non-200 answer: the node's `{"error": "..."}` message, with the kind its status means. */
  private statusError(status: number, body: Buffer): CdsError {
    let detail = `HTTP ${status}`;
    try {
      const parsed: unknown = JSON.parse(body.subarray(0, 64 * 1024).toString('utf8'));
      if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { error?: unknown }).error === 'string') detail = (parsed as { error: string }).error.slice(0, MAX_DETAIL);
    } catch { /* not JSON: the status says enough */ }
    return nodeError(this.node.id, kindFromHttpStatus(status), detail);
  }

  /** An answer the gateway cannot read is the node's fault, never the caller's: retryable. */
  private malformed(detail: string): CdsError {
    return nodeError(this.node.id, 'internal', `malformed answer: ${detail.slice(0, MAX_DETAIL)}`);
  }

  /** Transport failures in the gateway's terms (retry-policy.ts); errors already translated pass through. */
  private translate(err: unknown): CdsError {
    if (err instanceof CdsError) return err;
    if (err instanceof httpErrors.HeadersTimeoutError || err instanceof httpErrors.BodyTimeoutError) {
      return nodeError(this.node.id, 'deadline_exceeded', 'timed out');
    }
    if (err instanceof httpErrors.ResponseExceededMaxSizeError) return nodeError(this.node.id, 'internal', 'answer larger than the gateway accepts');
    if (err instanceof httpErrors.UndiciError || isSystemError(err)) return nodeError(this.node.id, 'unavailable', (err as Error).message);
    return unexpectedFailure(this.node.id, err);
  }

  close(): void {
    for (const pool of [this.pool, ...this.retired]) void pool.close().catch(() => undefined);
  }
}

/** A socket-level failure (ECONNREFUSED, ECONNRESET, a TLS alert…): the node is unreachable for now. */
const isSystemError = (err: unknown): boolean => err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string';

/** Whether a server metadata document (GET /v2) lists Triton's binary tensor extension. */
function listsBinaryExtension(body: Buffer): boolean {
  try {
    const metadata: unknown = JSON.parse(body.toString('utf8'));
    const extensions = typeof metadata === 'object' && metadata !== null ? (metadata as { extensions?: unknown }).extensions : undefined;
    return Array.isArray(extensions) && extensions.includes(BINARY_EXTENSION);
  } catch {
    return false;
  }
}
