import { it } from 'vitest';
import { runOrtNode, runCpuNode } from '../helpers/ort-single-node.js';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { attr, i64 } from '../helpers/ir-builder.js';

it('probe', async () => {
  for (const [n, m] of [[5, 8], [7, 4]]) {
    const X = tensorFromNumbers('float32', [1, 1, 1, n], Array.from({ length: n }, (_, i) => i));
    for (const nm of ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil']) {
      const attrs = { mode: attr('nearest'), nearest_mode: attr(nm), coordinate_transformation_mode: attr('asymmetric') };
      const r = await runOrtNode('Resize', attrs, [X, undefined, undefined, i64([1, 1, 1, m])]);
      const c = runCpuNode('Resize', attrs, [X, undefined, undefined, i64([1, 1, 1, m])]);
      console.log('P', n, m, nm, Array.from(r[0]!.data as Float32Array).join(','), 'ours', Array.from(c[0]!.data as Float32Array).join(','));
    }
  }
});
