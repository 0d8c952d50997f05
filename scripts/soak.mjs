// The long soak of issue #14 (docs/reliability.md): 10,000 WebGPU runs of mobilenet_v2 with alternating input
// sizes and output locations, 1,000 session create/release cycles, and 200 cycles of a pool of two createWorker()
// workers (CPU sessions); npm test runs the short version of the same file.
//   npm run soak [-- -t mobilenet|'digits CNN'|'worker pool'] [--sizes 32,48] [--runs N] [--minutes M]
//                [--cycles N] [--worker-cycles N]
// -t <name filter> picks tests (vitest's option; 'cycles' picks both cycle soaks); --sizes sets mobilenet_v2's
// alternating input sizes (default 224,192: seconds a run on SwiftShader; 32,48 fits 10,000 runs in under an hour on
// a quiet machine); --runs sets the run count (EDGEKIT_SOAK_RUNS), --minutes a time budget for the runs on a shared
// machine (EDGEKIT_SOAK_MINUTES: the loop stops there, the end checks still apply to the runs made, and the log says
// how many that was); --cycles and --worker-cycles set the cycle counts (EDGEKIT_SOAK_CYCLES,
// EDGEKIT_SOAK_WORKER_CYCLES).
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const env = { ...process.env, EDGEKIT_SOAK: 'full' };
const rest = [];
const ours = { '--sizes': 'EDGEKIT_SOAK_SIZES', '--runs': 'EDGEKIT_SOAK_RUNS', '--cycles': 'EDGEKIT_SOAK_CYCLES', '--minutes': 'EDGEKIT_SOAK_MINUTES', '--worker-cycles': 'EDGEKIT_SOAK_WORKER_CYCLES' };
for (let i = 0; i < args.length; i++) {
  const name = ours[args[i]];
  if (!name) {
    rest.push(args[i]);
    continue;
  }
  const v = args[++i];
  if (v === undefined || !/^\d+(,\d+)*$/.test(v)) {
    console.error(`soak: ${args[i - 1]} needs a value (numbers, comma-separated for --sizes), got '${v ?? ''}'`);
    process.exit(2);
  }
  env[name] = v;
}
const r = spawnSync('npx', ['vitest', 'run', 'tests/reliability/soak.test.ts', ...rest], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
