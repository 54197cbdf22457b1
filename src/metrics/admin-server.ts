import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What /metrics serves: a prom-client Registry, or the aggregate of several gateway workers'. */
export interface MetricsSource { metrics(): Promise<string>; contentType: string }

/**
 * Plain HTTP admin listener for Prometheus and operators. It carries no
 * inference and no PHI, and binds to loopback unless configured otherwise.
 */
export type AdminAction = (query: URLSearchParams) => unknown;

export async function startAdminServer(host: string, port: number, registry: MetricsSource, status: () => unknown, actions: Record<string, AdminAction> = {}): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const action = req.method === 'POST' ? actions[path] : undefined;
    if (action) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(action(url.searchParams) ?? {}));
      return;
    }
    if (req.method === 'GET' && path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else if (req.method === 'GET' && path === '/status') {
      Promise.resolve(status()).then(
        (body) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)),
        () => res.writeHead(500).end(),
      );
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
