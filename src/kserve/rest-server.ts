import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type RawServerDefault } from 'fastify';
import secureJson from 'secure-json-parse';
import { CdsError, httpStatusOf, quote } from '../errors.js';
import { LiveConnections, httpsOptions, lingerOnClose, readPeerCertificateOnce, refuseRenegotiation, refuseUnverifiedPeers, watchHandshakes, type HandshakeFailure, type ServerTlsMaterial } from '../tls/server-tls.js';

export interface RestServerOptions {
  tls: ServerTlsMaterial;
  /** Every refused handshake, with its reason (the metric and the log line). */
  onHandshakeFailure: HandshakeFailure;
  bodyLimit: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  lingerMs: number;
}

/** Longest path parameter (a model name or version) the router accepts. */
const MAX_PARAM_LENGTH = 256;

/**
 * The one HTTPS listener both processes use for the KServe REST door:
 * mTLS only, renegotiation refused, time limits on the handshake, the headers
 * and the whole request (Node's own timers, checked four times a second),
 * lingering close, and every error that the framework or the HTTP parser
 * raises answered in the documented form `{"error": "..."}`.
 */
export interface RestServer {
  app: FastifyInstance;
  /** Applies new TLS material (a changed CRL) to the next handshake, and closes open connections of revoked peers. */
  reloadTls(tls: ServerTlsMaterial): void;
}

export function createRestServer(o: RestServerOptions): RestServer {
  let server: Server | undefined;
  const live = new LiveConnections();
  const app = Fastify({
    serverFactory: (handler) => {
      server = createServer({
        ...httpsOptions(o.tls),
        headersTimeout: o.headersTimeoutMs,
        requestTimeout: o.requestTimeoutMs,
        keepAliveTimeout: o.keepAliveTimeoutMs,
        // Node checks the two timeouts above on this interval (30 s by default, which made them ~90 s).
        connectionsCheckingInterval: Math.min(250, o.headersTimeoutMs),
      }, handler);
      refuseUnverifiedPeers(server, o.onHandshakeFailure, live);
      watchHandshakes(server, o.onHandshakeFailure);
      refuseRenegotiation(server);
      readPeerCertificateOnce(server);
      lingerOnClose(server, o.lingerMs, o.bodyLimit);
      return server as unknown as RawServerDefault;
    },
    logger: false,
    bodyLimit: o.bodyLimit,
    requestTimeout: o.requestTimeoutMs,
    keepAliveTimeout: o.keepAliveTimeoutMs,
    return503OnClosing: false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    clientErrorHandler: answerClientError,
    frameworkErrors: (err, _req, reply) => {
      const error = err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? new CdsError('not_found', `a path segment is longer than the ${MAX_PARAM_LENGTH} characters this server accepts`)
        : new CdsError('invalid_argument', 'the request URL is not valid');
      sendError(reply as FastifyReply, error);
    },
  });

  // One parser for every body: JSON (with or without a Content-Type: tritonclient sends none), or the
  // Triton binary tensor extension (a JSON header, then raw tensors). Anything else is a 415 saying so.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    try {
      done(null, parseRestBody(body as Buffer, req.headers['content-type'], req.headers['inference-header-content-length']));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  // Compressed bodies are inflated as they arrive; the body limit applies to the inflated bytes (a bomb stays a 413).
  // A callback hook, not an async one: every request with a body runs it, and an uncompressed body (nearly all)
  // goes on at once instead of a promise and a microtask later.
  app.addHook('preParsing', (req, _reply, payload, done) => {
    const header = req.headers['content-encoding'];
    const encoding = header === undefined ? 'identity' : String(header).trim().toLowerCase();
    if (encoding === 'identity' || encoding === '') return done(null, payload);
    const inflate = encoding === 'gzip' || encoding === 'x-gzip' ? createGunzip()
      : encoding === 'deflate' ? createInflate()
      : encoding === 'br' ? createBrotliDecompress()
      : undefined;
    if (!inflate) return done(new CdsError('unsupported_media_type', `content encoding ${quote(encoding, 24)} is not supported; send gzip, deflate, br or identity`));
    const counted = inflate as typeof inflate & { receivedEncodedLength: number };
    counted.receivedEncodedLength = 0;
    payload.on('data', (chunk: Buffer) => { counted.receivedEncodedLength += chunk.length; });
    payload.on('error', (err) => inflate.destroy(err));
    inflate.on('error', () => inflate.destroy());
    payload.pipe(inflate);
    done(null, counted as unknown as Readable & { receivedEncodedLength: number });
  });

  return {
    app,
    reloadTls: (tls) => {
      server!.setSecureContext(httpsOptions(tls));
      live.dropRevoked(tls.crl);
    },
  };
}

/**
 * A JSON answer as bytes: sent this way, its Content-Type stays exactly
 * `application/json` (fastify adds "; charset=utf-8" to JSON it serializes,
 * and KServe's Python client compares the header as a whole).
 */
export const jsonBytes = (body: unknown): Buffer => Buffer.from(JSON.stringify(body));

/** The one error form of every REST route: `{"error": "..."}` with the error's status and headers, and the request id once there is one. */
export function sendError(reply: FastifyReply, error: CdsError, requestId?: string): void {
  reply.code(httpStatusOf(error.kind)).headers({ ...error.headers, 'content-type': 'application/json', ...(requestId ? { 'x-request-id': requestId } : {}) }).send(jsonBytes({ error: error.message }));
}

/**
 * A REST request body: the JSON document, and for the Triton binary tensor
 * extension the raw tensor bytes that follow it (inputs whose parameters
 * give `binary_data_size` take their bytes from there, in order).
 */
export interface RestBody { json: unknown; binary?: Buffer }

const READABLE_TYPES = new Set(['', 'application/json', 'application/octet-stream']);

export function parseRestBody(body: Buffer, contentType: string | undefined, headerLength: string | string[] | undefined): RestBody {
  const type = String(contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (!READABLE_TYPES.has(type)) {
    throw new CdsError('unsupported_media_type', 'content type must be application/json, or application/octet-stream with Inference-Header-Content-Length (binary tensor data)');
  }
  if (headerLength === undefined) {
    if (type === 'application/octet-stream') {
      throw new CdsError('invalid_argument', 'an application/octet-stream body needs an Inference-Header-Content-Length header giving the length of its JSON part (binary tensor data extension)');
    }
    return { json: parseJsonBody(body) };
  }
  const text = Array.isArray(headerLength) ? '' : headerLength.trim();
  const length = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  if (!(length <= body.length)) {
    throw new CdsError('invalid_argument', `Inference-Header-Content-Length must be one whole number no larger than the body (${body.length} bytes)`);
  }
  return { json: parseJsonBody(body.subarray(0, length)), binary: body.subarray(length) };
}

/** A request body as JSON; keys that could reach an object prototype are refused by name. */
function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) throw new CdsError('invalid_argument', 'request body is empty; send a JSON object');
  try {
    return secureJson.parse(body, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (err) {
    if (/prototype/i.test((err as Error).message)) {
      throw new CdsError('invalid_argument', 'request body has a "__proto__" or "constructor.prototype" key, which this server refuses');
    }
    throw new CdsError('invalid_argument', 'request body is not valid JSON');
  }
}

/** Framework rejections in our terms; their own messages can quote the body, so they are not passed on. */
export function frameworkError(err: FastifyError | CdsError): CdsError {
  if (err instanceof CdsError) return err;
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new CdsError('payload_too_large', 'request body is larger than this server accepts');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new CdsError('unsupported_media_type', 'content type must be application/json, or application/octet-stream with Inference-Header-Content-Length (binary tensor data)');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new CdsError('invalid_argument', 'request body length does not match its Content-Length');
    case 'Z_DATA_ERROR':
    case 'Z_BUF_ERROR':
    case 'ERR__ERROR_FORMAT_PADDING_1':
    case 'ERR_PADDING_1':
      return new CdsError('invalid_argument', 'request body is not valid data in its Content-Encoding');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new CdsError('invalid_argument', 'request body is empty; send a JSON object');
    default: {
      // zlib's own codes (Z_…, brotli's ERR_…): a body that does not decompress.
      if (/^(Z_|ERR_(?!HTTP))/.test(err.code ?? '') && err.code !== 'ERR_STREAM_PREMATURE_CLOSE') {
        return new CdsError('invalid_argument', 'request body is not valid data in its Content-Encoding');
      }
      const status = err.statusCode ?? 500;
      if (status === 413) return new CdsError('payload_too_large', 'request body is larger than this server accepts');
      if (status === 408) return new CdsError('request_timeout', 'the request body did not arrive in time');
      if (status >= 400 && status < 500) return new CdsError('invalid_argument', 'the request could not be read');
      return new CdsError('internal', 'internal error');
    }
  }
}

/**
 * What Node's HTTP parser and timers reject (malformed requests, oversized
 * headers, requests that did not arrive in time) is answered here, before any
 * route: in the documented form, then the connection is closed.
 */
function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // Already answered (a refusal is lingering on this connection): nothing more to say.
  if (!socket.writable || socket.writableEnded) return;
  const [status, reason, message] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? [408, 'Request Timeout', 'the request did not arrive in time; the connection is closed']
    : err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'request headers are larger than this server accepts']
      : [400, 'Bad Request', 'malformed HTTP request'];
  const body = JSON.stringify({ error: message });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  setTimeout(() => socket.destroy(), 1_000).unref();
}
