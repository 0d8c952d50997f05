import type { GpuKernel } from '../program.js';
import { kernels as elementwise } from './elementwise.js';
import { kernels as matmul } from './matmul.js';
import { kernels as conv } from './conv.js';
import { kernels as pool } from './pool.js';
import { kernels as reduce } from './reduce.js';
import { kernels as normalization } from './normalization.js';
import { kernels as movement } from './movement.js';
import { kernels as gatherPad } from './gather-pad.js';
import { kernels as cast } from './cast.js';
import { kernels as resize } from './resize.js';
import { kernels as convTranspose } from './conv-transpose.js';
import { kernels as topK } from './top-k.js';
import { kernels as rnn } from './rnn.js';
import { kernels as indexing } from './indexing.js';
import { kernels as scatter } from './scatter.js';
import { kernels as generate } from './generate.js';
import { kernels as select } from './select.js';
import { kernels as nms } from './nms.js';
import { kernels as unique } from './unique.js';
import { GPU_TRAIN_KERNELS } from './train/index.js';
import { TRAIN_DOMAIN } from '../../../train/ops/common.js';
import { kernels as loss } from './loss.js';
import { kernels as optimizers } from './optimizers.js';
import { kernels as text, refusals as textRefusals } from './text.js';
import { kernels as random } from './random.js';
import { kernels as einsum } from './einsum.js';
import { kernels as layoutMath } from './layout-math.js';
import { kernels as vision } from './vision.js';
import { kernels as signal } from './signal.js';
import { kernels as contrib } from './contrib.js';
import { kernels as quantize } from './quantize.js';
import { kernels as quantMatMul } from './quant-matmul.js';
import { kernels as attention } from './attention.js';
import { kernels as matmulNBits } from './matmul-nbits.js';
import { kernels as qdqGemm } from './qdq-gemm.js';
import { kernels as qdqAdd } from './qdq-add.js';
import { kernels as histogram } from './histogram.js';

/** Every op with a WebGPU kernel, by IR op name (default domain). One file per op family. */
export const GPU_KERNELS: Readonly<Record<string, GpuKernel>> = Object.freeze({
  ...elementwise,
  ...matmul,
  ...conv,
  ...pool,
  ...reduce,
  ...normalization,
  ...movement,
  ...gatherPad,
  ...cast,
  ...resize,
  ...convTranspose,
  ...topK,
  ...rnn,
  ...indexing,
  ...scatter,
  ...generate,
  ...select,
  ...nms,
  ...unique,
  ...loss,
  ...optimizers,
  ...text,
  ...random,
  ...einsum,
  ...layoutMath,
  ...vision,
  ...signal,
  ...contrib,
  ...quantize,
  ...quantMatMul,
  ...attention,
  ...matmulNBits,
  ...qdqGemm,
  ...qdqAdd,
  ...histogram,
});

/** Default-domain ops that can never have a WebGPU kernel, with the reason the load-time error gives. */
export const GPU_REFUSALS: Readonly<Record<string, string>> = Object.freeze({ ...textRefusals });

/** The kernel for a node: default-domain ops from GPU_KERNELS, training ops ('edgekit.train') from GPU_TRAIN_KERNELS. */
export function gpuKernelFor(node: { op: string; domain: string }): GpuKernel | undefined {
  if (node.domain === '') return Object.hasOwn(GPU_KERNELS, node.op) ? GPU_KERNELS[node.op] : undefined;
  if (node.domain === TRAIN_DOMAIN) return Object.hasOwn(GPU_TRAIN_KERNELS, node.op) ? GPU_TRAIN_KERNELS[node.op] : undefined;
  return undefined;
}
