import { dispatchLinear, type Uniforms } from '../program.js';
import type { ShaderBuilder, UniformDecl } from '../wgsl/builder.js';

/**
 * Row reductions: the shared skeleton of Reduce*, ArgMax, the global pools, Softmax and the normalizations. A
 * tensor is seen as `rows` independent rows of `rowLen` elements: the kept dims index the row, the reduced dims
 * the element within it (both collapsed on the host, so a LayerNorm row is one contiguous run and ReduceSum over
 * axes [0, 2] of [A, B, C] is rows over B with elements over (A, C)).
 *
 * Two schedules, chosen at plan time by the row length (part of the cache key):
 * - 'thread': one invocation per row walks its elements (short rows: global pools, small softmaxes);
 * - 'group': one workgroup per row; lanes stride the row, then a shared-memory tree combines the lane results
 *   (long rows: a 1000-class softmax, LayerNorm over 768 features, a full-tensor sum).
 */
export interface RowView {
  rows: number;
  rowLen: number;
  keptShape: number[];
  keptStrides: number[];
  redShape: number[];
  redStrides: number[];
}

/** Rows of a contiguous tensor of `shape` reduced over `axes`. */
export function rowView(shape: readonly number[], axes: readonly number[]): RowView {
  const red = new Set(axes);
  const groups: { reduced: boolean; size: number; stride: number }[] = [];
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    const reduced = red.has(d);
    if (n !== 1) {
      const g = groups[0];
      // Neighbouring dims of the same kind merge (the tensor is contiguous, so they form one run).
      if (g && g.reduced === reduced && g.stride * g.size === stride) g.size *= n;
      else groups.unshift({ reduced, size: n, stride });
    }
    stride *= n;
  }
  const kept = groups.filter((g) => !g.reduced);
  const reducedGroups = groups.filter((g) => g.reduced);
  if (!kept.length) kept.push({ reduced: false, size: 1, stride: 0 });
  if (!reducedGroups.length) reducedGroups.push({ reduced: true, size: 1, stride: 0 });
  const prod = (gs: typeof kept) => gs.reduce((a, g) => a * g.size, 1);
  return {
    rows: prod(kept),
    rowLen: prod(reducedGroups),
    keptShape: kept.map((g) => g.size),
    keptStrides: kept.map((g) => g.stride),
    redShape: reducedGroups.map((g) => g.size),
    redStrides: reducedGroups.map((g) => g.stride),
  };
}

export type RowSchedule = 'thread' | 'group';

/** Lanes of a 'group' row (a power of two, for the tree). */
export const ROW_LANES = 64;
const THREAD_WORKGROUP = 64;

export function chooseSchedule(v: RowView): RowSchedule {
  return v.rowLen >= 128 ? 'group' : 'thread';
}

/** The part of the layout a row program shares: uniforms, workgroup size, key, dispatch. */
export class RowLayout {
  readonly contiguous: boolean;
  constructor(
    readonly view: RowView,
    readonly schedule: RowSchedule = chooseSchedule(view),
  ) {
    this.contiguous = view.redShape.length === 1 && view.redStrides[0] === 1;
  }

  get key(): string {
    const v = this.view;
    return `rows:${this.schedule}:k${v.keptShape.length}:r${this.contiguous ? 'c' : v.redShape.length}`;
  }

  get workgroupSize(): [number, number, number] {
    return [this.schedule === 'group' ? ROW_LANES : THREAD_WORKGROUP, 1, 1];
  }

  uniforms(): UniformDecl[] {
    const v = this.view;
    return [
      { name: 'rows', type: 'u32' },
      { name: 'row_len', type: 'u32' },
      { name: 'kept_shape', type: 'u32', length: v.keptShape.length },
      { name: 'kept_strides', type: 'u32', length: v.keptShape.length },
      ...(this.contiguous ? [] : [
        { name: 'red_shape', type: 'u32' as const, length: v.redShape.length },
        { name: 'red_strides', type: 'u32' as const, length: v.redShape.length },
      ]),
    ];
  }

  values(): Uniforms {
    const v = this.view;
    return { rows: v.rows, row_len: v.rowLen, kept_shape: v.keptShape, kept_strides: v.keptStrides, red_shape: v.redShape, red_strides: v.redStrides };
  }

  workgroups(): [number, number, number] {
    return this.schedule === 'group' ? dispatchLinear(this.view.rows, 1) : dispatchLinear(this.view.rows, THREAD_WORKGROUP);
  }

  /** WGSL emitter for one program's source. */
  code(b: ShaderBuilder): RowCode {
    return new RowCode(b, this);
  }
}

/**
 * Emits the pieces of a row kernel. Inside `head()`'s scope: `row` (the row index), `base` (the offset of the row's
 * first element) and, in 'group' schedule, `lane`. `offset(r)` is the offset of element r of the row.
 */
export class RowCode {
  private readonly group: boolean;
  constructor(
    private readonly b: ShaderBuilder,
    private readonly layout: RowLayout,
  ) {
    this.group = layout.schedule === 'group';
  }

  head(): string[] {
    const v = this.layout.view;
    const kr = v.keptShape.length;
    const kept = this.b.coordsFn('kept_coords', 'kept_shape', kr);
    const lines = this.group
      ? ['let row = wid.x + wid.y * nwg.x;', '// Uniform control flow: the whole workgroup leaves together.', 'if (row >= u.rows) { return; }', 'let lane = lid.x;']
      : [this.b.linearIndex('u.rows'), 'let row = index;'];
    lines.push(`let row_coords = ${kept}(row);`, `let base = ${this.b.offset('row_coords', 'kept_strides', kr)};`);
    return lines;
  }

  offset(r: string): string {
    if (this.layout.contiguous) return `base + ${r}`;
    const v = this.layout.view;
    const rr = v.redShape.length;
    this.b.helper(`fn red_offset(r: u32) -> u32 {
  let c = red_coords(r);
  return ${this.b.offset('c', 'red_strides', rr)};
}`);
    this.b.coordsFn('red_coords', 'red_shape', rr);
    return `base + red_offset(${r})`;
  }

  /** Runs `body(off, r)` for every element of the row (this invocation's share of it in 'group' schedule). */
  forEach(body: (off: string, r: string) => string[]): string[] {
    const start = this.group ? 'lane' : '0u';
    const step = this.group ? `${ROW_LANES}u` : '1u';
    return [
      `for (var r = ${start}; r < u.row_len; r = r + ${step}) {`,
      `  let off = ${this.offset('r')};`,
      ...body('off', 'r').map((l) => `  ${l}`),
      '}',
    ];
  }

  /**
   * Lines defining `let <name>: T` = the combination of `value(off, r)` over the row, starting from `init`.
   * In 'group' schedule every lane gets the same result (and every lane must reach this code).
   */
  reduce(name: string, T: 'f32' | 'i32' | 'u32', init: string, combine: (a: string, b: string) => string, value: (off: string, r: string) => string): string[] {
    const lines = [`var ${name}_acc = ${init};`, ...this.forEach((off, r) => [`${name}_acc = ${combine(`${name}_acc`, value(off, r))};`])];
    if (!this.group) return [...lines, `let ${name} = ${name}_acc;`];
    this.b.helper(`var<workgroup> row_scratch_${T}: array<${T}, ${ROW_LANES}>;`);
    const s = `row_scratch_${T}`;
    return [
      ...lines,
      `${s}[lane] = ${name}_acc;`,
      'workgroupBarrier();',
      `for (var half = ${ROW_LANES / 2}u; half > 0u; half = half >> 1u) {`,
      `  if (lane < half) { ${s}[lane] = ${combine(`${s}[lane]`, `${s}[lane + half]`)}; }`,
      '  workgroupBarrier();',
      '}',
      `let ${name} = ${s}[0];`,
      '// The scratch is reused by the next reduction: everyone must have read it first.',
      'workgroupBarrier();',
    ];
  }

  /** A guard for writes once per row: every invocation in 'thread' schedule, lane 0 in 'group'. */
  once(stmt: string): string {
    return this.group ? `if (lane == 0u) { ${stmt} }` : stmt;
  }
}
