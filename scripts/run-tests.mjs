// Runs every test suite (vitest) and ends with one plain summary line, "tests: N passed, N failed, N skipped".
// GPU suites run on SwiftShader when the machine has no GPU (tests/helpers/webgpu-env.ts); they never skip quietly.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';

const out = 'tests/.results/vitest.json';
mkdirSync('tests/.results', { recursive: true });
rmSync(out, { force: true });
const r = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, FORCE_COLOR: process.env.CI ? '0' : process.env.FORCE_COLOR },
});
let passed = 0, failed = 0, skipped = 0;
try {
  const j = JSON.parse(readFileSync(out, 'utf8'));
  passed = j.numPassedTests;
  failed = j.numFailedTests + (j.numFailedTestSuites ?? 0);
  skipped = j.numPendingTests + j.numTodoTests;
} catch {
  console.error('run-tests: vitest wrote no results; see its output above.');
  process.exit(r.status || 1);
}
console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(r.status ?? 1);
