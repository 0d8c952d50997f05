import { afterAll, describe, expect, it } from 'vitest';
import { listSupportedOps } from '../../importers/onnx/index.js';
import { runModelCpu } from '../helpers/run-model.js';
import {
  countGroup,
  loadExpectedPass,
  loadKnownFailures,
  summaryLine,
  writeExpectedPass,
  writeResults,
  type ResultsFile,
} from './expectations.js';
import { CONFORMANCE_ROOT, GROUPS, listCases, probeCase, runCase, type CaseInfo, type CaseResult } from './harness.js';

/**
 * ONNX backend conformance on the CPU backend: one test per case EdgeKit can load. Cases using an op the importer
 * does not map are "unsupported" (counted, not failures) unless expected-pass.txt says they must pass. A summary
 * line per group is printed on every run and the per-case outcome goes to tests/.results/conformance-cpu.json
 * (input of scripts/gen-ops-doc.mjs).
 */

const BACKEND = 'cpu';
const known = loadKnownFailures();
const expectedPass = loadExpectedPass();
const results = new Map<string, CaseResult>();
const ran = new Set<string>();

// Classify every case at collection time (import only) so each supported case gets its own test.
const groups: { group: (typeof GROUPS)[number]; cases: CaseInfo[]; supported: CaseInfo[] }[] = [];
for (const group of GROUPS) {
  const cases = listCases(group);
  const supported: CaseInfo[] = [];
  for (const info of cases) {
    const probe = await probeCase(info);
    if (probe) results.set(info.id, probe);
    else supported.push(info);
  }
  groups.push({ group, cases, supported });
}
const allCases = new Map(groups.flatMap((g) => g.cases.map((c) => [c.id, c] as const)));
const supportedCount = groups.reduce((n, g) => n + g.supported.length, 0);

describe(`ONNX conformance (${BACKEND})`, () => {
  it('has the ONNX test data installed', () => {
    expect(
      allCases.size,
      `no conformance cases under ${CONFORMANCE_ROOT}; run \`node scripts/setup-test-env.mjs\` (installs libonnx-testdata)`,
    ).toBeGreaterThan(0);
  });

  it('known-failures.json lists only existing, loadable cases, each with a reason', () => {
    for (const [id, reason] of Object.entries(known)) {
      expect(allCases.has(id), `known-failures.json: '${id}' is not a conformance case`).toBe(true);
      expect(typeof reason === 'string' && reason.trim().length >= 10, `known-failures.json: '${id}' needs a real reason`).toBe(true);
      expect(expectedPass.has(id), `'${id}' is in both known-failures.json and expected-pass.txt`).toBe(false);
      const probe = results.get(id);
      expect(probe?.status, `known failure '${id}' is no longer loadable (${probe?.message}); remove it from the list`).not.toBe('unsupported');
    }
  });

  for (const id of [...expectedPass].sort()) {
    const probe = results.get(id);
    if (!allCases.has(id) || probe?.status === 'unsupported') {
      it(`${id} (in expected-pass.txt) is supported`, () => {
        expect.fail(allCases.has(id) ? `${id} is in expected-pass.txt but is now ${probe?.message}` : `${id} in expected-pass.txt is not a conformance case`);
      });
    }
  }

  for (const { group, supported } of groups) {
    if (supported.length === 0) continue; // an empty describe is an error in vitest; the summary still counts the group
    describe(group, () => {
      for (const info of supported) {
        it(info.id, async () => {
          const r = await runCase(info.dir, runModelCpu, info);
          results.set(info.id, r);
          ran.add(info.id);
          const reason = known[info.id];
          if (reason !== undefined) {
            if (r.status === 'passed') {
              expect.fail(`${info.id} now passes but known-failures.json says "${reason}": remove it there and add it to expected-pass.txt`);
            }
            return;
          }
          if (r.status === 'unsupported' && !expectedPass.has(info.id)) return; // the runner lacks an op the importer maps
          if (r.status !== 'passed') expect.fail(`${info.id} (${info.ops.join(', ')}, opset ${info.opset}): ${r.message}`);
        });
      }
    });
  }

  afterAll(() => {
    const counts: ResultsFile['groups'] = {};
    for (const { group, cases } of groups) {
      counts[group] = countGroup(cases, results, known);
      console.log(summaryLine(BACKEND, group, counts[group]));
    }
    const file: ResultsFile = {
      backend: BACKEND,
      generatedAt: new Date().toISOString(),
      rtol: 1e-3,
      atol: 1e-7,
      supportedOps: listSupportedOps(),
      groups: counts,
      cases: groups.flatMap(({ group, cases }) =>
        cases.map((info) => {
          const r = results.get(info.id);
          const failed = r?.status === 'failed';
          const status = !r ? 'not-run' : failed && info.id in known ? 'known-failure' : r.status;
          return {
            id: info.id, group, ops: info.ops, opset: info.opset, status,
            knownFailure: known[info.id], message: r?.message, unsupportedOps: r?.unsupportedOps,
          };
        }),
      ),
    };
    writeResults(BACKEND, file);

    if (process.env.EDGEKIT_UPDATE_EXPECTED_PASS === '1') {
      if (ran.size < supportedCount) {
        console.log('expected-pass.txt not updated: run the whole conformance suite (no -t filter) to regenerate it');
      } else {
        const passing = [...results.values()].filter((r) => r.status === 'passed').map((r) => r.id);
        writeExpectedPass(passing);
        console.log(`expected-pass.txt: ${passing.length} cases`);
      }
    }
  });
});
