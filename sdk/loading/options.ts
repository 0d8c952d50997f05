/**
 * Loading options shared by InferenceSession.create and a worker's createSession (sdk/loading/fetch.ts does the
 * work): progress events, the model cache, and integrity checking.
 */

/** What `onProgress` hears while a model loads. */
export type LoadProgress =
  | {
      /** Bytes of the model (or of one of its external data files: `url` says which) read so far. */
      phase: 'fetch';
      url: string;
      loaded: number;
      /** From Content-Length or the file's size; undefined when the server does not say. */
      total: number | undefined;
      /** Read from the model cache (Cache Storage in browsers, the disk cache in Node) rather than the network. */
      fromCache: boolean;
    }
  | {
      /** WebGPU pipelines compiled for this model so far, of those it started (shared ones already compiled are not counted). */
      phase: 'compile';
      done: number;
      total: number;
    };

export interface ModelCacheOptions {
  /** Browsers: the Cache Storage cache's name. Default 'edgekit-models'. */
  name?: string;
  /** Node: the folder. Default $XDG_CACHE_HOME/edgekit or ~/.cache/edgekit. */
  dir?: string;
}

export interface LoadOptions {
  /** Called as bytes arrive and as pipelines compile. Throwing from it does not stop the load. */
  onProgress?: (p: LoadProgress) => void;
  /**
   * The model file's expected digest in fetch's Subresource Integrity format, e.g. 'sha256-<base64>' ('sha384-' and
   * 'sha512-' too; several separated by spaces, any may match). Checked on every load, from the network or the
   * cache; a mismatch is a ModelFormatError (code MODEL_FORMAT, details.integrity) and nothing is cached. It
   * covers the .onnx file; `externalDataIntegrity` covers its external data files.
   */
  integrity?: string;
  /**
   * Digests of the model's external data files, by the location the model gives them (relative to the model, e.g.
   * { 'model.onnx.data': 'sha256-<base64>' }), in the same SRI form as `integrity`. Each named file is checked
   * whole before any tensor is read from it, whether it comes from the network, the cache, a file beside a model
   * path or `externalData`: a mismatch is a ModelFormatError naming the file and the digest found
   * (details.location, details.got), and a fetched file that fails is not cached. Naming a file the model does not
   * read is an InvalidArgumentError (a misspelt name would leave a file unchecked). Files not named are not checked.
   */
  externalDataIntegrity?: Record<string, string>;
  /**
   * Keep models fetched by URL for the next load, keyed by URL. Browsers: Cache Storage, on by default (false turns
   * it off). Node: a folder on disk, off by default (true or { dir } turns it on). A cached model is used without
   * asking the server again: version your URLs, or give `integrity` (a cached copy that fails it is fetched anew).
   * Paths and bytes are never cached.
   */
  cache?: boolean | ModelCacheOptions;
}
