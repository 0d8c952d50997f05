import type { OpAdapter } from './adapter.js';

/** Highest default-domain opset EdgeKit imports. */
export const MAX_OPSET = 23;
/** Lowest default-domain opset EdgeKit imports (opset 1 forms are rewritten where they differ). */
export const MIN_OPSET = 1;

/**
 * Ops whose node is already in IR (newest-opset) form over [since, MAX_OPSET]: every version change in that range
 * only added attributes, inputs or types with backward-compatible defaults. `since` is the op's first version with
 * that form (versions before it are rewritten by the legacy-*.ts adapters, or unsupported).
 */
const DIRECT: [string, number][] = [
  // unary elementwise (version 1 of many had the `consumed_inputs` optimization hint, dropped in 6)
  ['Softplus', 1], ['Softsign', 1], ['Not', 1],
  ['Relu', 6], ['LeakyRelu', 6], ['Elu', 6], ['Selu', 6], ['Sigmoid', 6], ['HardSigmoid', 6], ['Tanh', 6], ['Exp', 6],
  ['Log', 6], ['Sqrt', 6], ['Neg', 6], ['Abs', 6], ['Reciprocal', 6], ['Floor', 6], ['Ceil', 6],
  ['Sin', 7], ['Cos', 7], ['Tan', 7], ['Asin', 7], ['Acos', 7], ['Atan', 7],
  ['Sinh', 9], ['Cosh', 9], ['Asinh', 9], ['Acosh', 9], ['Atanh', 9], ['Erf', 9], ['Sign', 9], ['IsNaN', 9], ['Shrink', 9],
  ['IsInf', 10], ['ThresholdedRelu', 10], ['Round', 11], ['Celu', 12], ['HardSwish', 14], ['Mish', 18], ['Gelu', 20],
  // binary / variadic elementwise (opset 7 replaced the broadcast/axis attributes by multidirectional broadcasting)
  ['Add', 7], ['Sub', 7], ['Mul', 7], ['Div', 7], ['Pow', 7], ['PRelu', 7], ['Equal', 7], ['Less', 7], ['Greater', 7],
  ['And', 7], ['Or', 7], ['Xor', 7], ['Min', 6], ['Max', 6], ['Sum', 6], ['Mean', 6], ['Where', 9], ['Mod', 10],
  ['LessOrEqual', 12], ['GreaterOrEqual', 12],
  // linear algebra, convolution, pooling, normalization
  ['MatMul', 1], ['Gemm', 7], ['Conv', 1], ['ConvTranspose', 1], ['MaxPool', 1], ['AveragePool', 1],
  ['GlobalAveragePool', 1], ['GlobalMaxPool', 1], ['LpPool', 2], ['GlobalLpPool', 2], ['InstanceNormalization', 6],
  ['BatchNormalization', 14], ['LayerNormalization', 17], ['GroupNormalization', 21],
  // softmax family and reductions in their newest form
  ['Softmax', 13], ['LogSoftmax', 13], ['Hardmax', 13], ['ArgMax', 1], ['ArgMin', 1], ['CumSum', 11], ['TopK', 10],
  ['ReduceSum', 13], ['ReduceMean', 18], ['ReduceMax', 18], ['ReduceMin', 18], ['ReduceProd', 18], ['ReduceL1', 18],
  ['ReduceL2', 18], ['ReduceLogSum', 18], ['ReduceLogSumExp', 18], ['ReduceSumSquare', 18],
  // tensor plumbing
  ['Flatten', 1], ['Reshape', 5], ['Transpose', 1], ['Squeeze', 13], ['Unsqueeze', 13], ['Concat', 4],
  ['Slice', 10], ['Gather', 1], ['GatherElements', 11], ['Expand', 8], ['Tile', 6], ['Pad', 11], ['DepthToSpace', 1],
  ['SpaceToDepth', 1], ['Identity', 1], ['Dropout', 12], ['Shape', 1], ['Size', 1], ['ConstantOfShape', 9],
  ['Cast', 6], ['CastLike', 15], ['Range', 11], ['Clip', 11],
  // data-dependent sizes (Compress-11 only allowed a negative axis; NonZero-13 only added types)
  ['NonZero', 9], ['Compress', 9], ['NonMaxSuppression', 10], ['Unique', 11],
];

export const DIRECT_ADAPTERS: OpAdapter[] = DIRECT.map(([op, since]) => ({ op, since, until: MAX_OPSET }));
