// Builds the SDK twice from one source: a self-contained browser ESM bundle (dependencies included, no node:*
// imports) and a Node ESM build (dependencies external, file loading and the `webgpu` package wired in).
// Type declarations are emitted by `tsc` (see the build script).
import commonjs from '@rollup/plugin-commonjs';
import resolve from '@rollup/plugin-node-resolve';
import terser from '@rollup/plugin-terser';
import typescript from '@rollup/plugin-typescript';

const ts = () =>
  typescript({ tsconfig: './tsconfig.json', declaration: false, declarationMap: false, outDir: undefined, noEmitOnError: true, include: ['runtime/**/*.ts', 'importers/**/*.ts', 'quantize/**/*.ts', 'sdk/**/*.ts'] });

const onwarn = (w, warn) => {
  // protobufjs uses eval to probe for optional modules; harmless and expected.
  if (w.code === 'EVAL' || w.code === 'CIRCULAR_DEPENDENCY') return;
  warn(w);
};

export default [
  {
    input: { edgekit: 'sdk/index.ts' },
    // The text helpers import @huggingface/tokenizers and @huggingface/jinja dynamically: each becomes a chunk of its
    // own beside edgekit.js, fetched only by pages that tokenize (docs/generation.md has the sizes).
    output: { dir: 'dist/browser', format: 'es', sourcemap: true },
    // Minified: page weight is part of what users compare us on.
    plugins: [resolve({ browser: true, preferBuiltins: false }), commonjs(), ts(), terser({ ecma: 2022, module: true })],
    onwarn,
  },
  {
    // The module Worker entry (sdk/worker), self-contained like the bundle: createWorker() finds it beside edgekit.js.
    input: { worker: 'sdk/worker/browser-entry.ts' },
    output: { dir: 'dist/browser', format: 'es', sourcemap: true },
    plugins: [resolve({ browser: true, preferBuiltins: false }), commonjs(), ts(), terser({ ecma: 2022, module: true })],
    onwarn,
  },
  {
    input: { index: 'sdk/node.ts', cli: 'sdk/cli.ts', worker: 'sdk/worker/node-entry.ts' },
    output: { dir: 'dist/node', format: 'es', sourcemap: true, banner: (c) => (c.name === 'cli' ? '#!/usr/bin/env node' : '') },
    external: (id) => id.startsWith('node:') || /^(webgpu|onnx-proto|protobufjs|long|comlink|@huggingface\/tokenizers|@huggingface\/jinja)(\/|$)/.test(id),
    plugins: [ts()],
    onwarn,
  },
];
