import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import type { Identity } from './cluster.js';

/** A raw mTLS connection to a door, to send exactly the bytes a test needs (an attacker's, or a request timed against a drain). */
export function rawTls(port: number, ca: string, identity: Identity, extra: Record<string, unknown> = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(ca),
      cert: readFileSync(identity.cert), key: readFileSync(identity.key), ...extra,
    }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Every byte the server sends until it closes the connection. */
export function bytesUntilClosed(socket: TLSSocket | Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** Everything the server says until it closes the connection, as text. */
export const untilClosed = async (socket: TLSSocket | Socket): Promise<string> => (await bytesUntilClosed(socket)).toString('utf8');
