import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyError } from 'fastify';
import type { TensorLimits } from '../tensor/datatypes.js';
import { frameworkError, jsonBytes, sendError, type RestBody } from './rest-server.js';
import { CdsError, asCdsError, httpStatusOf, quote } from '../errors.js';
import type { CallContext, RestResponseLike } from './context.js';
import type { KServeHandlers } from './handlers.js';
import { binaryOutputChoice, inferRequestFromJson, inferResultToRest } from './rest-codec.js';
import { parametersToJson } from './types.js';

type ModelParams = { model: string; version?: string };

/**
 * The request property that holds its call context. A property rather than a
 * WeakMap keyed by request: V8's young-generation collector keeps alive every
 * value of a WeakMap that lives in the old generation until the entry is
 * cleared, so each context (and what it references) survived a collection it
 * should not have, and many were moved to the old generation only to die
 * there (measured under load: about a quarter fewer bytes promoted without it).
 */
const CONTEXT = 'cdsgateCallContext';

export interface RestBinding {
  /** `response` lets a door that can drop queued work (the node) notice a caller that went away. */
  context(request: FastifyRequest, response: RestResponseLike): CallContext;
  /** Called once per answered request (logging, metrics); never sees the body. */
  finished?(ctx: CallContext, route: string, status: number, model: string | undefined, error: CdsError | undefined): void;
  /** Bounds on a decoded request (tensor sizes, names, counts). */
  limits: TensorLimits;
}

/** Registers the KServe v2 REST routes on `app`, answering errors as {"error": "..."}. */
export function registerKServeRoutes(app: FastifyInstance, handlers: KServeHandlers, binding: RestBinding): void {
  app.decorateRequest(CONTEXT, null);
  const ctxOf = (req: FastifyRequest, reply: FastifyReply): CallContext => {
    const holder = req as unknown as Record<typeof CONTEXT, CallContext | null>;
    return (holder[CONTEXT] ??= binding.context(req, reply.raw));
  };

  const send = (reply: FastifyReply, req: FastifyRequest, route: string, model: string | undefined, status: number, body?: unknown): FastifyReply => {
    const ctx = ctxOf(req, reply);
    reply.code(status).header('x-request-id', ctx.requestId);
    if (body === undefined) reply.send();
    else if (Buffer.isBuffer(body)) reply.send(body);
    else reply.header('content-type', 'application/json').send(jsonBytes(body));
    // The log line and metrics once the answer is on its way: they are not on the caller's path.
    binding.finished?.(ctx, route, status, model, undefined);
    return reply;
  };

  const fail = (reply: FastifyReply, req: FastifyRequest, route: string, model: string | undefined, err: unknown): FastifyReply => {
    const error = asCdsError(err);
    const ctx = ctxOf(req, reply);
    sendError(reply, error, ctx.requestId);
    binding.finished?.(ctx, route, httpStatusOf(error.kind), model, error);
    return reply;
  };

  /**
   * Authentication before the body: a caller that fails it is answered now,
   * and the connection closed (lingering, so the answer arrives) instead of
   * reading a body nobody may send.
   */
  const authenticateFirst = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    if (!handlers.authenticate) return;
    const ctx = ctxOf(req, reply);
    await handlers.authenticate(ctx);
    if (!ctx.auth || !('error' in ctx.auth)) return;
    const { model, version } = req.params;
    reply.header('connection', 'close');
    try {
      await handlers.infer(ctx, model, version, () => { throw new CdsError('internal', 'unreachable: refused before decoding'); });
    } catch (err) {
      return fail(reply, req, 'infer', model, err);
    }
  };

  const probe = (route: string, check: (ctx: CallContext) => Promise<boolean>, what: string) =>
    async (req: FastifyRequest, reply: FastifyReply) => {
      try {
        return (await check(ctxOf(req, reply)))
          ? send(reply, req, route, undefined, 200)
          : fail(reply, req, route, undefined, new CdsError('unavailable', `${what} is not ready`));
      } catch (err) {
        return fail(reply, req, route, undefined, err);
      }
    };

  app.get('/v2/health/live', probe('live', (ctx) => handlers.live(ctx), 'server'));
  app.get('/v2/health/ready', probe('ready', (ctx) => handlers.ready(ctx), 'server'));

  app.get('/v2', async (req, reply) => {
    try {
      const m = await handlers.serverMetadata(ctxOf(req, reply));
      return send(reply, req, 'server_metadata', undefined, 200, { ...m, parameters: parametersToJson(m.parameters) });
    } catch (err) {
      return fail(reply, req, 'server_metadata', undefined, err);
    }
  });

  for (const prefix of ['/v2/models/:model', '/v2/models/:model/versions/:version']) {
    app.get<{ Params: ModelParams }>(prefix, async (req, reply) => {
      const { model, version } = req.params;
      try {
        const m = await handlers.modelMetadata(ctxOf(req, reply), model, version);
        return send(reply, req, 'model_metadata', model, 200, { ...m, parameters: parametersToJson(m.parameters) });
      } catch (err) {
        return fail(reply, req, 'model_metadata', model, err);
      }
    });
    app.get<{ Params: ModelParams }>(`${prefix}/ready`, async (req, reply) => {
      const { model, version } = req.params;
      try {
        return (await handlers.modelReady(ctxOf(req, reply), model, version))
          ? send(reply, req, 'model_ready', model, 200)
          : fail(reply, req, 'model_ready', model, new CdsError('unavailable', `model ${quote(model)} is not ready`));
      } catch (err) {
        return fail(reply, req, 'model_ready', model, err);
      }
    });
    app.post<{ Params: ModelParams }>(`${prefix}/infer`, { onRequest: authenticateFirst }, async (req, reply) => {
      const { model, version } = req.params;
      try {
        const body = req.body as RestBody | undefined;
        const result = await handlers.infer(ctxOf(req, reply), model, version, () => inferRequestFromJson(body?.json, model, version, binding.limits, body?.binary));
        const answer = inferResultToRest(result, binaryOutputChoice(body?.json));
        if ('json' in answer) return send(reply, req, 'infer', model, 200, answer.json);
        reply.headers({ 'content-type': 'application/octet-stream', 'inference-header-content-length': String(answer.headerLength) });
        return send(reply, req, 'infer', model, 200, answer.body);
      } catch (err) {
        return fail(reply, req, 'infer', model, err);
      }
    });
  }

  app.setNotFoundHandler((req, reply) => fail(reply, req, 'unknown', undefined, new CdsError('not_found', `no route ${quote(req.method, 16)} ${quote(req.url.split('?')[0], 80)}`)));

  // Framework-level rejections (body too large, malformed JSON, wrong content
  // type or encoding). Their own messages can quote the body, so answer with our words.
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const error = frameworkError(err);
    // The body was not (all) read: close the connection rather than parse what follows as a request.
    if (error.kind === 'payload_too_large' || error.kind === 'unsupported_media_type' || error.kind === 'request_timeout') reply.header('connection', 'close');
    return fail(reply, req, 'infer', undefined, error);
  });
}
