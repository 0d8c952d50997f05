import { InternalError } from '../errors.js';
import { allocStorage, type DType } from '../ir/dtype.js';
import type { Attr, Dim, Graph, Node } from '../ir/graph.js';
import { isConcrete } from '../ir/shape.js';
import { hostTensor, tensorFromNumbers, type HostTensor } from '../ir/tensor.js';
import { validateAndSort } from '../ir/validate.js';
import type { EmitOptions, GradContext, GradRule } from './grads/index.js';
import { inferTrainShapes } from './infer.js';
import { sumToDims } from './sum-to.js';

/**
 * The state of one autodiff run (autodiff.ts) and the GradContext rules write through: fresh value names,
 * deduplicated constants, the forward values rules save (the declaration in GradRule.saves is enforced here),
 * Shape nodes added to the forward graph for dims only known at run time, and gradient contributions summed with
 * Add on first use.
 */
export class BackwardBuilder {
  readonly nodes: Node[] = [];
  readonly initializers: Record<string, HostTensor> = {};
  readonly saved = new Set<string>();
  readonly contribs = new Map<string, string[]>();
  private readonly done = new Map<string, string | undefined>();
  private readonly names = new Set<string>();
  private readonly consts = new Map<string, string>();
  private readonly shapeValues = new Map<string, string>();
  private readonly extraForward: Node[] = [];
  private readonly renamed = new Map<string, string>();

  constructor(private fwd: Graph, private readonly wrt: ReadonlySet<string>) {
    for (const v of Object.keys(fwd.values)) this.names.add(v);
    for (const v of Object.keys(fwd.initializers)) this.names.add(v);
    for (const n of fwd.nodes) for (const o of n.outputs) if (o) this.names.add(o);
  }

  fresh(base: string): string {
    let name = base;
    for (let k = 1; this.names.has(name); k++) name = `${base}_${k}`;
    this.names.add(name);
    return name;
  }

  constant(t: HostTensor, base = 'grad_const'): string {
    const name = this.fresh(base);
    this.initializers[name] = t;
    return name;
  }

  cachedConstant(key: string, make: () => HostTensor): string {
    let name = this.consts.get(key);
    if (!name) {
      name = this.constant(make());
      this.consts.set(key, name);
    }
    return name;
  }

  emit(owner: Node, op: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, opts: EmitOptions = {}): string[] {
    const want = typeof opts.outputs === 'object' ? [...opts.outputs] : new Array<boolean>(opts.outputs ?? 1).fill(true);
    const base = `${owner.name || owner.op}/grad/${op}`;
    const name = this.fresh(base);
    const outputs = want.map((w, k) => (w ? this.fresh(want.length > 1 ? `${name}:${k}` : `${name}:out`) : ''));
    this.nodes.push({ name, op, domain: opts.domain ?? '', inputs: [...inputs], outputs, attrs });
    return outputs;
  }

  contribute(value: string, grad: string): void {
    if (this.done.has(value)) throw new InternalError(`Gradient of '${value}' received a contribution after it was summed; the forward order is not topological.`);
    const list = this.contribs.get(value) ?? [];
    list.push(grad);
    this.contribs.set(value, list);
  }

  /** The total gradient of a forward value (fan-out summed with Add), or undefined when none flows to it. */
  gradOf(value: string): string | undefined {
    if (this.done.has(value)) return this.done.get(value);
    const list = this.contribs.get(value);
    let g = list?.[0];
    if (list && list.length > 1) {
      const owner = { name: `${value}`, op: 'Add' } as Node;
      g = list.slice(1).reduce((acc, x) => this.emit(owner, 'Add', [acc, x])[0]!, list[0]!);
    }
    this.done.set(value, g);
    return g;
  }

  save(value: string): string {
    this.saved.add(value);
    return value;
  }

  /** The int64 shape of a forward value: constant if known now, else a Shape node added to the forward graph. */
  shapeOfValue(value: string): string {
    const shape = this.fwd.values[value]?.shape;
    if (isConcrete(shape)) return this.ints(shape);
    let name = this.shapeValues.get(value);
    if (!name) {
      if (!shape) throw new InternalError(`The rank of '${value}' is unknown; a gradient needs at least its rank.`);
      name = this.fresh(`${value}__shape`);
      this.extraForward.push({ name: `${name}_node`, op: 'Shape', domain: '', inputs: [value], outputs: [name], attrs: {} });
      this.fwd.values[name] = { name, dtype: 'int64', shape: [shape.length] };
      this.shapeValues.set(value, name);
    }
    return this.save(name);
  }

  ints(values: readonly number[]): string {
    return this.cachedConstant(`ints:${values.join(',')}`, () => tensorFromNumbers('int64', [values.length], values));
  }

  scalar(value: number, dtype: DType): string {
    return this.cachedConstant(`${dtype}:${Object.is(value, -0) ? '-0' : value}`, () => tensorFromNumbers(dtype, [], [value]));
  }

  zerosLike(value: string): string {
    const info = this.fwd.values[value]!;
    if (isConcrete(info.shape)) return this.constant(hostTensor(info.dtype, info.shape, allocStorage(info.dtype, info.shape.reduce((a, c) => a * c, 1))), `${value}_zero_grad`);
    const zero = hostTensor(info.dtype, [1], allocStorage(info.dtype, 1));
    const owner = { name: value, op: 'ConstantOfShape' } as Node;
    return this.emit(owner, 'ConstantOfShape', [this.shapeOfValue(value)], { value: { type: 'tensor', value: zero } })[0]!;
  }

  /**
   * Gives a gradient output a readable name when it is produced by a backward node and not already an output;
   * otherwise routes it through an Identity (constants and values shared by two outputs keep their name).
   */
  nameOutput(original: string, wanted: string, taken: ReadonlySet<string>): string {
    const value = this.renamed.get(original) ?? original;
    const producer = this.nodes.find((n) => n.outputs.includes(value));
    const ownConstant = value in this.initializers && ![...this.consts.values()].includes(value);
    if ((producer || ownConstant) && !taken.has(value)) {
      if (this.names.has(wanted)) return value;
      this.names.add(wanted);
      if (producer) producer.outputs = producer.outputs.map((o) => (o === value ? wanted : o));
      else {
        this.initializers[wanted] = this.initializers[value]!;
        delete this.initializers[value];
      }
      for (const n of this.nodes) n.inputs = n.inputs.map((v) => (v === value ? wanted : v));
      this.renamed.set(value, wanted);
      return wanted;
    }
    const name = this.fresh(wanted);
    this.nodes.push({ name: `${name}_identity`, op: 'Identity', domain: '', inputs: [value], outputs: [name], attrs: {} });
    return name;
  }

  /** The forward graph with the Shape nodes and output names the rules asked for, re-inferred. */
  forward(): Graph {
    const g: Graph = { ...this.fwd, nodes: [...this.fwd.nodes, ...this.extraForward] };
    return inferTrainShapes(validateAndSort(g));
  }

  context(node: Node, rule: GradRule, dys: (string | undefined)[], wants: boolean[]): GradContext {
    const fwd = this.fwd;
    const declared = (list: readonly number[] | undefined, i: number, what: string) => {
      if (!list?.includes(i)) {
        throw new InternalError(`The gradient rule of ${node.op} reads forward ${what} ${i} of node '${node.name}' without declaring it in saves.${what}s.`);
      }
    };
    const shapeOf = (v: string | undefined, what: string): Dim[] => {
      const s = v ? fwd.values[v]?.shape : undefined;
      if (!s) throw new InternalError(`The gradient of ${node.op} node '${node.name}' needs the rank of its ${what}, which shape inference left unknown.`);
      return s;
    };
    const self = this;
    return {
      node,
      dy: (i = 0) => dys[i],
      wants: (i) => !!wants[i],
      hasInput: (i) => !!node.inputs[i],
      input(i) {
        declared(rule.saves.inputs, i, 'input');
        const v = node.inputs[i];
        if (!v) throw new InternalError(`Gradient rule of ${node.op} read omitted input ${i} of node '${node.name}'.`);
        return self.save(v);
      },
      output(i) {
        declared(rule.saves.outputs, i, 'output');
        let v = node.outputs[i];
        if (!v) {
          // The rule keeps an optional output the model left unnamed (Dropout's mask): name it in our forward copy.
          v = self.fresh(`${node.name || node.op}_out${i}`);
          while (node.outputs.length <= i) node.outputs.push('');
          node.outputs[i] = v;
          const reads = node.inputs.filter((x) => x && !(x in fwd.initializers)).map((x) => fwd.values[x]!);
          const inferred = inferTrainShapes({ ...fwd, inputs: reads, nodes: [node] }).values[v];
          if (!inferred) throw new InternalError(`Could not infer output ${i} of '${node.name}'.`);
          fwd.values[v] = inferred;
        }
        return self.save(v);
      },
      inputShape: (i) => shapeOf(node.inputs[i], `input ${i}`),
      outputShape: (i) => shapeOf(node.outputs[i], `output ${i}`),
      inputDType(i) {
        const v = node.inputs[i];
        const info = v ? fwd.values[v] : undefined;
        if (!info) throw new InternalError(`No type for input ${i} of '${node.name}'.`);
        return info.dtype;
      },
      constantInput(i) {
        const v = node.inputs[i];
        return v && !self.wrt.has(v) ? fwd.initializers[v] : undefined;
      },
      emit: (op, inputs, attrs, opts) => self.emit(node, op, inputs, attrs, opts),
      scalar: (value, dtype) => self.scalar(value, dtype),
      ints: (values) => self.ints(values),
      shapeOf: (i) => self.shapeOfValue(node.inputs[i]!),
      sumTo(grad, gradShape, i) {
        const v = node.inputs[i]!;
        return sumToDims(
          { emit: (op, ins, attrs, opts) => self.emit(node, op, ins, attrs, opts), ints: (xs) => self.ints(xs), runtimeShape: () => self.shapeOfValue(v) },
          grad,
          gradShape,
          shapeOf(v, `input ${i}`),
        );
      },
    };
  }
}

