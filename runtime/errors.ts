/**
 * Typed errors. Every error EdgeKit throws on purpose is an `EdgeKitError` with a stable `code`,
 * a message that says what happened and what to do, and (where useful) structured details.
 * The SDK re-exports these; the worker boundary re-creates them from `{ name, code, message, details }`.
 */
export type EdgeKitErrorCode =
  | 'MODEL_FORMAT'
  | 'INVALID_GRAPH'
  | 'UNSUPPORTED_OP'
  | 'SHAPE_MISMATCH'
  | 'DTYPE_MISMATCH'
  | 'INVALID_ARGUMENT'
  | 'ALLOCATION_LIMIT'
  | 'OUT_OF_MEMORY'
  | 'TENSOR_DISPOSED'
  | 'SESSION_RELEASED'
  | 'NO_WEBGPU'
  | 'NO_ADAPTER'
  | 'MISSING_FEATURE'
  | 'LIMIT_EXCEEDED'
  | 'DEVICE_LOST'
  | 'INTERNAL'
  | 'CANCELLED'
  | 'QUEUE_FULL'
  | 'NON_FINITE';

export class EdgeKitError extends Error {
  readonly code: EdgeKitErrorCode;
  readonly details: Record<string, unknown>;
  constructor(code: EdgeKitErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    // Subclasses set their own name: class names do not survive minification (ours or the user's bundler).
    this.name = 'EdgeKitError';
    this.code = code;
    this.details = details;
  }
}

/** The bytes are not a readable ONNX model (truncated, not protobuf, not a ModelProto, bad tensor payloads). */
export class ModelFormatError extends EdgeKitError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('MODEL_FORMAT', message, details, options);
    this.name = 'ModelFormatError';
  }
}

/** The model decodes but its graph is not valid: a cycle, a value used but never produced, duplicate producers. */
export class InvalidGraphError extends EdgeKitError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('INVALID_GRAPH', message, details);
    this.name = 'InvalidGraphError';
  }
}

export interface UnsupportedNode {
  op: string;
  domain: string;
  opset: number;
  node: string;
  reason?: string;
}

/**
 * What to do about unsupported nodes, from what is actually wrong with them: re-exporting "with a different opset"
 * helps only where the opset is the problem, and never for an op inside an If/Loop/Scan body (the control-flow
 * node is supported; the op in its body is not).
 */
function unsupportedHint(nodes: readonly UnsupportedNode[]): string {
  const why = (re: RegExp) => nodes.some((n) => re.test(n.reason ?? ''));
  const out: string[] = [];
  const nested = nodes.map((n) => /inside the (If|Loop|Scan) body of node '(.*)'/.exec(n.reason ?? '')).find(Boolean);
  if (nested) {
    out.push(
      `The ${nested[1]} node '${nested[2]}' itself is supported; the op inside its body is not. Replace that op in the branch or loop body, ` +
        'or export the model so the branch is resolved at export time (trace instead of script).',
    );
  }
  if (why(/opset \d+ is outside/)) out.push('Re-export the model with an opset in the range the reason gives (torch.onnx.export(..., opset_version=17)).');
  if (why(/at opset\(s\)/)) out.push('Re-export the model with one of the opsets the reason names for that op.');
  if (why(/domain '.*' is not supported/)) out.push('Ops of other domains have no implementation in EdgeKit: export them as standard ONNX ops.');
  if (!out.length || nodes.some((n) => !n.reason || /^inside the/.test(n.reason))) out.push('Replace these ops with supported ones.');
  return `${out.join(' ')} docs/ops.md lists every supported op and opset.`;
}

/** One error for the whole model, listing every node EdgeKit cannot run, raised before any weight is uploaded. */
export class UnsupportedOpError extends EdgeKitError {
  readonly nodes: UnsupportedNode[];
  constructor(nodes: UnsupportedNode[], hint = '') {
    const list = nodes
      .slice(0, 20)
      .map((n) => `  - ${n.domain || 'ai.onnx'}::${n.op} (opset ${n.opset}) at node '${n.node}'${n.reason ? `: ${n.reason}` : ''}`)
      .join('\n');
    const more = nodes.length > 20 ? `\n  ... and ${nodes.length - 20} more` : '';
    super(
      'UNSUPPORTED_OP',
      `The model uses ${nodes.length} node(s) EdgeKit cannot run:\n${list}${more}\n` +
        (hint || unsupportedHint(nodes)),
      { nodes },
    );
    this.name = 'UnsupportedOpError';
    this.nodes = nodes;
  }
}

export class ShapeError extends EdgeKitError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('SHAPE_MISMATCH', message, details);
    this.name = 'ShapeError';
  }
}

export class DTypeError extends EdgeKitError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('DTYPE_MISMATCH', message, details);
    this.name = 'DTypeError';
  }
}

export class InvalidArgumentError extends EdgeKitError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('INVALID_ARGUMENT', message, details);
    this.name = 'InvalidArgumentError';
  }
}

/** A tensor would be larger than the configured limit (or its element count overflows). */
export class AllocationLimitError extends EdgeKitError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('ALLOCATION_LIMIT', message, details);
    this.name = 'AllocationLimitError';
  }
}

export class OutOfMemoryError extends EdgeKitError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('OUT_OF_MEMORY', message, details, options);
    this.name = 'OutOfMemoryError';
  }
}

export class DisposedTensorError extends EdgeKitError {
  constructor(what = 'tensor') {
    super('TENSOR_DISPOSED', `This ${what} was disposed and its data released; create a new one instead of reusing it.`);
    this.name = 'DisposedTensorError';
  }
}

export class SessionReleasedError extends EdgeKitError {
  constructor() {
    super('SESSION_RELEASED', 'This session was released; create a new InferenceSession to run the model again.');
    this.name = 'SessionReleasedError';
  }
}

export type DeviceErrorCode = 'NO_WEBGPU' | 'NO_ADAPTER' | 'MISSING_FEATURE' | 'LIMIT_EXCEEDED' | 'DEVICE_LOST';

/** WebGPU is missing, an adapter lacks a feature or limit the model needs, or the device was lost. */
export class DeviceError extends EdgeKitError {
  constructor(code: DeviceErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
    this.name = 'DeviceError';
  }
}

export class InternalError extends EdgeKitError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('INTERNAL', `${message} (this is a bug in EdgeKit; please report it with the model)`, details, options);
    this.name = 'InternalError';
  }
}

const byName: Record<string, new (...args: never[]) => EdgeKitError> = {
  ModelFormatError, InvalidGraphError, UnsupportedOpError, ShapeError, DTypeError, InvalidArgumentError,
  AllocationLimitError, OutOfMemoryError, DisposedTensorError, SessionReleasedError, DeviceError, InternalError,
};

/** Serializable form, for crossing a worker boundary. */
export function errorToPlain(e: unknown): { name: string; code: string; message: string; details: Record<string, unknown> } {
  if (e instanceof EdgeKitError) return { name: e.name, code: e.code, message: e.message, details: e.details };
  const err = e instanceof Error ? e : new Error(String(e));
  return { name: err.name, code: 'INTERNAL', message: err.message, details: {} };
}

/** Re-creates the same error class on the other side of a worker boundary. */
export function errorFromPlain(p: { name: string; code: string; message: string; details: Record<string, unknown> }): Error {
  const Ctor = byName[p.name];
  if (!Ctor) return Object.assign(new Error(p.message), { name: p.name });
  const e = Object.create(Ctor.prototype) as EdgeKitError;
  Object.assign(e, { name: p.name, message: p.message, code: p.code, details: p.details });
  if (p.name === 'UnsupportedOpError') Object.assign(e, { nodes: p.details.nodes ?? [] });
  return e;
}

/** Why a scheduled request was cancelled: its AbortSignal fired, or a newer request replaced it in a 'latest-only' queue. */
export type CancelReason = 'aborted' | 'superseded';

/**
 * A scheduled request (runtime/scheduler) was cancelled before its result reached the caller. A queued request never
 * ran; a running one ran to the end and its result was discarded (`details.running` says which).
 */
export class CancelledError extends EdgeKitError {
  constructor(reason: CancelReason, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(
      'CANCELLED',
      reason === 'superseded'
        ? "This request was replaced by a newer one in a 'latest-only' queue before it ran; only the latest frame is computed."
        : details.running
          ? 'This request was cancelled through its AbortSignal while it ran; it finished and its result was discarded.'
          : 'This request was cancelled through its AbortSignal before it ran.',
      { ...details, reason },
      options,
    );
    this.name = 'CancelledError';
  }
  /** A getter over `details`, so the value survives the worker boundary (errorFromPlain). */
  get reason(): CancelReason {
    return this.details.reason as CancelReason;
  }
}

/** Too many requests are waiting (runtime/scheduler's bound on pending requests): back off and submit again later. */
export class QueueFullError extends EdgeKitError {
  constructor(limit: number, details: Record<string, unknown> = {}) {
    super(
      'QUEUE_FULL',
      `${limit} requests are already waiting${details.lane ? ` (queue '${String(details.lane)}')` : ''}; wait for some to finish before ` +
        "submitting more, raise maxPending, or use a 'latest-only' queue for streams of frames.",
      { ...details, limit },
    );
    this.name = 'QueueFullError';
  }
}

Object.assign(byName, { CancelledError, QueueFullError });
