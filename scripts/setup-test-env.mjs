#!/usr/bin/env node
// Makes sure a machine can run EdgeKit's tests beyond `npm install`, on Debian 12 with Node 20 and npm:
//   - Debian packages: chromium (its SwiftShader Vulkan driver gives WebGPU in Node and headless browsers),
//     libvulkan1 (the Vulkan loader Dawn opens in Node),
//     libonnx-testdata (ONNX conformance cases), python3-torch/-torchvision/-sklearn (to regenerate fixtures);
//   - tests/fixtures/generated/*.onnx, the random-weight torchvision models (not committed; regenerated here).
// Idempotent and fast when everything is present: it only checks files. Runs as `npm test`'s pretest step.
//
// Usage: node scripts/setup-test-env.mjs [--dry-run] [--pretend-missing=a,b] [--pretend-uid=N]
//   --dry-run            say what would be installed or generated, change nothing
//   --pretend-missing    (testing the logic) treat these packages, or `generated`, as missing
//   --pretend-uid        (testing the logic) act as if running with this user id (0 = root)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = '/usr/lib/python3/dist-packages';
const PYTHON = '/usr/bin/python3';

/** Each Debian package and the files whose presence shows it is installed (what the tests actually use). */
const PACKAGES = [
  { name: 'chromium', files: ['/usr/bin/chromium', '/usr/lib/chromium/vk_swiftshader_icd.json'] },
  // The Vulkan loader Dawn (the `webgpu` package) opens; chromium only recommends it, and we install without
  // recommends, so a fresh machine lacks it and WebGPU in Node finds no adapter.
  { name: 'libvulkan1', files: [`/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/libvulkan.so.1`] },
  { name: 'libonnx-testdata', files: [`${DIST}/onnx/backend/test/data/node`] },
  { name: 'python3-torch', files: [PYTHON, `${DIST}/torch/__init__.py`] },
  { name: 'python3-torchvision', files: [`${DIST}/torchvision/__init__.py`] },
  { name: 'python3-sklearn', files: [`${DIST}/sklearn/__init__.py`] },
];
const GENERATED = ['mobilenet_v2', 'resnet18', 'squeezenet1_1'].map((m) => join(ROOT, 'tests', 'fixtures', 'generated', `${m}.onnx`));
const FIXTURE_SCRIPT = join(ROOT, 'scripts', 'fixtures', 'make_fixtures.py');

function parseArgs(argv) {
  const opts = { dryRun: false, pretendMissing: new Set(), uid: process.getuid?.() ?? -1 };
  for (const a of argv) {
    if (a === '--dry-run') opts.dryRun = true;
    else if (a.startsWith('--pretend-missing=')) a.slice(18).split(',').filter(Boolean).forEach((x) => opts.pretendMissing.add(x));
    else if (a.startsWith('--pretend-uid=')) opts.uid = Number(a.slice(14));
    else if (a === '--help' || a === '-h') {
      console.log('Usage: node scripts/setup-test-env.mjs [--dry-run] [--pretend-missing=pkg,generated] [--pretend-uid=N]');
      process.exit(0);
    } else {
      console.error(`setup-test-env: unknown argument ${a}`);
      process.exit(2);
    }
  }
  return opts;
}

function run(cmd, args, opts, env = {}) {
  const line = [...Object.entries(env).map(([k, v]) => `${k}=${v}`), cmd, ...args].join(' ');
  if (opts.dryRun) {
    console.log(`setup-test-env: would run: ${line}`);
    return;
  }
  console.log(`setup-test-env: ${line}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env }, cwd: ROOT });
  if (r.status !== 0) {
    console.error(`setup-test-env: \`${line}\` failed (${r.error?.message ?? `exit ${r.status}`}).`);
    process.exit(1);
  }
}

function installPackages(missing, opts) {
  const list = missing.join(' ');
  const install = `apt-get install -y --no-install-recommends ${list}`;
  if (opts.uid !== 0) {
    console.error(
      `setup-test-env: the tests need Debian packages that are not installed: ${list}.\n` +
        `Install them as root, then run the tests again:\n\n` +
        `  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive ${install}\n`,
    );
    process.exit(1);
  }
  if (!existsSync('/usr/bin/apt-get') && !opts.dryRun) {
    console.error(`setup-test-env: missing packages (${list}) and no apt-get on this machine; the test setup expects Debian 12.`);
    process.exit(1);
  }
  run('apt-get', ['update'], opts);
  run('apt-get', ['install', '-y', '--no-install-recommends', ...missing], opts, { DEBIAN_FRONTEND: 'noninteractive' });
  if (!opts.dryRun) {
    const still = PACKAGES.filter((p) => missing.includes(p.name) && !p.files.every((f) => existsSync(f)));
    if (still.length) {
      console.error(`setup-test-env: installed, but still missing files of: ${still.map((p) => p.name).join(', ')}.`);
      process.exit(1);
    }
  }
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const missing = PACKAGES.filter((p) => opts.pretendMissing.has(p.name) || !p.files.every((f) => existsSync(f))).map((p) => p.name);
  if (missing.length) installPackages(missing, opts);

  const absent = GENERATED.filter((f) => opts.pretendMissing.has('generated') || !existsSync(f));
  if (absent.length) {
    console.log(`setup-test-env: generating ${absent.length} random-weight torchvision model(s) (about a minute)`);
    run(PYTHON, [FIXTURE_SCRIPT, '--models-only'], opts);
    if (!opts.dryRun) {
      const still = GENERATED.filter((f) => !existsSync(f));
      if (still.length) {
        console.error(`setup-test-env: the fixture script did not produce ${still.join(', ')}.`);
        process.exit(1);
      }
    }
  }
  if (!missing.length && !absent.length) console.log('setup-test-env: test environment complete');
  else if (opts.dryRun) console.log('setup-test-env: dry run, nothing changed');
}

main();
