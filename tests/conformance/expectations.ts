import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CaseGroup, CaseInfo, CaseResult } from './harness.js';

/**
 * The two committed lists that keep the conformance suite honest, and the results file docs/ops.md is built from.
 * - known-failures.json: { "<group>/<case>": "why it fails" } — cases that run but are expected to fail.
 * - expected-pass.txt: one case id a line ('#' comments allowed) — cases that must keep passing; a case here that
 *   becomes unsupported or fails is a test failure, so the passing set can only grow.
 */

const HERE = dirname(fileURLToPath(import.meta.url));
export const KNOWN_FAILURES_FILE = join(HERE, 'known-failures.json');
export const EXPECTED_PASS_FILE = join(HERE, 'expected-pass.txt');
export const RESULTS_DIR = join(HERE, '..', '.results');

export function loadKnownFailures(): Record<string, string> {
  if (!existsSync(KNOWN_FAILURES_FILE)) return {};
  const raw = JSON.parse(readFileSync(KNOWN_FAILURES_FILE, 'utf8')) as unknown;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`${KNOWN_FAILURES_FILE} must be a JSON object { "<group>/<case>": "reason" }`);
  }
  return raw as Record<string, string>;
}

export function loadExpectedPass(): Set<string> {
  if (!existsSync(EXPECTED_PASS_FILE)) return new Set();
  return new Set(
    readFileSync(EXPECTED_PASS_FILE, 'utf8')
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean),
  );
}

export function writeExpectedPass(ids: Iterable<string>): void {
  const header =
    '# ONNX conformance cases that must pass on the CPU backend (tests/conformance/conformance.test.ts).\n' +
    '# One <group>/<case> a line. Regenerate after making more cases pass:\n' +
    '#   EDGEKIT_UPDATE_EXPECTED_PASS=1 npx vitest run tests/conformance\n';
  writeFileSync(EXPECTED_PASS_FILE, header + [...ids].sort().join('\n') + '\n');
}

export interface GroupCounts {
  total: number;
  passed: number;
  knownFailures: number;
  failed: number;
  unsupported: number;
  notRun: number;
}

export function countGroup(cases: CaseInfo[], results: Map<string, CaseResult>, known: Record<string, string>): GroupCounts {
  const c: GroupCounts = { total: cases.length, passed: 0, knownFailures: 0, failed: 0, unsupported: 0, notRun: 0 };
  for (const info of cases) {
    const r = results.get(info.id);
    if (!r) c.notRun++;
    else if (r.status === 'passed') c.passed++;
    else if (r.status === 'unsupported') c.unsupported++;
    else if (info.id in known) c.knownFailures++;
    else c.failed++;
  }
  return c;
}

/** e.g. `conformance (cpu): 612 passed, 14 known failures, 0 failed, 306 unsupported, of 932 node cases` */
export function summaryLine(backend: string, group: CaseGroup, c: GroupCounts): string {
  const notRun = c.notRun ? `, ${c.notRun} not run` : '';
  return (
    `conformance (${backend}): ${c.passed} passed, ${c.knownFailures} known failures, ${c.failed} failed, ` +
    `${c.unsupported} unsupported${notRun}, of ${c.total} ${group} cases`
  );
}

export interface ResultsFile {
  backend: string;
  generatedAt: string;
  rtol: number;
  atol: number;
  supportedOps: { op: string; domain: string; opsets: [number, number] }[];
  groups: Record<string, GroupCounts>;
  cases: {
    id: string;
    group: CaseGroup;
    ops: string[];
    opset: number;
    status: string;
    knownFailure?: string;
    message?: string;
    /** `Op (opset N)` entries of the UnsupportedOpError, for unsupported cases. */
    unsupportedOps?: string[];
  }[];
}

export function writeResults(backend: string, file: ResultsFile): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `conformance-${backend}.json`);
  writeFileSync(path, JSON.stringify(file, null, 1) + '\n');
  return path;
}
