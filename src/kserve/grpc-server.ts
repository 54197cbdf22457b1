import { createRequire } from 'node:module';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { readPeerCertificateOnce, refuseRenegotiation, refuseUnverifiedPeers, watchHandshakes, type HandshakeFailure, type LiveConnections } from '../tls/server-tls.js';

/** Marks a request message that did not decode; the handler answers INVALID_ARGUMENT and records it. */
const UNDECODABLE = Symbol('cdsgate.undecodable');
export interface Undecodable { [UNDECODABLE]: string }

export function undecodableReason(request: unknown): string | undefined {
  return typeof request === 'object' && request !== null && UNDECODABLE in request ? (request as Undecodable)[UNDECODABLE] : undefined;
}

/** Stands in for a message grpc-js could not decompress, so it reaches the deserializer below instead of an INTERNAL reply. */
const DECOMPRESS_FAILED = Buffer.from('cdsgate: message did not decompress');

/**
 * grpc-js answers a message that does not decompress with INTERNAL before any
 * handler runs, so the caller is told it is our fault and nothing is counted
 * or audited. Its decompression step is wrapped once per process so such a
 * message becomes an ordinary undecodable request. The test suite checks
 * this keeps working when grpc-js is upgraded.
 */
let decompressionWrapped = false;
function wrapDecompression(): boolean {
  if (decompressionWrapped) return true;
  const require = createRequire(import.meta.url);
  const internals = require('@grpc/grpc-js/build/src/server-interceptors.js') as { BaseServerInterceptingCall?: { prototype: Record<string, unknown> } };
  const proto = internals.BaseServerInterceptingCall?.prototype;
  const original = proto?.decompressMessage as ((this: unknown, message: Buffer, encoding: string) => Buffer | Promise<Buffer>) | undefined;
  if (!proto || typeof original !== 'function') return false;
  proto.decompressMessage = function decompressOrMark(this: unknown, message: Buffer, encoding: string) {
    const result = original.call(this, message, encoding);
    // Uncompressed messages come back synchronously; only the inflating path can fail this way.
    if (!(result instanceof Promise)) return result;
    return result.catch((err: { code?: number }) => (err?.code === grpc.status.INTERNAL ? DECOMPRESS_FAILED : Promise.reject(err)));
  };
  decompressionWrapped = true;
  return true;
}

/**
 * The service definition with deserializers that never throw: a message that
 * is garbage, truncated, has an over-long varint or did not decompress comes
 * to the handler as an Undecodable instead of grpc-js's INTERNAL.
 */
export function tolerantDefinition(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  wrapDecompression();
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    const deserialize = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        if (bytes === DECOMPRESS_FAILED) return { [UNDECODABLE]: 'the message could not be decompressed' };
        try {
          if (!wellFormedWire(bytes)) throw new Error('malformed');
          return deserialize(bytes);
        } catch {
          return { [UNDECODABLE]: `the message is not a valid ${name} request (it does not decode as protobuf)` };
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

/**
 * Checks the top level of a protobuf message's wire format: every tag and
 * varint at most 10 bytes, every length-delimited field and fixed-width value
 * inside the message. protobufjs reads a string whose length runs past the
 * end without complaint (a truncated message decodes as a shorter one), so
 * this walk is what refuses it. One pass over the field headers; field
 * contents are not touched.
 */
export function wellFormedWire(bytes: Uint8Array): boolean {
  let pos = 0;
  const end = bytes.length;
  const varint = (): number | undefined => {
    let value = 0, scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) return undefined;
      const b = bytes[pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    return undefined; // an 11th byte: over-long
  };
  while (pos < end) {
    const tag = varint();
    if (tag === undefined || tag < 8) return false; // field number 0 is invalid
    switch (tag % 8) {
      case 0: if (varint() === undefined) return false; break;
      case 1: pos += 8; break;
      case 2: {
        const length = varint();
        if (length === undefined) return false;
        pos += length;
        break;
      }
      case 5: pos += 4; break;
      default: return false; // groups (3, 4) are not proto3; 6 and 7 do not exist
    }
    if (pos > end) return false;
  }
  return true;
}

/**
 * grpc-js keeps channelz statistics for every call (counters and timestamps
 * per server, channel and connection, for a channelz service to report).
 * cdsgate serves no channelz service and has its own metrics, so the servers
 * of gateway and node and the gateway's channels to nodes turn it off.
 */
export const GRPC_CHANNELZ_OFF = { 'grpc.enable_channelz': 0 } as const;

/** gRPC's grpc-timeout header: an integer of up to 8 digits and a unit. */
const TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/**
 * What every call's headers are made to say before grpc-js reads them:
 * - a deadline: the caller's, capped at maxMs, or defaultMs when it set none.
 *   grpc-js then ends the call with DEADLINE_EXCEEDED when it runs out —
 *   including a call whose message never arrives, which otherwise stays open
 *   for as long as the connection does;
 * - every Authorization value: Node's HTTP/2 layer keeps only the first of
 *   repeated authorization fields, so a second one would be dropped silently
 *   and the first would win. All of them are passed on, and the gateway
 *   refuses the ambiguity.
 */
export function prepareCallHeaders(headers: IncomingHttpHeaders, rawHeaders: readonly string[], defaultMs: number, maxMs: number): void {
  const asked = TIMEOUT.exec(String(headers['grpc-timeout'] ?? ''));
  const ms = asked ? Number(asked[1]) * UNIT_MS[asked[2]!]! : defaultMs;
  if (!asked || ms > maxMs) headers['grpc-timeout'] = `${Math.min(ms, maxMs)}m`;
  let authorization: string[] | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i] === 'authorization') (authorization ??= []).push(rawHeaders[i + 1]!);
  if (authorization && authorization.length > 1) (headers as Record<string, unknown>).authorization = authorization;
}

export interface GrpcHardening {
  /** Every refused handshake, with its reason (the metric and the log line). */
  onHandshakeFailure: HandshakeFailure;
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  /** Where the verified connections are kept, so a CRL reload can close those of revoked peers. */
  connections: LiveConnections;
}

/**
 * Applies the listener rules to every HTTP/2 server grpc-js creates for
 * `server`, at creation, before it listens: the mTLS rule with its reasons
 * (refuseUnverifiedPeers), handshake failure reporting, renegotiation refused
 * (Node's HTTP/2 layer refuses it too; said here because the next rule
 * relies on it), the peer certificate read once per connection
 * (readPeerCertificateOnce), and prepareCallHeaders on every stream. grpc-js
 * does not expose its servers, so this wraps its (private) factory; if that
 * is gone after an upgrade the gateway refuses to start rather than serve
 * without these rules, and a test shows it works. Call before bindAsync.
 */
export function hardenGrpcServer(server: grpc.Server, o: GrpcHardening): void {
  type StreamListener = (s: ServerHttp2Stream, h: IncomingHttpHeaders, flags: number, raw: string[]) => void;
  type H2Server = Parameters<typeof refuseUnverifiedPeers>[0] & Parameters<typeof watchHandshakes>[0] & { prependListener(event: 'stream', l: StreamListener): void };
  const target = server as unknown as { createHttp2Server?: (this: unknown, credentials: unknown) => H2Server };
  const create = target.createHttp2Server;
  if (typeof create !== 'function') throw new Error('this @grpc/grpc-js version does not let cdsgate apply its TLS and deadline rules; refusing to start');
  target.createHttp2Server = function hardened(this: unknown, credentials: unknown): H2Server {
    const h2 = create.call(this, credentials);
    refuseUnverifiedPeers(h2, o.onHandshakeFailure, o.connections);
    watchHandshakes(h2, o.onHandshakeFailure);
    refuseRenegotiation(h2);
    readPeerCertificateOnce(h2);
    h2.prependListener('stream', (_stream, headers, _flags, raw) => prepareCallHeaders(headers, raw ?? [], o.defaultTimeoutMs, o.maxTimeoutMs));
    return h2;
  };
}
