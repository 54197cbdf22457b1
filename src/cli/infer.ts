import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { InferenceServiceClient } from '../kserve/service.js';
import { inferRequestFromJson, inferResultToJson } from '../kserve/rest-codec.js';
import { inferRequestToGrpc, inferResultFromGrpc } from '../kserve/grpc-codec.js';
import type { ModelInferResponse } from '../kserve/messages.js';

export interface InferCall {
  address: string;
  serverName: string;
  ca: string;
  cert: string;
  key: string;
  token: string;
  model: string;
  /** A KServe v2 JSON inference request body. */
  body: string;
  timeoutMs: number;
}

/**
 * A minimal KServe gRPC client for operators: takes the same JSON body as the
 * REST door, sends it over gRPC with raw tensors, prints the JSON result.
 */
export async function inferOverGrpc(call: InferCall): Promise<string> {
  const request = inferRequestToGrpc(inferRequestFromJson(JSON.parse(call.body), call.model, undefined));
  const client = new InferenceServiceClient(call.address,
    grpc.credentials.createSsl(readFileSync(call.ca), readFileSync(call.key), readFileSync(call.cert)),
    { 'grpc.ssl_target_name_override': call.serverName }) as unknown as grpc.Client & {
      ModelInfer(r: unknown, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: ModelInferResponse) => void): void;
    };
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${call.token}`);
  try {
    const response = await new Promise<ModelInferResponse>((resolve, reject) =>
      client.ModelInfer(request, metadata, { deadline: Date.now() + call.timeoutMs }, (err, res) => (err ? reject(err) : resolve(res!))));
    return JSON.stringify(inferResultToJson(inferResultFromGrpc(response)));
  } catch (err) {
    const e = err as grpc.ServiceError;
    throw new Error(`gRPC ${grpc.status[e.code] ?? e.code}: ${e.details ?? e.message}`);
  } finally {
    client.close();
  }
}
