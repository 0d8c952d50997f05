// The long soak of issue #14 (docs/reliability.md): 10,000 WebGPU runs of mobilenet_v2 with alternating input
// sizes and output locations, and 1,000 session create/release cycles; npm test runs the short version of the
// same file. Options: -t <name filter> picks one of the two (e.g. -t cycles); EDGEKIT_SOAK_RUNS=N shortens the runs.
import { spawnSync } from 'node:child_process';

const r = spawnSync('npx', ['vitest', 'run', 'tests/reliability/soak.test.ts', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, EDGEKIT_SOAK: 'full' },
});
process.exit(r.status ?? 1);
