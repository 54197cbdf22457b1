import { readFileSync } from 'node:fs';
import type { Server as NetServer, Socket } from 'node:net';
import { createSecureContext, type PeerCertificate, type SecureContextOptions, type SecureVersion, type TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import 'reflect-metadata';
import { X509Crl } from '@peculiar/x509';
import { reloadWhenChanged, type ReloadReport } from './file-watch.js';

/**
 * TLS 1.3 suites (all AEAD) and the TLS 1.2 ECDHE suites with AEAD ciphers:
 * no CBC, no SHA-1 MAC, no static RSA key exchange. The default of every
 * listener; an operator can widen it (`tls.ciphers`) knowingly.
 */
export const AEAD_CIPHERS = [
  'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
].join(':');

export interface ServerTlsFiles {
  cert: string; key: string; ca: string; minVersion: SecureVersion; ciphers: string;
  /** Certificate revocation list(s) for client certificates (PEM); re-read when the file changes. */
  crl?: string;
  /** A connection that has not finished its TLS handshake by then is closed. */
  handshakeTimeoutMs: number;
}

export interface ServerTlsMaterial { cert: Buffer; key: Buffer; ca: Buffer; crl?: Buffer; minVersion: SecureVersion; ciphers: string; handshakeTimeoutMs: number }

export function readServerTls(files: ServerTlsFiles): ServerTlsMaterial {
  return {
    cert: readFileSync(files.cert), key: readFileSync(files.key), ca: readFileSync(files.ca),
    ...(files.crl ? { crl: readFileSync(files.crl) } : {}),
    minVersion: files.minVersion, ciphers: files.ciphers, handshakeTimeoutMs: files.handshakeTimeoutMs,
  };
}

/** What goes into the secure context: swapped as a whole when any of its files changes. */
function contextOptions(tls: ServerTlsMaterial): SecureContextOptions {
  return { key: tls.key, cert: tls.cert, ca: tls.ca, ...(tls.crl ? { crl: tls.crl } : {}), minVersion: tls.minVersion, ciphers: tls.ciphers };
}

/**
 * node:https options for an mTLS-only listener: a client certificate from the
 * CA bundle is required. `rejectUnauthorized` is false only so that the
 * refusal happens in refuseUnverifiedPeers(), where its reason (expired,
 * revoked, foreign CA, wrong purpose) can be counted: Node's own refusal
 * closes the socket without saying why.
 */
export function httpsOptions(tls: ServerTlsMaterial) {
  return { ...contextOptions(tls), requestCert: true, rejectUnauthorized: false, handshakeTimeout: tls.handshakeTimeoutMs };
}

export interface SecureServerLike {
  prependListener(event: 'secureConnection', listener: (socket: TLSSocket) => void): unknown;
  listenerCount(event: string): number;
}

/**
 * The mTLS rule of every listener: a connection whose client certificate did
 * not verify (none, foreign CA, expired, revoked, not for clientAuth) is
 * closed the moment its handshake ends, before any byte of a request is
 * read, and reported with the verifier's reason. Runs first among the
 * server's listeners. Returns false if it could not attach (the caller must
 * then refuse to start: fail closed).
 */
export function refuseUnverifiedPeers(server: SecureServerLike, onFailure: HandshakeFailure, live?: LiveConnections): boolean {
  server.prependListener('secureConnection', (socket) => {
    if (socket.authorized) {
      live?.add(socket);
      return;
    }
    // Node reports a missing certificate as UNABLE_TO_GET_ISSUER_CERT; an empty peer certificate says what it really is.
    const presented = Object.keys(socket.getPeerCertificate() ?? {}).length > 0;
    const code = presented ? String((socket as TLSSocket & { authorizationError?: unknown }).authorizationError ?? 'UNVERIFIED') : 'NO_CERTIFICATE';
    onFailure(handshakeReason(Object.assign(new Error(code), { code })), socket.remoteAddress);
    socket.destroy();
  });
  return server.listenerCount('secureConnection') > 0;
}

/**
 * grpc-js credentials for an mTLS-only listener with the same rules as the
 * REST door (AEAD suites, handshake timeout, CRL). grpc-js re-applies the
 * secure context whenever `reload` is called, so a new CRL takes effect on
 * the next handshake without a restart.
 */
export class MtlsServerCredentials extends grpc.ServerCredentials {
  /** The verified connections made with these credentials (hardenGrpcServer fills it), closed on reload when their peer is revoked. */
  readonly connections = new LiveConnections();

  constructor(tls: ServerTlsMaterial) {
    // rejectUnauthorized: false for the same reason as httpsOptions: refuseUnverifiedPeers() refuses, and says why.
    super({ requestCert: true, rejectUnauthorized: false, handshakeTimeout: tls.handshakeTimeoutMs, ciphers: tls.ciphers, minVersion: tls.minVersion }, contextOptions(tls));
  }

  reload(tls: ServerTlsMaterial): void {
    this.updateSecureContextOptions(contextOptions(tls));
    this.connections.dropRevoked(tls.crl);
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/**
 * Watches a listener's TLS files — certificate, key, CA bundle and CRL — and
 * applies freshly read material after each change: a renewed certificate is
 * served, a new CA bundle trusted and a new CRL enforced from the next
 * handshake, without a restart. The new files must make a working context
 * first: a certificate and a key that do not match (one of the two written,
 * not yet the other), or a file that cannot be read or parsed, keep the
 * previous material in force (file-watch.ts: reloadWhenChanged).
 */
export function reloadTlsOnChange(files: ServerTlsFiles, apply: Array<(tls: ServerTlsMaterial) => void>, log: ReloadReport['log'], counted?: ReloadReport['counted']): () => void {
  const read = (): ServerTlsMaterial => {
    const fresh = readServerTls(files);
    createSecureContext(contextOptions(fresh)); // throws on a key that does not match its certificate, or bad PEM
    return fresh;
  };
  return reloadWhenChanged([files.cert, files.key, files.ca, ...(files.crl ? [files.crl] : [])], read, (fresh) => { for (const a of apply) a(fresh); }, {
    log, counted,
    applied: 'TLS file changed: certificate, key, CA bundle and CRL reloaded',
    refused: 'TLS file changed but the files do not make a usable context; the previous ones stay in force',
  });
}

export type HandshakeFailure = (reason: string, remoteAddress: string | undefined) => void;

interface TlsServerLike {
  on(event: 'tlsClientError', listener: (err: Error, socket: TLSSocket) => void): unknown;
  on(event: 'secureConnection', listener: (socket: TLSSocket) => void): unknown;
}

/** Reports every failed TLS handshake (no certificate, untrusted CA, old protocol) on a TLS server. */
export function watchHandshakes(server: TlsServerLike, onFailure: HandshakeFailure): void {
  server.on('tlsClientError', (err, socket) => onFailure(handshakeReason(err), socket?.remoteAddress));
}

/**
 * The verified connections a listener holds open. A new CRL applies to the
 * next handshake by itself; connections already open (a gateway's HTTP/2
 * channel to a node lives for hours) are closed here when their peer's
 * certificate is on it, so a revocation takes effect on them too.
 */
export class LiveConnections {
  private readonly sockets = new Set<TLSSocket>();

  add(socket: TLSSocket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /** Closes every connection whose peer certificate's serial number is in `crlPem`; returns how many. */
  dropRevoked(crlPem: Buffer | undefined): number {
    if (!crlPem) return 0;
    const revoked = revokedSerials(crlPem);
    let dropped = 0;
    for (const socket of this.sockets) {
      const serial = socket.getPeerCertificate()?.serialNumber?.toLowerCase().replace(/^0+/, '');
      if (serial && revoked.has(serial)) {
        socket.destroy();
        dropped++;
      }
    }
    return dropped;
  }
}

/** Serial numbers (lowercase hex, no leading zeros) of every CRL in a PEM bundle. */
export function revokedSerials(crlPem: Buffer): Set<string> {
  const serials = new Set<string>();
  for (const block of crlPem.toString('utf8').match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g) ?? []) {
    for (const entry of new X509Crl(block).entries) serials.add(entry.serialNumber.toLowerCase().replace(/^0+/, ''));
  }
  return serials;
}

/**
 * Mid-connection renegotiation is refused on every listener (a client-triggered
 * CPU cost, and no use to us). So a connection's client certificate is the
 * one its handshake verified, for as long as the connection lives: what
 * readPeerCertificateOnce relies on.
 */
export function refuseRenegotiation(server: TlsServerLike): void {
  server.on('secureConnection', (socket) => socket.disableRenegotiation());
}

/**
 * Every listener's connections read their peer certificate once. The socket's
 * getPeerCertificate builds the whole certificate object anew from OpenSSL's
 * on each call, and grpc-js calls it on every call (its getAuthContext): about
 * a tenth of the gRPC door's CPU under load. With renegotiation refused the
 * certificate cannot change on a connection, so each verified connection
 * reads it once and hands every later caller the same object
 * (peerFromCertificate then finds its identity already parsed). Attached
 * after refuseUnverifiedPeers, so only verified connections get it.
 */
export function readPeerCertificateOnce(server: TlsServerLike): void {
  server.on('secureConnection', (socket) => {
    const read = socket.getPeerCertificate.bind(socket);
    let certificate: PeerCertificate | undefined;
    socket.getPeerCertificate = ((detailed?: boolean) => (detailed ? read(true) : (certificate ??= read()))) as TLSSocket['getPeerCertificate'];
  });
}

/**
 * Answers that close the connection (a refusal before the body was read, a
 * 413) must reach a client that is still sending. Node ends the socket and
 * destroys it at once, so the client's next write meets a reset and its
 * stack throws the answer away unread. Instead, like nginx's lingering
 * close: send FIN, keep reading and discarding for at most `lingerMs` and
 * `maxBytes`, then close.
 */
export function lingerOnClose(server: NetServer, lingerMs: number, maxBytes: number): void {
  server.on('secureConnection', (socket: Socket) => {
    (socket as Socket & { destroySoon(): void }).destroySoon = function lingeringClose(this: Socket) {
      if (this.destroyed) return;
      this.end();
      // The HTTP parser must not see what follows: the request it belonged to is answered.
      this.removeAllListeners('data');
      let discarded = 0;
      const timer = setTimeout(() => this.destroy(), lingerMs);
      timer.unref();
      this.on('data', (chunk: Buffer) => {
        discarded += chunk.length;
        if (discarded > maxBytes) this.destroy();
      });
      this.once('close', () => clearTimeout(timer));
      this.once('end', () => this.destroy());
      this.resume();
    };
  });
}

/** Why a handshake failed, in the words of the metric's `reason` label. */
export function handshakeReason(err: Error & { code?: string }): string {
  const text = `${err.code ?? ''} ${err.message}`;
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|certificate required|NO_CERTIFICATE/i.test(text)) return 'no_client_certificate';
  if (/CERT_REVOKED|CERTIFICATE_REVOKED|certificate revoked/i.test(text)) return 'revoked_certificate';
  if (/CERT_HAS_EXPIRED|certificate has expired|CERTIFICATE_EXPIRED|NOT_YET_VALID/i.test(text)) return 'expired_certificate';
  if (/UNSUPPORTED_CERTIFICATE_PURPOSE|unsupported certificate purpose|INVALID_PURPOSE/i.test(text)) return 'wrong_certificate_purpose';
  if (/CRL_HAS_EXPIRED|UNABLE_TO_GET_CRL|CRL_NOT_YET_VALID|CRL_SIGNATURE/i.test(text)) return 'revocation_list_unusable';
  if (/UNKNOWN_CA|unable.to.(get|verify)|self.signed|CERTIFICATE_VERIFY_FAILED|certificate verify|unknown ca|BAD_CERTIFICATE|CERT_SIGNATURE_FAILURE|CERT_UNTRUSTED|CERT_REJECTED|INVALID_CA/i.test(text)) return 'untrusted_certificate';
  if (/ETIMEDOUT|timed out|TLS handshake timeout/i.test(text)) return 'handshake_timeout';
  if (/NO_SHARED_CIPHER|no shared cipher|NO_CIPHERS/i.test(text)) return 'no_shared_cipher';
  if (/VERSION|PROTOCOL/i.test(text)) return 'protocol_version';
  if (/ECONNRESET|socket hang up|EPIPE/i.test(text)) return 'connection_reset';
  return 'other';
}
