import type { ModelPolicy } from '../auth/policy.js';
import { parseScope } from '../auth/smart-scopes.js';
import type { GatewayConfig } from './schema.js';

type ModelRouteConfig = GatewayConfig['models'][string];

/**
 * One configured model as every stage needs it, worked out once at startup:
 * the pipeline reads its policy, patient input, PHI inputs and data class;
 * the router its pool, hedging and coalescing. Nothing re-derives these per request.
 */
export interface CompiledRoute {
  model: string;
  pool: string;
  policy: ModelPolicy;
  /** The input naming the patient a request concerns (SMART launch context), if any. */
  patientInput?: string;
  phiInputs: ModelRouteConfig['phiInputs'];
  /** Some input is free text or FHIR: describing a request for the audit record costs real time (the text redactor). */
  redactsText: boolean;
  receives: ModelRouteConfig['receives'];
  hedging?: NonNullable<ModelRouteConfig['hedging']>;
  /** Rows one node call may carry when concurrent requests are joined (routing/coalescer.ts); undefined: never joined. */
  coalesceRows?: number;
}

export type CompiledRoutes = ReadonlyMap<string, CompiledRoute>;

export function compileRoutes(config: GatewayConfig): CompiledRoutes {
  const routes = new Map<string, CompiledRoute>();
  for (const [model, route] of Object.entries(config.models)) {
    const identifiers = Object.entries(route.phiInputs).filter(([, c]) => c === 'identifier').map(([name]) => name);
    const patientInput = route.patientInput ?? (identifiers.length === 1 ? identifiers[0] : undefined);
    routes.set(model, {
      model,
      pool: route.pool,
      policy: {
        model, allowRoles: route.allowRoles, purposes: route.purposes, breakTheGlassRoles: route.breakTheGlass?.allowRoles,
        // The schema checked every scope parses.
        ...(route.scopes ? { scopes: route.scopes.map((t) => parseScope(t)!) } : {}),
      },
      ...(patientInput ? { patientInput } : {}),
      phiInputs: route.phiInputs,
      redactsText: Object.values(route.phiInputs).some((c) => c === 'text' || c === 'fhir'),
      receives: route.receives,
      ...(route.hedging ? { hedging: route.hedging } : {}),
      ...(route.coalesce ? { coalesceRows: route.coalesce.maxRows } : {}),
    });
  }
  return routes;
}
