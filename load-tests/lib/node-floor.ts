/**
 * The Node floor for bench:peers: the least a Node proxy does on cdsgate's
 * REST path, in one process. Fastify over https with mTLS (the gateway's
 * server certificate, client certificates required), each request's bytes
 * passed unread to the node's REST door through an undici pool (its dispatch
 * API, as the gateway calls nodes) with the gateway's client certificate, and
 * the node's answer passed back (the benchmark's JSON requests: only
 * Content-Type travels with the body). No token check, no decoding, no audit, no
 * log line: the same framework, TLS and HTTP client as the gateway, and none
 * of its work. Its row in the report separates what Node itself costs per
 * request from what cdsgate's own work adds.
 *
 *   node --import tsx load-tests/lib/node-floor.ts NODE_PORT NODE_SERVER_NAME SERVER_CERT SERVER_KEY CA CLIENT_CERT CLIENT_KEY
 *
 * Prints one JSON line, {"msg": "node floor ready", "ports": {"rest": PORT}}, when it listens.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { Pool } from 'undici';

const [nodePort, serverName, serverCert, serverKey, ca, clientCert, clientKey] = process.argv.slice(2);
if (!clientKey) {
  console.error('usage: node-floor.ts NODE_PORT NODE_SERVER_NAME SERVER_CERT SERVER_KEY CA CLIENT_CERT CLIENT_KEY');
  process.exit(2);
}

const pool = new Pool(`https://127.0.0.1:${nodePort}`, {
  connect: { ca: readFileSync(ca!), cert: readFileSync(clientCert!), key: readFileSync(clientKey), servername: serverName, rejectUnauthorized: true },
});

/** One request to the node and its whole answer (status, content type, bytes). */
function forward(path: string, body: Buffer, contentType: string): Promise<{ status: number; contentType: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    let status = 502;
    let answerType = 'application/json';
    const chunks: Buffer[] = [];
    pool.dispatch({ method: 'POST', path, body, headers: { 'content-type': contentType } }, {
      onRequestStart: () => undefined,
      onResponseStart: (_c, statusCode, headers) => {
        status = statusCode;
        if (typeof headers['content-type'] === 'string') answerType = headers['content-type'];
      },
      onResponseData: (_c, chunk) => { chunks.push(chunk); },
      onResponseEnd: () => resolve({ status, contentType: answerType, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) }),
      onResponseError: (_c, err) => reject(err),
    });
  });
}

const app = Fastify({
  https: { cert: readFileSync(serverCert!), key: readFileSync(serverKey!), ca: readFileSync(ca!), requestCert: true, rejectUnauthorized: true },
  logger: false,
});
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
app.post('/*', async (req, reply) => {
  try {
    const answer = await forward(req.url, req.body as Buffer, req.headers['content-type'] ?? 'application/json');
    return reply.code(answer.status).header('content-type', answer.contentType).send(answer.body);
  } catch (err) {
    return reply.code(502).header('content-type', 'application/json').send(JSON.stringify({ error: (err as Error).message }));
  }
});
await app.listen({ host: '127.0.0.1', port: 0 });
console.log(JSON.stringify({ msg: 'node floor ready', ports: { rest: (app.server.address() as AddressInfo).port } }));
process.on('SIGTERM', () => { void app.close().then(() => pool.close()).finally(() => process.exit(0)); });
