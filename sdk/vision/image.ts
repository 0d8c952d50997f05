import { InvalidArgumentError } from '../../runtime/errors.js';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { imageToGpuTensor, type ImageToTensorParams } from '../../runtime/backends/webgpu/image-input.js';

/**
 * Images and video frames as model inputs (Tensor.fromImage). The frame stays what it is (an ImageBitmap, a
 * VideoFrame...) until a run needs it; the run converts it on the GPU of the session's device
 * (runtime/backends/webgpu/image-input.ts): a texture copy and one resize-and-normalize dispatch, never a loop over
 * pixels in JavaScript. A CPU session converts on the shared WebGPU device too and reads the tensor back.
 */

/** What Tensor.fromImage accepts: anything WebGPU's copyExternalImageToTexture reads. */
export type ImageSource = GPUCopyExternalImageSource;

export interface ImageTensorOptions {
  /** Output size: one number for a square, or [height, width]. Default: the source's (or the crop's) own size. */
  size?: number | readonly [number, number];
  /** Subtracted per channel (R, G, B) after scaling pixels to [0, 1]; one number for all three. Default 0. */
  mean?: number | readonly [number, number, number];
  /** Divides per channel after `mean`; one number for all three. Default 1. */
  std?: number | readonly [number, number, number];
  /** 'NCHW' ([1, 3, H, W], most vision models' ONNX exports; the default) or 'NHWC' ([1, H, W, 3], TF-style). */
  layout?: 'NCHW' | 'NHWC';
  /**
   * The part of the source that becomes the tensor, resized to `size`: `'center'` (the largest centred square, as
   * a camera classifier wants from a landscape or portrait frame; offsets rounded down) or a rectangle in source
   * pixels (integers, inside the source). Default: the whole source. Cropped in the same GPU dispatch as the resize.
   */
  crop?: 'center' | ImageCrop;
}

/** A rectangle of a source, in pixels from its top-left corner. */
export interface ImageCrop {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** @internal an image waiting to become a tensor: the source and the resolved conversion. */
export interface PendingImage {
  source: ImageSource;
  width: number;
  height: number;
  params: ImageToTensorParams;
  /** The options as given (a worker re-creates the image tensor from them). */
  options: ImageTensorOptions;
}

/** Pixel size of a source, in the order WebGPU copies it (a VideoFrame's display size, an element's natural size). */
export function sourceSize(src: unknown): { width: number; height: number } {
  const s = src as Record<string, unknown>;
  const pick = (...names: string[]) => names.map((n) => s?.[n]).find((v): v is number => typeof v === 'number' && v > 0);
  if (typeof src !== 'object' || src === null) throw new InvalidArgumentError('Tensor.fromImage needs an ImageBitmap, a VideoFrame, an ImageData, a canvas, an <img> or a <video>.');
  const width = pick('displayWidth', 'naturalWidth', 'videoWidth', 'width');
  const height = pick('displayHeight', 'naturalHeight', 'videoHeight', 'height');
  if (width === undefined || height === undefined) {
    throw new InvalidArgumentError('This image source has no pixels yet (a closed bitmap or frame, an image not loaded, a video without a frame), or is not an image.');
  }
  return { width, height };
}

function triple(v: number | readonly number[] | undefined, name: string, fallback: number): [number, number, number] {
  const t = v === undefined ? [fallback, fallback, fallback] : typeof v === 'number' ? [v, v, v] : [...v];
  if (t.length !== 3 || t.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
    throw new InvalidArgumentError(`Tensor.fromImage: ${name} must be a finite number or three of them (R, G, B), got ${JSON.stringify(v)}.`);
  }
  return t as [number, number, number];
}

/** The crop rectangle in source pixels: the whole source, its centred square, or a checked rectangle. */
function resolveCrop(crop: ImageTensorOptions['crop'], width: number, height: number): ImageCrop {
  if (crop === undefined) return { x: 0, y: 0, width, height };
  if (crop === 'center') {
    const side = Math.min(width, height);
    return { x: Math.floor((width - side) / 2), y: Math.floor((height - side) / 2), width: side, height: side };
  }
  const c = crop as Partial<ImageCrop> | null;
  const ok = typeof c === 'object' && c !== null && [c.x, c.y, c.width, c.height].every((v) => Number.isInteger(v))
    && c.x! >= 0 && c.y! >= 0 && c.width! >= 1 && c.height! >= 1 && c.x! + c.width! <= width && c.y! + c.height! <= height;
  if (!ok) {
    throw new InvalidArgumentError(`Tensor.fromImage: crop must be 'center' or { x, y, width, height } in whole pixels inside the ${width}x${height} source, got ${JSON.stringify(crop)}.`);
  }
  return { x: c.x!, y: c.y!, width: c.width!, height: c.height! };
}

export function pendingImage(source: ImageSource, options: ImageTensorOptions = {}): PendingImage {
  const { width, height } = sourceSize(source);
  const crop = resolveCrop(options.crop, width, height);
  const size = options.size;
  const [h, w] = size === undefined ? [crop.height, crop.width] : typeof size === 'number' ? [size, size] : [size[0], size[1]];
  if (![h, w].every((d) => Number.isInteger(d) && d! >= 1 && d! <= 16384)) {
    throw new InvalidArgumentError(`Tensor.fromImage: size must be a positive integer or [height, width] of them, got ${JSON.stringify(size)}.`);
  }
  const layout = options.layout ?? 'NCHW';
  if (layout !== 'NCHW' && layout !== 'NHWC') throw new InvalidArgumentError(`Tensor.fromImage: layout must be 'NCHW' or 'NHWC', not ${JSON.stringify(layout)}.`);
  const mean = triple(options.mean, 'mean', 0);
  const std = triple(options.std, 'std', 1);
  if (std.some((x) => x === 0)) throw new InvalidArgumentError('Tensor.fromImage: std must not be 0.');
  return { source, width, height, options: { ...options }, params: { height: h!, width: w!, mean, std, layout, crop } };
}

export function imageDims(p: PendingImage): number[] {
  const { height, width, layout } = p.params;
  return layout === 'NHWC' ? [1, height, width, 3] : [1, 3, height, width];
}

/**
 * Converts on `res`'s device; the caller owns the returned lease. A video frame the browser cannot copy straight
 * into a texture (Chromium on SwiftShader refuses VideoFrames made from memory; some codecs' frames are refused on
 * some GPUs) goes through createImageBitmap first: one more copy, done by the browser, still no JavaScript per pixel.
 */
export async function convertImage(res: GpuResources, p: PendingImage): ReturnType<typeof imageToGpuTensor> {
  try {
    return await imageToGpuTensor(res, p.source, p.width, p.height, p.params);
  } catch (e) {
    const video = (typeof VideoFrame !== 'undefined' && p.source instanceof VideoFrame) || (typeof HTMLVideoElement !== 'undefined' && p.source instanceof HTMLVideoElement);
    if (!(e instanceof InvalidArgumentError) || !video || typeof createImageBitmap !== 'function') throw e;
    const bitmap = await createImageBitmap(p.source as ImageBitmapSource);
    try {
      return await imageToGpuTensor(res, bitmap, bitmap.width, bitmap.height, p.params);
    } finally {
      bitmap.close();
    }
  }
}
