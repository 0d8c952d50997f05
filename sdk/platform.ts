import type { ExternalDataResolver } from '../importers/onnx/index.js';
import type { ModelStore } from './loading/fetch.js';
import type { LoadProgress } from './loading/options.js';

/**
 * What only Node can do (read files, load the `webgpu` package), registered by the Node entry (sdk/node.ts) so the
 * browser bundle never contains node:* imports.
 */
export interface NodePlatform {
  readModelFile(pathOrFileUrl: string, onProgress?: (p: LoadProgress) => void): Promise<{ bytes: Uint8Array; externalData: ExternalDataResolver; path: string }>;
  /** navigator.gpu's equivalent in Node (Dawn), or undefined when the package cannot load. */
  getGpu?(): Promise<GPU | undefined>;
  /** The disk cache for models fetched by URL (LoadOptions.cache), in `dir` or the default folder. */
  modelCache?(dir: string | undefined): ModelStore;
}

let nodePlatform: NodePlatform | undefined;

export function registerNodePlatform(p: NodePlatform): void {
  nodePlatform = p;
}

export function getNodePlatform(): NodePlatform | undefined {
  return nodePlatform;
}
