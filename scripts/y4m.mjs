// Fake-camera videos for the browser demos' tests: Chromium plays a .y4m file as the camera when launched with
// --use-fake-device-for-media-stream --use-fake-ui-for-media-stream --use-file-for-fake-video-capture=<file>.y4m
// (it loops the file at the header's frame rate). Plain Node ESM, no dependencies; videos are written at test
// time into a temp dir, never committed.
//
// File format (YUV4MPEG2, what Chromium's file capture reads):
//   header  "YUV4MPEG2 W<width> H<height> F<fps>:1 Ip A1:1 C420jpeg\n"
//   frames  "FRAME\n" + Y plane (width*height bytes) + Cb plane + Cr plane ((width/2)*(height/2) bytes each)
// Width and height must be even. RGB -> YCbCr is BT.601 with limited ("studio") range, which is how Chromium
// interprets I420 frames without colour metadata:
//   Y  =  16 + ( 65.481 R + 128.553 G +  24.966 B)      R, G, B in [0, 1]
//   Cb = 128 + (-37.797 R -  74.203 G + 112.000 B)      chroma from the mean RGB of each 2x2 block
//   Cr = 128 + (112.000 R -  93.786 G -  18.214 B)
// decodeI420 inverts it (chroma repeated over its 2x2 block), so a test can reproduce in Node the frame the
// browser decoded, up to the browser's chroma upsampling (irrelevant for gray images, whose chroma is 128).
//
// Labelled frames (buildLabelledFrames): each source image is one *segment*, held for `framesPerImage` frames.
//   - The image is scaled (bilinear, half-pixel centres) to fill the frame's centre square: side S = min(W, H),
//     at ((W - S) / 2, (H - S) / 2). That square is what a centre-crop classifier sees; the rest of the frame is
//     mid gray (128) except for the marker.
//   - The marker says which segment is showing, outside the centre square: in the left margin (landscape frames,
//     W > H) or the top margin (portrait, H > W), MARKER_BLOCKS equal blocks along the margin, each black (0) or
//     white (255): block 0 white, block 1 black (a fixed start pattern that also checks the reading), blocks
//     2..11 the segment index in 10 bits, most significant first, then block 12 white. readMarker() reads it from an
//     RGB(A) copy of a frame at any scale (drawn <video>, getImageData), sampling each block's centre; it returns
//     null when the start/end pattern is not there. The margin must be at least 8 pixels wide (W - S >= 16).
//     readMarker is self-contained so a test can hand it to puppeteer's page.evaluate.
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const MARKER_BLOCKS = 13;
const MARKER_BITS = 10;

/** RGB (Uint8Array, width*height*3) -> { y, u, v } planes, BT.601 limited range. */
export function rgbToI420(rgb, width, height) {
  if (width % 2 || height % 2) throw new Error(`y4m: width and height must be even, got ${width}x${height}`);
  if (rgb.length !== width * height * 3) throw new Error(`y4m: a frame must be width*height*3 = ${width * height * 3} RGB bytes, got ${rgb.length}`);
  const y = new Uint8Array(width * height);
  const cw = width / 2, ch = height / 2;
  const u = new Uint8Array(cw * ch), v = new Uint8Array(cw * ch);
  const clamp = (x) => (x < 0 ? 0 : x > 255 ? 255 : Math.round(x));
  for (let i = 0; i < width * height; i++) {
    const r = rgb[3 * i] / 255, g = rgb[3 * i + 1] / 255, b = rgb[3 * i + 2] / 255;
    y[i] = clamp(16 + 65.481 * r + 128.553 * g + 24.966 * b);
  }
  for (let cy = 0; cy < ch; cy++) {
    for (let cx = 0; cx < cw; cx++) {
      let r = 0, g = 0, b = 0;
      for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
        const p = 3 * ((2 * cy + dy) * width + 2 * cx + dx);
        r += rgb[p]; g += rgb[p + 1]; b += rgb[p + 2];
      }
      r /= 4 * 255; g /= 4 * 255; b /= 4 * 255;
      u[cy * cw + cx] = clamp(128 - 37.797 * r - 74.203 * g + 112 * b);
      v[cy * cw + cx] = clamp(128 + 112 * r - 93.786 * g - 18.214 * b);
    }
  }
  return { y, u, v };
}

/** The inverse of rgbToI420 (chroma repeated over its 2x2 block): RGB Uint8Array width*height*3. */
export function decodeI420({ y, u, v }, width, height) {
  const rgb = new Uint8Array(width * height * 3);
  const clamp = (x) => (x < 0 ? 0 : x > 255 ? 255 : Math.round(x));
  for (let row = 0; row < height; row++) {
    for (let col = 0; col < width; col++) {
      const i = row * width + col, c = (row >> 1) * (width / 2) + (col >> 1);
      const yy = (y[i] - 16) * (255 / 219), cb = (u[c] - 128) * (255 / 224), cr = (v[c] - 128) * (255 / 224);
      rgb[3 * i] = clamp(yy + 1.402 * cr);
      rgb[3 * i + 1] = clamp(yy - 0.344136 * cb - 0.714136 * cr);
      rgb[3 * i + 2] = clamp(yy + 1.772 * cb);
    }
  }
  return rgb;
}

/**
 * Writes `frames` (an iterable of RGB Uint8Arrays, width*height*3 each; a generator keeps memory to one frame) to
 * `path` as a .y4m video. Returns the number of frames written.
 */
export function writeY4m(path, frames, { width, height, fps = 10 }) {
  if (!Number.isInteger(fps) || fps < 1) throw new Error(`y4m: fps must be a positive integer, got ${fps}`);
  const fd = openSync(path, 'w');
  let count = 0;
  try {
    writeSync(fd, Buffer.from(`YUV4MPEG2 W${width} H${height} F${fps}:1 Ip A1:1 C420jpeg\n`, 'latin1'));
    const tag = Buffer.from('FRAME\n', 'latin1');
    let last, lastPlanes;
    for (const rgb of frames) {
      // A held image repeats the same array: convert it once.
      const planes = rgb === last ? lastPlanes : rgbToI420(rgb, width, height);
      last = rgb; lastPlanes = planes;
      writeSync(fd, tag);
      writeSync(fd, planes.y);
      writeSync(fd, planes.u);
      writeSync(fd, planes.v);
      count++;
    }
  } finally {
    closeSync(fd);
  }
  if (!count) throw new Error('y4m: no frames');
  return count;
}

/** Reads a .y4m written by writeY4m: { width, height, fps, frames: [{ y, u, v }] }. */
export function readY4m(path) {
  const buf = readFileSync(path);
  const nl = buf.indexOf(0x0a);
  const header = buf.subarray(0, nl).toString('latin1').split(' ');
  if (header[0] !== 'YUV4MPEG2') throw new Error(`y4m: ${path} is not a YUV4MPEG2 file`);
  const field = (c) => header.find((t) => t[0] === c)?.slice(1);
  const width = Number(field('W')), height = Number(field('H'));
  const fps = Number(field('F').split(':')[0]) / Number(field('F').split(':')[1]);
  const ys = width * height, cs = ys / 4;
  const frames = [];
  for (let p = nl + 1; p < buf.length;) {
    const end = buf.indexOf(0x0a, p);
    if (!buf.subarray(p, end).toString('latin1').startsWith('FRAME')) throw new Error(`y4m: bad frame tag at byte ${p}`);
    p = end + 1;
    frames.push({ y: buf.subarray(p, p + ys), u: buf.subarray(p + ys, p + ys + cs), v: buf.subarray(p + ys + cs, p + ys + 2 * cs) });
    p += ys + 2 * cs;
  }
  return { width, height, fps, frames };
}

/** The first `count` committed Fashion-MNIST test images ([1000, 28, 28] uint8) as gray sources, with labels. */
export function fashionImages(indices) {
  const root = fileURLToPath(new URL('../tests/fixtures/fashion/', import.meta.url));
  const pixels = readFileSync(root + 'test-images.u8');
  const labels = readFileSync(root + 'test-labels.u8');
  return indices.map((i) => {
    if (!(Number.isInteger(i) && i >= 0 && i < labels.length)) throw new Error(`y4m: Fashion-MNIST test index ${i} is out of range 0..${labels.length - 1}`);
    return { width: 28, height: 28, channels: 1, data: pixels.subarray(i * 784, (i + 1) * 784), label: labels[i], index: i };
  });
}

/** The centre square of a width x height frame: { x, y, side }. */
export function centreSquare(width, height) {
  const side = Math.min(width, height);
  return { x: (width - side) >> 1, y: (height - side) >> 1, side };
}

/**
 * Scales `image` ({ width, height, channels: 1 | 3 | 4, data: Uint8Array }, row-major, interleaved) to side x side
 * RGB, bilinear with half-pixel centres (edges clamped); alpha is ignored.
 */
export function scaleToSquare(image, side) {
  const { width: w, height: h, channels: c, data } = image;
  if (![1, 3, 4].includes(c) || data.length !== w * h * c) throw new Error(`y4m: an image needs channels 1, 3 or 4 and width*height*channels bytes (${w}x${h}x${c}), got ${data.length}`);
  const out = new Uint8Array(side * side * 3);
  const at = (x, y, k) => data[(y * w + x) * c + (c === 1 ? 0 : k)];
  for (let oy = 0; oy < side; oy++) {
    const sy = Math.max(0, (oy + 0.5) * (h / side) - 0.5);
    const y0 = Math.min(Math.floor(sy), h - 1), y1 = Math.min(y0 + 1, h - 1), fy = sy - Math.floor(sy);
    for (let ox = 0; ox < side; ox++) {
      const sx = Math.max(0, (ox + 0.5) * (w / side) - 0.5);
      const x0 = Math.min(Math.floor(sx), w - 1), x1 = Math.min(x0 + 1, w - 1), fx = sx - Math.floor(sx);
      for (let k = 0; k < 3; k++) {
        const top = at(x0, y0, k) * (1 - fx) + at(x1, y0, k) * fx;
        const bottom = at(x0, y1, k) * (1 - fx) + at(x1, y1, k) * fx;
        out[(oy * side + ox) * 3 + k] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return out;
}

/** The marker's blocks for a segment: MARKER_BLOCKS booleans (true = white). */
export function markerBits(segment) {
  if (!(Number.isInteger(segment) && segment >= 0 && segment < 1 << MARKER_BITS)) throw new Error(`y4m: segment ${segment} does not fit the marker's ${MARKER_BITS} bits`);
  const bits = [true, false];
  for (let b = MARKER_BITS - 1; b >= 0; b--) bits.push(((segment >> b) & 1) === 1);
  bits.push(true);
  return bits;
}

/** One RGB frame showing `image` in the centre square and `segment` in the marker. */
export function labelledFrame(image, segment, width, height) {
  const { x, y, side } = centreSquare(width, height);
  const margin = Math.max(x, y);
  if (margin < 8) throw new Error(`y4m: a ${width}x${height} frame leaves ${margin} px beside the centre square; the marker needs 8 (make one side 16 px longer)`);
  const rgb = new Uint8Array(width * height * 3).fill(128);
  const square = scaleToSquare(image, side);
  for (let r = 0; r < side; r++) rgb.set(square.subarray(r * side * 3, (r + 1) * side * 3), ((y + r) * width + x) * 3);
  // The marker runs along the margin's long side (the frame's height when landscape, its width when portrait).
  const landscape = width > height;
  const along = landscape ? height : width;
  const bits = markerBits(segment);
  for (let b = 0; b < MARKER_BLOCKS; b++) {
    const from = Math.round((b * along) / MARKER_BLOCKS), to = Math.round(((b + 1) * along) / MARKER_BLOCKS);
    const value = bits[b] ? 255 : 0;
    for (let a = from; a < to; a++) {
      for (let d = 0; d < margin; d++) {
        const [px, py] = landscape ? [d, a] : [a, d];
        rgb.fill(value, (py * width + px) * 3, (py * width + px) * 3 + 3);
      }
    }
  }
  return rgb;
}

/**
 * Frames for a fake camera: each of `images` ({ width, height, channels, data } gray/RGB/RGBA sources, e.g. from
 * fashionImages(), or any decoded image) becomes segment i (its position in `images`), held for `framesPerImage`
 * frames. Returns { frames (a re-iterable generator of RGB frames, one array per segment), segments: [{ segment,
 * firstFrame, frames, label?, index? }], frameCount }. Pass `frames` to writeY4m.
 */
export function buildLabelledFrames(images, { width, height, framesPerImage = 10 }) {
  if (!images.length) throw new Error('y4m: no images');
  const segments = images.map((img, i) => ({ segment: i, firstFrame: i * framesPerImage, frames: framesPerImage, label: img.label, index: img.index }));
  return {
    segments,
    frameCount: images.length * framesPerImage,
    frames: {
      *[Symbol.iterator]() {
        for (let i = 0; i < images.length; i++) {
          const frame = labelledFrame(images[i], i, width, height);
          for (let f = 0; f < framesPerImage; f++) yield frame;
        }
      },
    },
  };
}

/**
 * Reads the segment index from a frame's pixels (RGBA by default, as getImageData gives, or RGB with channels 3),
 * at whatever size it was drawn; null if the marker's start/end pattern is not there. Self-contained: it can be
 * passed to page.evaluate.
 */
export function readMarker(pixels, width, height, channels = 4) {
  const blocks = 13, bitsCount = 10;
  const side = Math.min(width, height);
  const landscape = width > height;
  const margin = Math.floor((Math.max(width, height) - side) / 2);
  if (margin < 2) return null;
  const along = landscape ? height : width;
  const white = [];
  for (let b = 0; b < blocks; b++) {
    const a = Math.floor(((b + 0.5) * along) / blocks);
    const d = Math.floor(margin / 2);
    const [x, y] = landscape ? [d, a] : [a, d];
    const p = (y * width + x) * channels;
    const luma = 0.299 * pixels[p] + 0.587 * pixels[p + 1] + 0.114 * pixels[p + 2];
    if (luma > 40 && luma < 215) return null; // neither black nor white: no marker here
    white.push(luma >= 128);
  }
  if (!white[0] || white[1] || !white[blocks - 1]) return null;
  let segment = 0;
  for (let b = 0; b < bitsCount; b++) segment = segment * 2 + (white[2 + b] ? 1 : 0);
  return segment;
}
