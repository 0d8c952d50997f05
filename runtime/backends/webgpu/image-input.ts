import { InvalidArgumentError } from '../../errors.js';
import type { GpuResources, GpuTensorRef } from './executor.js';
import { UNIFORM_USAGE, type GpuBufferLease } from './memory.js';

/**
 * An image or video frame becomes a float32 tensor on the GPU without a per-pixel loop in JavaScript: the browser
 * copies the frame into an rgba8unorm texture (queue.copyExternalImageToTexture, which decodes and converts to sRGB
 * in its own code), and one compute dispatch crops, resizes bilinearly, scales to [0, 1], normalizes per channel and
 * writes NCHW or NHWC. Used by Tensor.fromImage (sdk/vision/image.ts).
 *
 * Cropping is an offset and a size in that same dispatch: the output is exactly what cropping the frame first and
 * resizing the crop would give (samples are clamped to the crop's edges, not the frame's), without a second texture
 * or pass. The whole frame is still copied into the texture: copyExternalImageToTexture's source origin would copy
 * less, but the copy is the browser's (not per-pixel JavaScript), and one code path for every source keeps the
 * fallback for refused VideoFrames (sdk/vision/image.ts) the same.
 *
 * Resizing: bilinear with half-pixel centres (src = (dst + 0.5) * in / out - 0.5, clamped at the edges), as
 * OpenCV's INTER_LINEAR and ONNX Resize's 'half_pixel' with 'linear' mode; no antialiasing when shrinking (PIL and
 * torchvision's antialias=True average a wider window, so strong downscales differ slightly from them).
 */
export interface ImageToTensorParams {
  /** Output height and width. */
  height: number;
  width: number;
  /** Per channel (R, G, B), applied to values in [0, 1]: (v - mean) / std. */
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  layout: 'NCHW' | 'NHWC';
  /** The source rectangle to resize (integers, inside the source); default the whole source. */
  crop?: { x: number; y: number; width: number; height: number };
}

const WGSL = /* wgsl */ `
struct Params {
  src: vec2<u32>,     // the crop's size
  dst: vec2<u32>,
  mean: vec4<f32>,
  inv_std: vec4<f32>,
  nhwc: u32,
  origin: vec2<u32>,  // the crop's top-left texel
}
@group(0) @binding(0) var image: texture_2d<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> u: Params;

// p in crop coordinates.
fn texel(p: vec2<u32>) -> vec3<f32> {
  return textureLoad(image, vec2<i32>(p + u.origin), 0).rgb;
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= u.dst.x || gid.y >= u.dst.y) { return; }
  // Half-pixel centres: the output pixel's centre mapped into the crop, clamped to its first and last texels.
  let scale = vec2<f32>(u.src) / vec2<f32>(u.dst);
  let p = max((vec2<f32>(gid.xy) + vec2<f32>(0.5)) * scale - vec2<f32>(0.5), vec2<f32>(0.0));
  let base = floor(p);
  let f = p - base;
  let last = u.src - vec2<u32>(1u);
  let p0 = min(vec2<u32>(base), last);
  let p1 = min(p0 + vec2<u32>(1u), last);
  let top = mix(texel(p0), texel(vec2<u32>(p1.x, p0.y)), f.x);
  let bottom = mix(texel(vec2<u32>(p0.x, p1.y)), texel(p1), f.x);
  let v = (mix(top, bottom, f.y) - u.mean.rgb) * u.inv_std.rgb;
  let pixel = gid.y * u.dst.x + gid.x;
  if (u.nhwc == 1u) {
    out[pixel * 3u] = v.r;
    out[pixel * 3u + 1u] = v.g;
    out[pixel * 3u + 2u] = v.b;
  } else {
    let plane = u.dst.x * u.dst.y;
    out[pixel] = v.r;
    out[plane + pixel] = v.g;
    out[2u * plane + pixel] = v.b;
  }
}
`;

/** GPUTextureUsage: COPY_DST | TEXTURE_BINDING | RENDER_ATTACHMENT (copyExternalImageToTexture needs the last). */
const TEXTURE_USAGE = 0x02 | 0x04 | 0x10;

const pipelines = new WeakMap<GPUDevice, Promise<GPUComputePipeline>>();

function pipelineFor(res: GpuResources): Promise<GPUComputePipeline> {
  const device = res.ctx.device;
  let p = pipelines.get(device);
  if (!p) {
    p = res.ctx.guard(device.createComputePipelineAsync({ layout: 'auto', compute: { module: device.createShaderModule({ code: WGSL, label: 'edgekit-image-to-tensor' }), entryPoint: 'main' }, label: 'edgekit-image-to-tensor' }));
    p.catch(() => pipelines.delete(device));
    pipelines.set(device, p);
  }
  return p;
}

/**
 * Copies `source` (srcWidth x srcHeight) to the GPU and converts it; returns the tensor's buffer, [1, 3, H, W] or
 * [1, H, W, 3] float32, leased from the device's memory manager (the caller owns the lease).
 */
export async function imageToGpuTensor(
  res: GpuResources,
  source: GPUCopyExternalImageSource,
  srcWidth: number,
  srcHeight: number,
  o: ImageToTensorParams,
): Promise<GpuTensorRef & { lease: GpuBufferLease }> {
  const { ctx, memory } = res;
  ctx.assertAlive();
  if (!(srcWidth > 0 && srcHeight > 0)) throw new InvalidArgumentError(`The image is empty (${srcWidth}x${srcHeight}); a frame must have pixels.`);
  const max = ctx.device.limits.maxTextureDimension2D;
  if (srcWidth > max || srcHeight > max) {
    throw new InvalidArgumentError(`The image is ${srcWidth}x${srcHeight}; this device's textures are at most ${max} pixels a side. Scale it down first (createImageBitmap's resizeWidth/resizeHeight).`);
  }
  const crop = o.crop ?? { x: 0, y: 0, width: srcWidth, height: srcHeight };
  if (![crop.x, crop.y, crop.width, crop.height].every(Number.isInteger) || crop.x < 0 || crop.y < 0 || crop.width < 1 || crop.height < 1
    || crop.x + crop.width > srcWidth || crop.y + crop.height > srcHeight) {
    throw new InvalidArgumentError(`The crop ${JSON.stringify(crop)} is not a rectangle of whole pixels inside the ${srcWidth}x${srcHeight} image.`);
  }
  const pipeline = await pipelineFor(res);
  const device = ctx.device;
  const texture = device.createTexture({ size: [srcWidth, srcHeight], format: 'rgba8unorm', usage: TEXTURE_USAGE, label: 'edgekit-image' });
  const outBytes = 3 * o.height * o.width * 4;
  const out = memory.acquire(outBytes, undefined, 'edgekit-image-tensor');
  const params = memory.acquire(64, UNIFORM_USAGE, 'edgekit-image-params');
  // Everything between the scope's push and pop: copyExternalImageToTexture also throws synchronously (a closed
  // bitmap, a tainted canvas), and the scope must be popped either way.
  device.pushErrorScope('validation');
  let thrown: unknown;
  try {
    device.queue.copyExternalImageToTexture({ source }, { texture }, [srcWidth, srcHeight]);
    const words = new ArrayBuffer(64);
    new Uint32Array(words, 0, 4).set([crop.width, crop.height, o.width, o.height]);
    new Float32Array(words, 16, 8).set([...o.mean, 0, ...o.std.map((s) => 1 / s), 1]);
    new Uint32Array(words, 48, 1)[0] = o.layout === 'NHWC' ? 1 : 0;
    new Uint32Array(words, 56, 2).set([crop.x, crop.y]);
    memory.upload(params.buffer, 0, new Uint8Array(words));
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: texture.createView() },
        { binding: 1, resource: { buffer: out.buffer, offset: 0, size: outBytes } },
        { binding: 2, resource: { buffer: params.buffer, offset: 0, size: 64 } },
      ],
    });
    const encoder = device.createCommandEncoder({ label: 'edgekit-image-to-tensor' });
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(Math.ceil(o.width / 8), Math.ceil(o.height / 8), 1);
    pass.end();
    device.queue.submit([encoder.finish()]);
  } catch (e) {
    thrown = e;
  }
  // Both are freed once the submitted work is done (destroy and release wait for it).
  texture.destroy();
  memory.release(params);
  const err = await ctx.guard(device.popErrorScope());
  if (thrown !== undefined || err) {
    memory.release(out);
    const why = err?.message ?? (thrown as Error)?.message ?? String(thrown);
    throw new InvalidArgumentError(`The GPU could not read this image source (${why}). A closed ImageBitmap or VideoFrame, or a cross-origin image, cannot be used.`);
  }
  const shape = o.layout === 'NHWC' ? [1, o.height, o.width, 3] : [1, 3, o.height, o.width];
  return { buffer: out.buffer, offset: 0, storage: 'f32', dtype: 'float32', shape, lease: out };
}
