import type { OpAdapter } from './adapter.js';

/** Highest default-domain opset EdgeKit imports. */
export const MAX_OPSET = 21;
/** Lowest default-domain opset EdgeKit imports (older models: re-export, or convert with onnx.version_converter). */
export const MIN_OPSET = 7;

/**
 * Ops whose node is already in IR (newest-opset) form over [since, MAX_OPSET]: every version change in that range
 * only added attributes/types with backward-compatible defaults. `since` is the op's first version ≥ MIN_OPSET.
 */
const DIRECT: [string, number][] = [
  // unary elementwise
  ['Relu', 7], ['LeakyRelu', 7], ['Elu', 7], ['Selu', 7], ['Sigmoid', 7], ['HardSigmoid', 7], ['Tanh', 7],
  ['Softplus', 7], ['Softsign', 7], ['Exp', 7], ['Log', 7], ['Sqrt', 7], ['Neg', 7], ['Abs', 7], ['Reciprocal', 7],
  ['Floor', 7], ['Ceil', 7], ['Sin', 7], ['Cos', 7], ['Tan', 7], ['Asin', 7], ['Acos', 7], ['Atan', 7], ['Not', 7],
  ['Sinh', 9], ['Cosh', 9], ['Asinh', 9], ['Acosh', 9], ['Atanh', 9], ['Erf', 9], ['Sign', 9], ['IsNaN', 9], ['Shrink', 9],
  ['IsInf', 10], ['ThresholdedRelu', 10], ['Round', 11], ['Celu', 12], ['HardSwish', 14], ['Mish', 18], ['Gelu', 20],
  // binary / variadic elementwise (opset 7 introduced multidirectional broadcasting for the binary ops)
  ['Add', 7], ['Sub', 7], ['Mul', 7], ['Div', 7], ['Pow', 7], ['PRelu', 7], ['Equal', 7], ['Less', 7], ['Greater', 7],
  ['And', 7], ['Or', 7], ['Xor', 7], ['Min', 7], ['Max', 7], ['Sum', 7], ['Mean', 7], ['Where', 9], ['Mod', 10],
  ['LessOrEqual', 12], ['GreaterOrEqual', 12],
  // linear algebra, convolution, pooling, normalization
  ['MatMul', 7], ['Gemm', 7], ['Conv', 7], ['ConvTranspose', 7], ['MaxPool', 7], ['AveragePool', 7],
  ['GlobalAveragePool', 7], ['GlobalMaxPool', 7], ['LpPool', 7], ['GlobalLpPool', 7], ['InstanceNormalization', 7],
  ['BatchNormalization', 14], ['LayerNormalization', 17], ['GroupNormalization', 21],
  // softmax family and reductions in their newest form
  ['Softmax', 13], ['LogSoftmax', 13], ['Hardmax', 13], ['ArgMax', 7], ['ArgMin', 7], ['CumSum', 11], ['TopK', 10],
  ['ReduceSum', 13], ['ReduceMean', 18], ['ReduceMax', 18], ['ReduceMin', 18], ['ReduceProd', 18], ['ReduceL1', 18],
  ['ReduceL2', 18], ['ReduceLogSum', 18], ['ReduceLogSumExp', 18], ['ReduceSumSquare', 18],
  // tensor plumbing
  ['Flatten', 7], ['Reshape', 7], ['Transpose', 7], ['Squeeze', 13], ['Unsqueeze', 13], ['Concat', 7],
  ['Slice', 10], ['Gather', 7], ['GatherElements', 11], ['Expand', 8], ['Tile', 7], ['Pad', 11], ['DepthToSpace', 7],
  ['SpaceToDepth', 7], ['Identity', 7], ['Dropout', 12], ['Shape', 7], ['Size', 7], ['ConstantOfShape', 9],
  ['Cast', 7], ['CastLike', 15], ['Range', 11], ['Clip', 11],
];

export const DIRECT_ADAPTERS: OpAdapter[] = DIRECT.map(([op, since]) => ({ op, since, until: MAX_OPSET }));
