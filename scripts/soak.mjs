// The long soak of issue #14 (docs/reliability.md): 10,000 WebGPU runs of mobilenet_v2 with alternating input
// sizes and output locations, and 1,000 session create/release cycles (main-thread sessions and createWorker()
// sessions); npm test runs the short version of the same file.
//   npm run soak [-- -t mobilenet|cycles|workers] [--sizes 32,48] [--runs N] [--cycles N] [--minutes M]
// -t <name filter> picks one test (vitest's option); --sizes sets mobilenet_v2's alternating input sizes (default
// 224,192: seconds a run on SwiftShader; 32,48 fits 10,000 runs in well under an hour); --runs shortens or lengthens
// the runs (EDGEKIT_SOAK_RUNS), --cycles the create/release cycles (EDGEKIT_SOAK_CYCLES); --minutes is a time
// budget for the runs on a shared machine (EDGEKIT_SOAK_MINUTES): the loop stops there, the end checks still apply
// to the runs made, and the log says how many that was.
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const env = { ...process.env, EDGEKIT_SOAK: 'full' };
const rest = [];
const ours = { '--sizes': 'EDGEKIT_SOAK_SIZES', '--runs': 'EDGEKIT_SOAK_RUNS', '--cycles': 'EDGEKIT_SOAK_CYCLES', '--minutes': 'EDGEKIT_SOAK_MINUTES' };
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
