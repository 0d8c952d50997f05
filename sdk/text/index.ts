/**
 * Text helpers: generation with decoder-only models (TextGenerator), sentence embeddings and classification with
 * encoders (SentenceEncoder), tokenizers (a tokenizer.json through @huggingface/tokenizers, or your own encode /
 * decode) and chat templates (@huggingface/jinja). The two Hugging Face packages are imported on first use only,
 * so the core bundle does not carry them. docs/generation.md describes the design.
 */
export { TextGenerator } from './generator.js';
export type { TextGeneratorOptions, GenerateOptions, GeneratedToken, GeneratedRow, GenerationResult, Prompt } from './generator.js';
export { SentenceEncoder } from './sentence-encoder.js';
export type { SentenceEncoderOptions, EmbedOptions, Classification } from './sentence-encoder.js';
export { loadTokenizer } from './tokenizer.js';
export type { TextTokenizer, ChatMessage, ChatTemplateOptions, LoadTokenizerOptions } from './tokenizer.js';
export { ModelLayoutError, ContextLengthError, VocabularyMismatchError, NonFiniteLogitsError } from './errors.js';
export type { DecoderLayout, LayerCache } from './layout.js';
