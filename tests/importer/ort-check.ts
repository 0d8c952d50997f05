import { exportOnnx, importOnnx, type ImportedModel } from '../../importers/onnx/index.js';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { allClose } from '../helpers/compare.js';
import { runModelOrt } from '../helpers/run-model.js';

/**
 * The importer's end-to-end check against onnxruntime-node: the original model runs in onnxruntime (the reference);
 * the imported graph runs on EdgeKit's CPU backend; the imported graph exported back to ONNX runs in onnxruntime
 * again. Both must match the reference. Returns readable problems, [] when everything agrees.
 */
export async function checkAgainstOrt(
  bytes: Uint8Array,
  feeds: Record<string, HostTensor>,
  tol = { rtol: 1e-5, atol: 1e-6 },
  /** Outputs not compared (where onnxruntime departs from the spec; the test checks them itself). */
  skip: string[] = [],
): Promise<{ problems: string[]; imported: ImportedModel }> {
  const expected = await runModelOrt(bytes, feeds);
  const imported = await importOnnx(bytes);
  const problems: string[] = [];
  const compare = (what: string, got: Record<string, HostTensor>) => {
    for (const [name, e] of Object.entries(expected)) {
      if (skip.includes(name)) continue;
      const a = got[name];
      if (!a) problems.push(`${what}: output '${name}' missing`);
      else {
        const r = allClose(a, e, tol);
        if (!r.ok) problems.push(`${what}: output '${name}': ${r.message}`);
      }
    }
  };
  compare('EdgeKit CPU', runGraphCpu(imported.graph, feeds));
  let exported: Uint8Array | undefined;
  try {
    exported = exportOnnx(imported.graph);
  } catch (e) {
    problems.push(`export failed: ${(e as Error).message}`);
  }
  if (exported) {
    try {
      compare('exported model in onnxruntime', await runModelOrt(exported, feeds));
    } catch (e) {
      problems.push(`onnxruntime could not run the exported model: ${(e as Error).message}`);
    }
  }
  return { problems, imported };
}
