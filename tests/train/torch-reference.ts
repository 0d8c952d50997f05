import { readFileSync } from 'node:fs';

/** Numbers recorded from PyTorch by fixtures/make_torch_reference.py (inputs and outputs both in the file). */
export interface TorchReference {
  torch: string;
  optimizers: { p0: number[]; grads: number[][]; runs: Record<string, { cls: string; kwargs: Record<string, number | boolean | number[]>; trajectory: number[][] }> };
  losses: {
    logits: number[][]; labels: number[]; probs: number[][]; logits3: number[][][]; labels3: number[][]; binary: number[][];
    cases: { name: string; loss: number; grad: unknown; label_smoothing?: number; reduction?: string; labels?: number[] }[];
  };
  clip: { grads: number[]; max_norm: number; norm: number; clipped: number[] };
  schedules: { step: number[]; cosine: number[]; warmup_cosine: number[] };
}

export const TORCH: TorchReference = JSON.parse(readFileSync(new URL('./fixtures/torch-reference.json', import.meta.url), 'utf8'));
