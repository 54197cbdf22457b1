/**
 * A node cannot run its models on the execution provider its configuration
 * asks for (exit status 3). In a module of its own, without onnxruntime-node,
 * so that the command line can recognise it while the gateway process, which
 * runs no model, never loads onnxruntime.
 */
export class ProviderError extends Error {
  override name = 'ProviderError';
}
