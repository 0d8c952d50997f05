// Node module hooks that let a plain worker_threads worker (or a child process) import the repo's TypeScript sources
// in tests: tests/worker/worker-entry.mjs (worker suites, the worker soak), tests/fuzz/case-worker.mjs and the CLI
// test register them. Vitest transpiles TypeScript for test files, but a `new Worker()` started from a test is a
// bare Node thread that knows nothing of .ts. Two hooks, nothing else:
// - resolve: a relative './x.js' that does not exist beside its importer but './x.ts' does becomes the .ts (the
//   sources import each other by their .js names, as tsc's Bundler resolution expects);
// - load: a .ts file is transpiled, one file at a time, with TypeScript's transpileModule (the repo builds with
//   isolatedModules, so each file transpiles alone, as vitest does it). The output is cached on disk by a hash of
//   the source, and TypeScript itself is loaded only on a miss: the fuzz watchdog starts a fresh worker after each
//   hang and the soak starts hundreds, and on a loaded machine loading TypeScript and transpiling a few hundred
//   files costs tens of seconds.
// Packages and node: builtins resolve as usual.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CACHE = join(tmpdir(), 'edgekit-ts-hooks-cache');
let ts;

export async function resolve(specifier, context, next) {
  if ((specifier.startsWith('./') || specifier.startsWith('../')) && specifier.endsWith('.js') && context.parentURL?.startsWith('file:')) {
    const js = new URL(specifier, context.parentURL);
    if (!existsSync(fileURLToPath(js))) {
      const tsUrl = new URL(specifier.slice(0, -3) + '.ts', context.parentURL);
      if (existsSync(fileURLToPath(tsUrl))) return { url: tsUrl.href, format: 'module', shortCircuit: true };
    }
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  const path = fileURLToPath(url);
  const src = readFileSync(path, 'utf8');
  const cached = join(CACHE, createHash('sha1').update(path).update('\0').update(src).digest('hex') + '.js');
  if (existsSync(cached)) return { format: 'module', source: readFileSync(cached, 'utf8'), shortCircuit: true };
  ts ??= (await import('typescript')).default;
  const out = ts.transpileModule(src, {
    fileName: path,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, isolatedModules: true, useDefineForClassFields: true, esModuleInterop: true, sourceMap: false },
  }).outputText;
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  writeFileSync(tmp, out);
  renameSync(tmp, cached); // atomic: concurrent workers never read half a file
  return { format: 'module', source: out, shortCircuit: true };
}
