import { createHash, timingSafeEqual } from 'node:crypto';
import type { PeerCertificate, TLSSocket } from 'node:tls';

/** Who is on the other end of a mutually authenticated TLS connection. */
export interface PeerIdentity {
  /** Subject common name, if any. */
  commonName?: string;
  /** Subject alternative names without their type prefix (URI, DNS, IP, email). */
  altNames: string[];
  /** RFC 8705 thumbprint: base64url(SHA-256(DER)). */
  thumbprint: string;
}

/** Identities already read, by certificate object: a connection hands out one object for its life (readPeerCertificateOnce), so it is parsed once. */
const certificatePeers = new WeakMap<PeerCertificate, PeerIdentity>();

export function peerFromCertificate(cert: PeerCertificate | null | undefined): PeerIdentity | undefined {
  if (!cert || !cert.raw || cert.raw.length === 0) return undefined;
  let peer = certificatePeers.get(cert);
  if (!peer) certificatePeers.set(cert, (peer = parsePeer(cert)));
  return peer;
}

function parsePeer(cert: PeerCertificate): PeerIdentity {
  const altNames = (cert.subjectaltname ?? '')
    .split(', ')
    .map((entry) => entry.slice(entry.indexOf(':') + 1))
    .filter((v) => v.length > 0);
  const cn = cert.subject?.CN;
  return {
    commonName: Array.isArray(cn) ? cn[0] : cn,
    altNames,
    thumbprint: certificateThumbprint(cert.raw),
  };
}

/**
 * The verified peer of a TLS socket. Every listener reads a connection's
 * certificate once (readPeerCertificateOnce) and its identity is parsed once
 * per certificate, so keep-alive connections pay for it once.
 */
export function peerFromSocket(socket: TLSSocket): PeerIdentity | undefined {
  // Only an authorized socket has a verified chain; the servers refuse others, this is belt and braces.
  return socket.authorized ? peerFromCertificate(socket.getPeerCertificate()) : undefined;
}

export const certificateThumbprint = (der: Buffer): string => createHash('sha256').update(der).digest('base64url');

/** The name to show in logs and audit for a peer: its first SAN, else its CN. */
export const peerName = (peer: PeerIdentity): string => peer.altNames[0] ?? peer.commonName ?? '(unnamed certificate)';

/** True when one of the peer's SANs (or, failing SANs, its CN) is on the allow-list. */
export function identityAllowed(peer: PeerIdentity | undefined, allowed: readonly string[]): boolean {
  if (!peer) return false;
  const names = peer.altNames.length ? peer.altNames : peer.commonName ? [peer.commonName] : [];
  return names.some((n) => allowed.includes(n));
}

/** Constant-time comparison of two thumbprints (RFC 8705 §3 binding check). */
export function thumbprintsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
