import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/**
 * Every value import (`import … from`, `export … from`, bare `import '…'`) of a module, as written: not
 * `import type` (erased by the compiler) and not `await import()` (loaded only when that code runs, such as the
 * NER model a configuration may ask for).
 */
function valueImports(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(/^\s*(?:import|export)\s+(type\s+)?[^;'"]*?\s+from\s+'([^']+)'/gm)) if (!m[1]) found.push(m[2]!);
  for (const m of source.matchAll(/^\s*import\s+'([^']+)'/gm)) found.push(m[1]!);
  return found;
}

/** Modules under src/ reached from `entries` by value imports, and the packages they import. */
function reach(entries: string[]): { modules: Set<string>; packages: Map<string, string> } {
  const modules = new Set<string>(), packages = new Map<string, string>();
  const queue = entries.map((e) => join(SRC, e));
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (modules.has(file)) continue;
    modules.add(file);
    for (const spec of valueImports(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
      else if (!spec.startsWith('node:')) packages.set(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!, relative(SRC, file));
    }
  }
  return { modules, packages };
}

describe('layering: what the gateway process loads', () => {
  it('finds value imports and skips type-only and dynamic ones', () => {
    expect(valueImports(`import { a,\n  b } from './x.js';\nimport type { T } from './t.js';\nexport { c } from './c.js';\nimport './side.js';\nconst m = await import('./late.js');\nimport * as ort from 'onnxruntime-node';`))
      .toEqual(['./x.js', './c.js', 'onnxruntime-node', './side.js']);
  });

  it('the gateway never imports from src/node/', () => {
    const { modules } = reach(['gateway/server.ts', 'gateway/workers.ts']);
    expect(modules.size).toBeGreaterThan(20); // the walk followed the imports
    expect([...modules].map((f) => relative(SRC, f)).filter((f) => f.startsWith('node/'))).toEqual([]);
  });

  it('neither the command line nor the gateway loads onnxruntime or the node\'s worker pool', () => {
    // cdsgate's one entry point starts gateways and nodes alike: what it imports before choosing, every gateway loads.
    const { packages } = reach(['cli/main.ts', 'gateway/server.ts', 'gateway/workers.ts']);
    expect(packages.has('fastify')).toBe(true); // the walk saw the gateway's packages
    for (const runtime of ['onnxruntime-node', 'onnxruntime-common', 'piscina']) expect(packages.get(runtime), `${runtime} imported by ${packages.get(runtime)}`).toBeUndefined();
  });
});
