/**
 * `npm run gpu:kit`: a folder (and a .tar.xz of it) that runs `cdsgate
 * gpu-check` — and `cdsgate start`, `cdsgate node` — on a GPU host with no
 * internet access and no Node.js. GPU hosts in hospitals are often exactly
 * that: built from an image, no registry, no compiler.
 *
 * The kit holds this machine's Node.js binary, the compiled gateway and node
 * (dist/), the model repository, the proto files, and the production
 * dependencies copied from this checkout's node_modules (so the kit runs what
 * was tested here), with onnxruntime-node cut down to the target platform's
 * binaries. If this checkout has the CUDA provider libraries (installed with
 * ONNXRUNTIME_NODE_INSTALL, README "GPU hosts"), they travel too; without
 * them the kit still proves the WebGPU provider.
 *
 * Usage: npm run gpu:kit [-- --out DIR]   (default .tmp/gpu-kit)
 * On the GPU host: tar xJf cdsgate-gpu-kit.tar.xz && cdsgate-gpu-kit/gpu-check
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { out: { type: 'string', default: join(ROOT, '.tmp', 'gpu-kit') } } });
const outDir = resolve(values.out!);
const kitName = 'cdsgate-gpu-kit';
const kit = join(outDir, kitName);
const platform = `${process.platform}/${process.arch}`;

if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('run "npm run build" first (npm run gpu:kit does)');
rmSync(kit, { recursive: true, force: true });
mkdirSync(join(kit, 'bin'), { recursive: true });

// The runtime: this Node.js (the version the tests ran on).
copyFileSync(process.execPath, join(kit, 'bin', 'node'));
chmodSync(join(kit, 'bin', 'node'), 0o755);

for (const item of ['dist', 'proto', 'package.json', 'package-lock.json', 'LICENSE']) {
  if (existsSync(join(ROOT, item))) cpSync(join(ROOT, item), join(kit, item), { recursive: true });
}
// The model repository: each model's config, card and pinned files.
for (const model of readdirSync(join(ROOT, 'models'))) {
  if (existsSync(join(ROOT, 'models', model, 'config.json'))) cpSync(join(ROOT, 'models', model), join(kit, 'models', model), { recursive: true });
}
// The text redactor's learned tagger (the gateway checks its pinned weights at startup).
cpSync(join(ROOT, 'models', 'phi-tagger'), join(kit, 'models', 'phi-tagger'), { recursive: true });

// Production dependencies only, as npm resolved them here. A nested package is copied with its parent.
const packages = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' })
  .split('\n').filter((p) => p.includes(`${join(ROOT, 'node_modules')}/`)).sort();
const copied: string[] = [];
for (const pkg of packages) {
  if (copied.some((parent) => pkg.startsWith(`${parent}/`))) continue;
  cpSync(pkg, join(kit, relative(ROOT, pkg)), { recursive: true, dereference: true });
  copied.push(pkg);
}
// onnxruntime-node ships every platform's binaries (~290 MB); keep the target's.
const ortBin = join(kit, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
for (const os of readdirSync(ortBin)) {
  for (const arch of readdirSync(join(ortBin, os))) {
    if (`${os}/${arch}` !== platform) rmSync(join(ortBin, os, arch), { recursive: true, force: true });
  }
  if (readdirSync(join(ortBin, os)).length === 0) rmSync(join(ortBin, os), { recursive: true });
}
const ortFiles = readdirSync(join(ortBin, platform));
const cuda = ortFiles.filter((f) => f.includes('providers_cuda') || f.includes('providers_shared'));

writeFileSync(join(kit, 'gpu-check'), `#!/bin/sh
# Proves the GPU path on this host: cdsgate gpu-check with the bundled Node.js.
here=$(cd "$(dirname "$0")" && pwd)
cd "$here" && exec "$here/bin/node" dist/cli/main.js gpu-check "$@"
`);
writeFileSync(join(kit, 'cdsgate'), `#!/bin/sh
# cdsgate with the bundled Node.js (start, node, gateway, certs, token, …).
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/bin/node" "$here/dist/cli/main.js" "$@"
`);
chmodSync(join(kit, 'gpu-check'), 0o755);
chmodSync(join(kit, 'cdsgate'), 0o755);
writeFileSync(join(kit, 'KIT.md'), `# cdsgate GPU kit

Built ${new Date().toISOString()} for ${platform} with Node.js ${process.version};
onnxruntime-node binaries: ${ortFiles.join(', ')}.
CUDA provider libraries: ${cuda.length ? cuda.join(', ') : 'not included (this kit proves WebGPU only; see the README, "GPU hosts")'}.

    ./gpu-check                 # providers, outputs vs CPU, timings, gateway round trip
    ./gpu-check --out /tmp/r    # where gpu-check.md and gpu-check.json go
    ./cdsgate start --provider cuda --devices 0,0

The host needs the NVIDIA driver; for WebGPU also the Vulkan loader
(libvulkan.so.1) and the driver's Vulkan ICD; for CUDA the CUDA runtime and
cuDNN the provider library names (gpu-check lists any it cannot find).
`);

const archive = join(outDir, `${kitName}.tar.xz`);
rmSync(archive, { force: true });
execFileSync('tar', ['-cf', archive, '--use-compress-program=xz -T0 -6', '-C', outDir, kitName], { stdio: 'inherit' });
const size = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const folderBytes = (p: string): number => (statSync(p).isDirectory() ? readdirSync(p).reduce((n, f) => n + folderBytes(join(p, f)), 0) : statSync(p).size);
process.stdout.write(`kit: ${kit} (${size(folderBytes(kit))})\narchive: ${archive} (${size(statSync(archive).size)})\n`
  + `CUDA provider libraries: ${cuda.length ? cuda.join(', ') : 'none (WebGPU and CPU only)'}\n`
  + `on the GPU host: tar xJf ${kitName}.tar.xz && ${kitName}/gpu-check\n`);
