import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeTensorProtoBytes, exportOnnx, importOnnx, type ImportedModel } from '../../importers/onnx/index.js';
import { EdgeKitError } from '../../runtime/errors.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { allClose, ONNX_ATOL, ONNX_RTOL } from '../helpers/compare.js';
import { runModelOrt } from '../helpers/run-model.js';

/**
 * The exporter over the ONNX conformance models: every node case EdgeKit imports is exported back to ONNX
 * (opset 21, newest-form ops, old-opset cases included) and run in onnxruntime-node; the outputs must match the
 * case's expected outputs (output_N.pb) with ONNX's tolerances. This checks import (every adapter the cases reach,
 * attributes, initializers, Constant nodes) and export together, independently of EdgeKit's kernels.
 */

const ROOT = '/usr/lib/python3/dist-packages/onnx/backend/test/data';
const GROUPS = ['node', 'simple', 'pytorch-converted', 'pytorch-operator'];

/** Cases where the round trip is known not to match, with why (none of them is an importer/exporter defect). */
const BF16 = 'onnxruntime-node has no bfloat16 tensors, so it cannot feed or return this model\'s bfloat16 values';
const NO_ORT_KERNEL = 'onnxruntime has no CPU kernel for this op and type (it rejects the original model too)';
const RANDOM = 'Dropout with training_mode=true: the expected output is numpy\'s RNG stream, which no runtime reproduces';
const TO_STRING = 'onnxruntime formats float→string with 8 significant digits (0.60484552) where numpy wrote 0.6048455';
const BATCHWISE = 'onnxruntime\'s CPU RNN/GRU/LSTM kernels refuse layout=1 ("Batchwise recurrent operations are not supported"); it rejects the original model too';
const ALIGN = 'onnx 1.12 made the expected values for align_corners downsampling by scales with an older formula; onnxruntime (like EdgeKit) differs';
const PREVIEW_TRAINING = 'onnxruntime (an inference build) has no kernels for the ai.onnx.preview.training domain; it rejects the original model too';
const BERNOULLI = 'Bernoulli draws random values: the expected output is numpy\'s RNG stream, which no runtime reproduces';
const FLOAT32_DFT = 'onnxruntime computes DFT/STFT in float32: bins whose exact value is 0 (the real signal\'s Nyquist imaginary parts) come out near 1e-4, beyond the 1e-7 absolute tolerance; it misses on the original model too';
const UNPOOL_SHAPE = 'onnxruntime writes MaxUnpool\'s indices as flat positions of the larger output_shape; the ONNX reference (and EdgeKit) keep their coordinates in the default unpooled shape, so it misses on the original model too';
const LOCALE = 'onnxruntime builds a C++ locale for StringNormalizer\'s case handling (default en_US), which this machine has not installed; it rejects the original model too';
const KNOWN: Record<string, string> = {
  ...Object.fromEntries(['adagrad', 'adagrad_multiple', 'adam', 'adam_multiple', 'momentum', 'momentum_multiple', 'nesterov_momentum'].map((c) => [`node/test_${c}`, PREVIEW_TRAINING])),
  ...Object.fromEntries(['', '_double', '_seed'].flatMap((v) => [`node/test_bernoulli${v}`, `node/test_bernoulli${v}_expanded`]).map((id) => [id, BERNOULLI])),
  ...Object.fromEntries(['casesensintive_lower', 'casesensintive_upper', 'empty_output', 'insensintive_upper_twodim'].flatMap((c) => [
    [`node/test_strnormalizer_export_monday_${c}`, LOCALE], [`simple/test_strnorm_model_monday_${c}`, LOCALE],
  ])),
  'node/test_cast_BFLOAT16_to_FLOAT': BF16,
  'node/test_cast_FLOAT_to_BFLOAT16': BF16,
  'node/test_castlike_BFLOAT16_to_FLOAT': BF16,
  'node/test_castlike_BFLOAT16_to_FLOAT_expanded': BF16,
  'node/test_castlike_FLOAT_to_BFLOAT16': BF16,
  'node/test_castlike_FLOAT_to_BFLOAT16_expanded': BF16,
  'node/test_cast_FLOAT_to_STRING': TO_STRING,
  'node/test_castlike_FLOAT_to_STRING': TO_STRING,
  'node/test_castlike_FLOAT_to_STRING_expanded': TO_STRING,
  'node/test_max_int16': NO_ORT_KERNEL,
  'node/test_max_uint16': NO_ORT_KERNEL,
  'node/test_min_int16': NO_ORT_KERNEL,
  'node/test_min_uint16': NO_ORT_KERNEL,
  'node/test_pow_types_float32_uint32': NO_ORT_KERNEL,
  'node/test_pow_types_float32_uint64': NO_ORT_KERNEL,
  'node/test_resize_downsample_scales_cubic_align_corners': ALIGN,
  'node/test_resize_downsample_scales_linear_align_corners': ALIGN,
  'node/test_training_dropout': RANDOM,
  'node/test_training_dropout_default': RANDOM,
  'node/test_training_dropout_default_mask': RANDOM,
  'node/test_training_dropout_mask': RANDOM,
  'node/test_bitshift_left_uint16': NO_ORT_KERNEL,
  'node/test_bitshift_right_uint16': NO_ORT_KERNEL,
  'node/test_dft': FLOAT32_DFT,
  'node/test_dft_axis': FLOAT32_DFT,
  'node/test_dft_inverse': FLOAT32_DFT,
  'node/test_stft': FLOAT32_DFT,
  'node/test_stft_with_window': FLOAT32_DFT,
  'node/test_maxunpool_export_with_output_shape': UNPOOL_SHAPE,
  'node/test_gru_batchwise': BATCHWISE,
  'node/test_lstm_batchwise': BATCHWISE,
  'node/test_simple_rnn_batchwise': BATCHWISE,
};

interface Case { id: string; dir: string }

function listCases(): Case[] {
  return GROUPS.flatMap((group) => {
    const base = join(ROOT, group);
    if (!existsSync(base)) return [];
    return readdirSync(base).sort().filter((c) => existsSync(join(base, c, 'model.onnx'))).map((c) => ({ id: `${group}/${c}`, dir: join(base, c) }));
  });
}

function readSet(dir: string, prefix: 'input' | 'output'): HostTensor[] {
  const set = join(dir, 'test_data_set_0');
  if (!existsSync(set)) return [];
  const files = readdirSync(set).filter((f) => f.startsWith(`${prefix}_`) && f.endsWith('.pb'));
  files.sort((a, b) => Number(a.slice(prefix.length + 1, -3)) - Number(b.slice(prefix.length + 1, -3)));
  return files.map((f) => decodeTensorProtoBytes(new Uint8Array(readFileSync(join(set, f)))));
}

const cases = listCases();
const tally = { passed: 0, notImported: 0, known: 0, ran: 0 };

describe.skipIf(cases.length === 0)('conformance models: import → export → onnxruntime-node', () => {
  for (const c of cases) {
    it(c.id, async (ctx) => {
      tally.ran++;
      let imported: ImportedModel;
      try {
        imported = await importOnnx(new Uint8Array(readFileSync(join(c.dir, 'model.onnx'))));
      } catch (e) {
        // Unsupported ops and non-tensor values are the conformance suite's business; anything else is ours.
        expect(e, `${c.id}: import failed with a non-EdgeKit error`).toBeInstanceOf(EdgeKitError);
        expect((e as EdgeKitError).code, (e as Error).message).toMatch(/UNSUPPORTED_OP|MODEL_FORMAT/);
        if ((e as EdgeKitError).code === 'MODEL_FORMAT') expect((e as Error).message).toMatch(/sequence|optional|map|sparse|data type/);
        tally.notImported++;
        return ctx.skip();
      }
      let inputs: HostTensor[];
      let outputs: HostTensor[];
      try {
        inputs = readSet(c.dir, 'input');
        outputs = readSet(c.dir, 'output');
      } catch {
        tally.notImported++;
        return ctx.skip(); // test data in a type EdgeKit has no dtype for
      }
      const g = imported.graph;
      const feeds = Object.fromEntries(g.inputs.map((v, i) => [v.name, inputs[i]!]));
      const bytes = exportOnnx(g);
      let got: Record<string, HostTensor>;
      try {
        got = await runModelOrt(bytes, feeds);
      } catch (e) {
        if (c.id in KNOWN) return void tally.known++;
        throw new Error(`onnxruntime rejected the exported model: ${(e as Error).message}`);
      }
      const problems = g.outputs.flatMap((o, i) => {
        const r = allClose(got[o.name]!, outputs[i]!, { rtol: ONNX_RTOL, atol: ONNX_ATOL });
        return r.ok ? [] : [`${o.name}: ${r.message}`];
      });
      if (c.id in KNOWN) {
        expect(problems.length, `${c.id} now passes; remove it from KNOWN`).toBeGreaterThan(0);
        tally.known++;
        return;
      }
      expect(problems).toEqual([]);
      tally.passed++;
    });
  }

  afterAll(() => {
    console.log(`conformance round trip: ${tally.passed} passed, ${tally.known} known differences, ${tally.notImported} not imported`);
    // A floor on a full run, so a regression that makes many cases unsupported (and skipped) cannot pass quietly.
    if (tally.ran === cases.length) expect(tally.passed).toBeGreaterThan(740);
  });
});
