import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { InferenceServiceClient } from '../../src/kserve/service.js';
import { closedLoopFigures, type Figures } from './measure.js';

export interface GrpcTarget {
  port: number;
  ca: string;
  identity: { cert: string; key: string };
  /** The name the server's certificate must carry. */
  serverName: string;
  /** Bearer tokens, used in turn (one for a single-token run); none for a node. */
  tokens: string[];
  request: unknown;
}

type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => void;

/**
 * A closed-loop gRPC load generator (what autocannon is for HTTP): one
 * channel per connection, each sending its next ModelInfer as soon as the
 * last one answered, for `seconds`. Latencies are kept whole, so p50/p99 are
 * exact (to 0.001 ms).
 */
export async function grpcLoad(name: string, run: number, t: GrpcTarget, seconds: number, connections: number): Promise<Figures> {
  const credentials = grpc.credentials.createSsl(readFileSync(t.ca), readFileSync(t.identity.key), readFileSync(t.identity.cert));
  const clients = Array.from({ length: connections }, () => new InferenceServiceClient(`127.0.0.1:${t.port}`, credentials, {
    'grpc.ssl_target_name_override': t.serverName,
    // One TCP connection per client, as autocannon opens one per connection.
    'grpc-node.use_local_subchannel_pool': 1,
  }) as unknown as grpc.Client & { ModelInfer: Unary });
  const latencies: number[] = [];
  let non2xx = 0, errors = 0, next = 0;
  const end = performance.now() + seconds * 1000;
  const loop = async (client: grpc.Client & { ModelInfer: Unary }) => {
    while (performance.now() < end) {
      const md = new grpc.Metadata();
      if (t.tokens.length) md.set('authorization', `Bearer ${t.tokens[next++ % t.tokens.length]}`);
      const started = performance.now();
      const err = await new Promise<grpc.ServiceError | null>((resolve) => client.ModelInfer(t.request, md, { deadline: Date.now() + 10_000 }, resolve));
      latencies.push(performance.now() - started);
      if (err) {
        if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) errors++;
        else non2xx++;
      }
    }
  };
  try {
    await Promise.all(clients.map(loop));
  } finally {
    for (const c of clients) c.close();
  }
  return closedLoopFigures(name, run, latencies, seconds, non2xx, errors);
}
