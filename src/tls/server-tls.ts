import { readFileSync } from 'node:fs';
import type { SecureVersion, TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';

export interface ServerTlsFiles { cert: string; key: string; ca: string; minVersion: SecureVersion }

export interface ServerTlsMaterial { cert: Buffer; key: Buffer; ca: Buffer; minVersion: SecureVersion }

export function readServerTls(files: ServerTlsFiles): ServerTlsMaterial {
  return { cert: readFileSync(files.cert), key: readFileSync(files.key), ca: readFileSync(files.ca), minVersion: files.minVersion };
}

/** node:https options for an mTLS-only listener: a client certificate from the CA bundle is required. */
export function httpsOptions(tls: ServerTlsMaterial) {
  return { key: tls.key, cert: tls.cert, ca: tls.ca, requestCert: true, rejectUnauthorized: true, minVersion: tls.minVersion };
}

/** grpc-js credentials for an mTLS-only listener (checkClientCertificate = true). */
export function grpcServerCredentials(tls: ServerTlsMaterial): grpc.ServerCredentials {
  return grpc.ServerCredentials.createSsl(tls.ca, [{ private_key: tls.key, cert_chain: tls.cert }], true);
}

export type HandshakeFailure = (reason: string, remoteAddress: string | undefined) => void;

interface TlsErrorSource { on(event: 'tlsClientError', listener: (err: Error, socket: TLSSocket) => void): unknown }

/** Reports every failed TLS handshake (no certificate, untrusted CA, old protocol) on a TLS server. */
export function watchHandshakes(server: TlsErrorSource, onFailure: HandshakeFailure): void {
  server.on('tlsClientError', (err, socket) => onFailure(handshakeReason(err), socket?.remoteAddress));
}

/**
 * grpc-js does not expose its HTTP/2 servers, and so no tlsClientError
 * event. It keeps them in a private `http2Servers` map; we attach to those,
 * and a test checks this keeps working when grpc-js is upgraded.
 */
export function watchGrpcHandshakes(server: grpc.Server, onFailure: HandshakeFailure): boolean {
  const servers = (server as unknown as { http2Servers?: Map<TlsErrorSource, unknown> }).http2Servers;
  if (!(servers instanceof Map) || servers.size === 0) return false;
  for (const s of servers.keys()) watchHandshakes(s, onFailure);
  return true;
}

function handshakeReason(err: Error & { code?: string }): string {
  const text = `${err.code ?? ''} ${err.message}`;
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|certificate required|NO_CERTIFICATE/i.test(text)) return 'no_client_certificate';
  if (/UNKNOWN_CA|unable to get|self.signed|CERTIFICATE_VERIFY_FAILED|certificate verify/i.test(text)) return 'untrusted_certificate';
  if (/VERSION|PROTOCOL/i.test(text)) return 'protocol_version';
  if (/ECONNRESET|socket hang up|EPIPE/i.test(text)) return 'connection_reset';
  return 'other';
}
