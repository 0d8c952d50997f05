import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { runModelWebGpu } from '../helpers/run-model.js';
import { loadExpectedPass } from '../conformance/expectations.js';
import { listCases, runCase, type CaseResult } from '../conformance/harness.js';

/**
 * The ONNX node conformance cases on the WebGPU backend, through the same harness as the CPU suite
 * (tests/conformance/harness.ts) and the public path a user takes: InferenceSession.create(bytes, { backend:
 * 'webgpu' }) then run, with the model's inputs as its file declares them (symbolic dims included). The
 * candidates are the cases the CPU backend passes. Cases listed in conformance-expected-pass.txt must pass;
 * the others may be unsupported (a node with no GPU kernel for its types) but never wrong unless
 * conformance-known-failures.json says why. Regenerate the list with EDGEKIT_UPDATE_GPU_EXPECTED_PASS=1.
 */

const HERE = 'tests/webgpu';
const EXPECTED_FILE = join(HERE, 'conformance-expected-pass.txt');
const KNOWN_FILE = join(HERE, 'conformance-known-failures.json');

const cpuPass = loadExpectedPass();
const candidates = listCases('node').filter((c) => cpuPass.has(c.id));
const expected = new Set(
  existsSync(EXPECTED_FILE) ? readFileSync(EXPECTED_FILE, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')) : [],
);
const known: Record<string, string> = existsSync(KNOWN_FILE) ? JSON.parse(readFileSync(KNOWN_FILE, 'utf8')) : {};
const results = new Map<string, CaseResult>();

// Fails the suite loudly when WebGPU cannot be brought up (no quiet skip); sessions then share this device.
beforeAll(async () => {
  await gpuForTests();
});

describe('ONNX conformance (webgpu)', () => {
  it('has candidate cases (the ONNX test data and the CPU expected-pass list)', () => {
    expect(candidates.length).toBeGreaterThan(100);
  });

  it('known failures have reasons and are candidates', () => {
    for (const [id, reason] of Object.entries(known)) {
      expect(candidates.some((c) => c.id === id), `${id} is not a candidate case`).toBe(true);
      expect(reason.length, `${id} needs a real reason`).toBeGreaterThan(10);
      expect(expected.has(id), `${id} is both expected to pass and a known failure`).toBe(false);
    }
  });

  for (const info of candidates) {
    it(info.id, async () => {
      const r = await runCase(info.dir, runModelWebGpu, info);
      results.set(info.id, r);
      if (known[info.id]) {
        if (r.status === 'passed') expect.fail(`${info.id} now passes; remove it from ${KNOWN_FILE}`);
        return;
      }
      if (r.status === 'unsupported' && !expected.has(info.id)) return;
      if (r.status !== 'passed') expect.fail(`${info.id} (${info.ops.join(', ')}): ${r.message}`);
    });
  }

  afterAll(() => {
    const count = (s: CaseResult['status']) => [...results.values()].filter((r) => r.status === s).length;
    if (process.env.EDGEKIT_LIST_UNSUPPORTED) for (const r of results.values()) if (r.status === 'unsupported') console.info(`${r.id}: ${r.message}`);
    console.info(`conformance webgpu node: ${count('passed')} passed, ${count('unsupported')} unsupported, ${count('failed')} failed of ${candidates.length} CPU-passing cases`);
    // For docs/ops.md (scripts/gen-ops-doc.mjs): per case, its ops and status on WebGPU. Written only for a whole run.
    if (results.size === candidates.length) {
      mkdirSync('tests/.results', { recursive: true });
      const cases = candidates.map((c) => ({ id: c.id, ops: c.ops, status: known[c.id] ? 'known-failure' : results.get(c.id)!.status, message: results.get(c.id)!.message }));
      writeFileSync('tests/.results/conformance-webgpu.json', JSON.stringify({ backend: 'webgpu', cases }, null, 1));
    }
    if (process.env.EDGEKIT_UPDATE_GPU_EXPECTED_PASS) {
      const pass = [...results.values()].filter((r) => r.status === 'passed').map((r) => r.id).sort();
      writeFileSync(EXPECTED_FILE, `# ONNX node conformance cases that must pass on the WebGPU backend (tests/webgpu/conformance.test.ts).\n# Regenerate: EDGEKIT_UPDATE_GPU_EXPECTED_PASS=1 npx vitest run tests/webgpu/conformance.test.ts\n${pass.join('\n')}\n`);
    }
  });
});
