import { EdgeKitError } from '../../runtime/errors.js';

/**
 * Typed errors of the text helpers. Each names the numbers involved, so the caller can act without a debugger.
 */

/** The model's inputs and outputs are not a layout the text helpers know (sdk/text/layout.ts lists them). */
export class ModelLayoutError extends EdgeKitError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('MODEL_FORMAT', message, details);
    this.name = 'ModelLayoutError';
  }
}

/** A prompt (in tokens) is longer than the model's context. */
export class ContextLengthError extends EdgeKitError {
  constructor(promptTokens: number, contextLength: number, row: number) {
    super(
      'SHAPE_MISMATCH',
      `The prompt${row > 0 ? ` of row ${row}` : ''} is ${promptTokens} tokens long, more than the model's context of ${contextLength} tokens. Shorten it (keep its last ${contextLength} tokens, for example).`,
      { promptTokens, contextLength, row },
    );
    this.name = 'ContextLengthError';
  }
}

/** The tokenizer can produce ids the model's logits have no column for (caught when the generator is made). */
export class VocabularyMismatchError extends EdgeKitError {
  constructor(tokenizerSize: number, logitsWidth: number) {
    super(
      'SHAPE_MISMATCH',
      `The tokenizer has ${tokenizerSize} tokens but the model's logits are ${logitsWidth} wide: ids from ${logitsWidth} on have no score. Use the tokenizer the model was trained with.`,
      { tokenizerSize, logitsWidth },
    );
    this.name = 'VocabularyMismatchError';
  }
}

/** The model produced NaN logits; generation stopped at that step. */
export class NonFiniteLogitsError extends EdgeKitError {
  constructor(step: number, rows: number[], tokens: number[][]) {
    super(
      'NON_FINITE',
      `The model's logits are NaN at generation step ${step} (row${rows.length > 1 ? 's' : ''} ${rows.join(', ')}); generation stopped there. ` +
        'Check the weights (an overflow in float16?) and the inputs. `details.tokens` holds what was generated before.',
      { step, rows, tokens },
    );
    this.name = 'NonFiniteLogitsError';
  }
}
