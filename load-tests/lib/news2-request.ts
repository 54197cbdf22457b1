/** The published NEWS2 chart example (aggregate score 10): the one request the benchmarks send to news2. */
export const NEWS2_CHART_ROW = [24, 93, 1, 105, 115, 0, 38.5];

/** As a KServe v2 REST JSON body. */
export const NEWS2_REST_BODY = { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: NEWS2_CHART_ROW }] };

/** As a gRPC ModelInfer request with raw tensor contents (what Triton's clients send). */
export const NEWS2_GRPC_REQUEST = {
  model_name: 'news2',
  inputs: [{ name: 'vitals', datatype: 'FP32', shape: ['1', '7'] }],
  raw_input_contents: [Buffer.from(Float32Array.from(NEWS2_CHART_ROW).buffer)],
};
