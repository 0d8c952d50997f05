import { InvalidArgumentError } from '../../runtime/errors.js';

/**
 * Tokenizers for the text helpers. Either a Hugging Face `tokenizer.json` (with its `tokenizer_config.json`),
 * run by @huggingface/tokenizers, or any object with `encode` and `decode` (a custom vocabulary). Chat templates
 * (tokenizer_config.json's `chat_template`) are rendered with @huggingface/jinja.
 *
 * Both packages are imported dynamically, on the first loadTokenizer / applyChatTemplate: the core bundle does
 * not carry them (rollup puts them in chunks of their own, loaded only by pages that tokenize).
 */

/** What the text helpers need of a tokenizer. */
export interface TextTokenizer {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** Tokens in the vocabulary (added tokens included); checked against the model's logits width when known. */
  readonly vocabSize?: number;
  readonly eosTokenId?: number;
  readonly padTokenId?: number;
  /** Renders messages with the model's chat template (tokenizers loaded with one). */
  applyChatTemplate?(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
}

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatTemplateOptions {
  /** Ends the text with the template's assistant header, so generation answers. Default true. */
  addGenerationPrompt?: boolean;
  /** Extra variables the template reads (tools, documents, ...). */
  variables?: Record<string, unknown>;
}

export interface LoadTokenizerOptions {
  /** Adds the tokenizer's special tokens (BOS, CLS/SEP) when encoding. Default true, as transformers does. */
  addSpecialTokens?: boolean;
}

type JsonObject = Record<string, unknown>;

/** The token text of a special-token entry in tokenizer_config.json (a string or an AddedToken object). */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as JsonObject).content === 'string') return (v as JsonObject).content as string;
  return undefined;
}

function parse(v: string | JsonObject, what: string): JsonObject {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v) as JsonObject;
  } catch (e) {
    throw new InvalidArgumentError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * A tokenizer from a tokenizer.json (object or its text) and, optionally, its tokenizer_config.json (special
 * tokens, chat template).
 */
export async function loadTokenizer(tokenizerJson: string | JsonObject, tokenizerConfig: string | JsonObject = {}, options: LoadTokenizerOptions = {}): Promise<TextTokenizer> {
  const json = parse(tokenizerJson, 'tokenizer.json');
  const config = parse(tokenizerConfig, 'tokenizer_config.json');
  if (typeof json.model !== 'object' || json.model === null) {
    throw new InvalidArgumentError("This is not a tokenizer.json: it has no 'model' section (pass the file's JSON, not tokenizer_config.json).");
  }
  const { Tokenizer } = await import('@huggingface/tokenizers');
  const tok = new Tokenizer(json, config);
  const addSpecial = options.addSpecialTokens ?? true;
  const id = (key: string) => {
    const t = tokenText(config[key]);
    return t === undefined ? undefined : tok.token_to_id(t);
  };
  const template = typeof config.chat_template === 'string' ? config.chat_template : undefined;
  let compiled: Promise<{ render(items: JsonObject): string }> | undefined;
  const specials: JsonObject = {};
  for (const k of ['bos_token', 'eos_token', 'pad_token', 'unk_token', 'sep_token', 'cls_token', 'mask_token']) {
    const t = tokenText(config[k]);
    if (t !== undefined) specials[k] = t;
  }
  let rendered: { render(items: JsonObject): string } | undefined;
  const vocabSize = tok.get_vocab(true).size;
  const result: TextTokenizer & { ready(): Promise<void> } = {
    vocabSize,
    eosTokenId: id('eos_token'),
    padTokenId: id('pad_token'),
    encode: (text) => tok.encode(text, { add_special_tokens: addSpecial }).ids,
    decode: (ids) => tok.decode([...ids], { skip_special_tokens: false }),
    async ready() {
      if (template && !rendered) rendered = await (compiled ??= import('@huggingface/jinja').then(({ Template }) => new Template(template)));
    },
  };
  if (template) {
    await result.ready();
    result.applyChatTemplate = (messages, o = {}) =>
      rendered!.render({ ...specials, ...(o.variables ?? {}), messages, add_generation_prompt: o.addGenerationPrompt ?? true });
  }
  return result;
}

/** Checks a user's tokenizer object: encode and decode must be functions. */
export function checkTokenizer(t: unknown): TextTokenizer {
  const o = t as Partial<TextTokenizer> | undefined;
  if (!o || typeof o.encode !== 'function' || typeof o.decode !== 'function') {
    throw new InvalidArgumentError('A tokenizer needs encode(text) => number[] and decode(ids) => string; load a tokenizer.json with loadTokenizer().');
  }
  return o as TextTokenizer;
}

/** The ids of one prompt: a string through the tokenizer, or ids as given (checked to be integers). */
export function promptIds(p: string | readonly number[], tokenizer: TextTokenizer | undefined, row: number): number[] {
  if (typeof p === 'string') {
    if (!tokenizer) throw new InvalidArgumentError('A text prompt needs a tokenizer ({ tokenizer } when creating the generator); or pass token ids.');
    return tokenizer.encode(p);
  }
  if (!Array.isArray(p) || p.some((x) => !Number.isInteger(x) || x < 0)) {
    throw new InvalidArgumentError(`Prompt ${row} must be a string or an array of non-negative integer token ids.`);
  }
  return [...p];
}
