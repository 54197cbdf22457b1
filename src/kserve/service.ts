import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO_PATH = fileURLToPath(new URL('../../proto/grpc_predict_v2.proto', import.meta.url));

// int64 as decimal strings: exact for every value, converted at the codec.
const definition = protoLoader.loadSync(PROTO_PATH, {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

interface InferencePackage {
  inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
}

const pkg = grpc.loadPackageDefinition(definition) as unknown as InferencePackage;

export const InferenceServiceClient = pkg.inference.GRPCInferenceService;
export const inferenceServiceDefinition: grpc.ServiceDefinition = InferenceServiceClient.service;

/** Method names of inference.GRPCInferenceService that cdsgate implements. */
export type InferenceRpc = 'ServerLive' | 'ServerReady' | 'ModelReady' | 'ServerMetadata' | 'ModelMetadata' | 'ModelInfer';
