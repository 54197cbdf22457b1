import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createNodeMetrics(nodeId: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ node: nodeId });
  collectDefaultMetrics({ register: registry, prefix: 'cdsgate_node_process_' });
  return {
    registry,
    executionProvider: new Gauge({ name: 'cdsgate_node_execution_provider', help: 'Execution provider in use (1 for the active one)', labelNames: ['provider', 'device', 'requested'], registers: [registry] }),
    modelReady: new Gauge({ name: 'cdsgate_node_model_ready', help: 'Model loaded and verified (1) or refused (0)', labelNames: ['model', 'version'], registers: [registry] }),
    inferences: new Counter({ name: 'cdsgate_node_inference_requests_total', help: 'Inference requests by outcome', labelNames: ['model', 'outcome'], registers: [registry] }),
    inferenceSeconds: new Histogram({ name: 'cdsgate_node_inference_duration_seconds', help: 'Time from request to response on the node', labelNames: ['model'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] }),
    executions: new Counter({ name: 'cdsgate_node_inference_executions_total', help: 'Model runs (with dynamic batching, requests ÷ executions is the average batch size)', labelNames: ['model'], registers: [registry] }),
    batchRequests: new Histogram({ name: 'cdsgate_node_batch_requests', help: 'Requests per model run (dynamic batching)', labelNames: ['model'], buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers: [registry] }),
    queueSeconds: new Histogram({ name: 'cdsgate_node_batch_queue_seconds', help: 'Time the oldest request of a batch waited before it ran', labelNames: ['model'], buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1], registers: [registry] }),
    computeSeconds: new Histogram({ name: 'cdsgate_node_compute_duration_seconds', help: 'session.run time per model run (a batch counts once)', labelNames: ['model'], buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] }),
    modelInstances: new Gauge({ name: 'cdsgate_node_model_instances', help: 'Worker threads that can run the model concurrently (its instances, or the shared workers)', labelNames: ['model'], registers: [registry] }),
    instanceExecutions: new Counter({ name: 'cdsgate_node_instance_executions_total', help: 'Model runs per instance (worker thread) of a model', labelNames: ['model', 'instance'], registers: [registry] }),
    queueDepth: new Gauge({ name: 'cdsgate_node_queue_depth', help: 'Requests waiting for a worker', registers: [registry] }),
    fileReloads: new Counter({ name: 'cdsgate_node_file_reloads_total', help: 'Watched TLS files that changed, by whether the change was applied or refused (the previous ones stay in force)', labelNames: ['file', 'result'], registers: [registry] }),
    handshakeFailures: new Counter({ name: 'cdsgate_node_tls_handshake_failures_total', help: 'Failed TLS handshakes', labelNames: ['listener', 'reason'], registers: [registry] }),
    deniedCallers: new Counter({ name: 'cdsgate_node_denied_callers_total', help: 'Calls refused because the client certificate is not on the allow-list', labelNames: ['listener'], registers: [registry] }),
  };
}
export type NodeMetrics = ReturnType<typeof createNodeMetrics>;
