import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnx from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, ModelFormatError } from '../../runtime/errors.js';
import { InferenceSession, Tensor, type LoadProgress } from '../../sdk/node.js';
import { createWorker } from '../../sdk/worker/client.js';
import { gpuForTests } from '../helpers/webgpu-env.js';

// Loading (issue #12 §3) through the public API in Node: progress while fetching and compiling, integrity (SRI
// form), the opt-in disk cache, external data fetched once per file beside a URL, and progress from a worker.
const DIGITS = fileURLToPath(new URL('../fixtures/digits/digits-cnn.onnx', import.meta.url));
const digits = readFileSync(DIGITS);
const sri = (algo: 'sha256' | 'sha384', b: Uint8Array) => `${algo}-${createHash(algo).update(b).digest('base64')}`;

// y = (x + w1) * w2, both weights in 'weights.bin' (w1 at 0, w2 at 16).
const weights = new Uint8Array(new Float32Array([1, 2, 3, 4, 0.5, -1, 2, 10]).buffer);
const external = (name: string, offset: number) => ({
  name, dims: [4], dataType: 1, dataLocation: 1,
  externalData: [{ key: 'location', value: 'weights.bin' }, { key: 'offset', value: String(offset) }, { key: 'length', value: '16' }],
});
const vi = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } } });
const extModel = onnx.onnx.ModelProto.encode({
  irVersion: 8, opsetImport: [{ domain: '', version: 17 }], producerName: 'edgekit-tests',
  graph: {
    name: 'ext', input: [vi('x')], output: [vi('y')], initializer: [external('w1', 0), external('w2', 16)],
    node: [{ opType: 'Add', input: ['x', 'w1'], output: ['s'] }, { opType: 'Mul', input: ['s', 'w2'], output: ['y'] }],
  },
}).finish();

describe('loading: progress, integrity, cache, external data', () => {
  let server: Server;
  let origin = '';
  const hits = new Map<string, number>();
  const files: Record<string, Uint8Array> = {
    '/digits.onnx': digits, '/ext/model.onnx': extModel, '/ext/weights.bin': weights,
    // For the externalDataIntegrity test: its own paths, so its server hit counts are its own.
    '/ext-sri/model.onnx': extModel, '/ext-sri/weights.bin': weights,
  };

  beforeAll(async () => {
    server = createServer(async (req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const body = files[path];
      if (!body) return void res.writeHead(404).end();
      // The model in four chunks some milliseconds apart, so progress has steps.
      res.writeHead(200, { 'content-length': String(body.length), 'content-type': 'application/octet-stream' });
      const step = Math.ceil(body.length / 4);
      for (let i = 0; i < body.length; i += step) {
        res.write(body.subarray(i, i + step));
        await new Promise((r) => setTimeout(r, 20));
      }
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => server?.close());

  const input = () => new Tensor('float32', new Float32Array(64).map((_, i) => (i % 7) / 7), [1, 1, 8, 8]);

  it('reports fetch progress up to the Content-Length, and compile progress on WebGPU', async () => {
    await gpuForTests();
    const events: LoadProgress[] = [];
    const s = await InferenceSession.create(`${origin}/digits.onnx`, { backend: 'webgpu', onProgress: (p) => events.push(p) });
    const fetches = events.filter((e) => e.phase === 'fetch');
    expect(fetches.length).toBeGreaterThan(2);
    expect(fetches.every((e) => e.phase === 'fetch' && e.total === digits.length && e.url === `${origin}/digits.onnx` && !e.fromCache)).toBe(true);
    const loaded = fetches.map((e) => (e.phase === 'fetch' ? e.loaded : -1));
    expect(loaded).toEqual([...loaded].sort((a, b) => a - b));
    expect(loaded.at(-1)).toBe(digits.length);
    const compiles = events.filter((e) => e.phase === 'compile');
    const last = compiles.at(-1);
    expect(last && last.phase === 'compile' && last.total > 0 && last.done === last.total, JSON.stringify(compiles)).toBe(true);
    expect(compiles.every((e) => e.phase === 'compile' && e.done <= e.total)).toBe(true);
    // Fetching came before compiling.
    expect(events.findIndex((e) => e.phase === 'compile')).toBeGreaterThan(events.findLastIndex((e) => e.phase === 'fetch'));
    const cpu = await InferenceSession.create(DIGITS, { backend: 'cpu' });
    const [a, b] = [(await s.run({ input: input() })).logits!.data as Float32Array, (await cpu.run({ input: input() })).logits!.data as Float32Array];
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!)))).toBeLessThan(1e-4);
    await Promise.all([s.release(), cpu.release()]);
  });

  it('reports progress reading a file path', async () => {
    const events: LoadProgress[] = [];
    await (await InferenceSession.create(DIGITS, { backend: 'cpu', onProgress: (p) => events.push(p) })).release();
    expect(events.at(-1)).toEqual({ phase: 'fetch', url: DIGITS, loaded: digits.length, total: digits.length, fromCache: false });
  });

  it("checks integrity in fetch's SRI form; a mismatch is a ModelFormatError and a malformed one an InvalidArgumentError", async () => {
    for (const integrity of [sri('sha256', digits), sri('sha384', digits), `sha256-AAAA ${sri('sha256', digits)}`]) {
      await (await InferenceSession.create(`${origin}/digits.onnx`, { backend: 'cpu', integrity })).release();
    }
    await (await InferenceSession.create(DIGITS, { backend: 'cpu', integrity: sri('sha256', digits) })).release();
    const wrong = sri('sha256', new Uint8Array([1, 2, 3]));
    const err = await InferenceSession.create(`${origin}/digits.onnx`, { backend: 'cpu', integrity: wrong }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as ModelFormatError).details).toMatchObject({ integrity: wrong, got: sri('sha256', digits) });
    await expect(InferenceSession.create(new Uint8Array(digits), { backend: 'cpu', integrity: wrong })).rejects.toBeInstanceOf(ModelFormatError);
    await expect(InferenceSession.create(`${origin}/digits.onnx`, { backend: 'cpu', integrity: 'md5-abc' })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('caches fetched models on disk only when asked; a cached copy that fails integrity is fetched again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgekit-cache-'));
    const url = `${origin}/digits.onnx`;
    const before = hits.get('/digits.onnx') ?? 0;
    await (await InferenceSession.create(url, { backend: 'cpu' })).release();
    expect(readdirSync(dir)).toEqual([]);
    const events: LoadProgress[] = [];
    await (await InferenceSession.create(url, { backend: 'cpu', cache: { dir } })).release();
    expect(readdirSync(dir)).toEqual([`${createHash('sha256').update(url).digest('hex')}.onnx`]);
    await (await InferenceSession.create(url, { backend: 'cpu', cache: { dir }, onProgress: (p) => events.push(p) })).release();
    expect(hits.get('/digits.onnx')).toBe(before + 2);
    expect(events.at(-1)).toMatchObject({ phase: 'fetch', loaded: digits.length, fromCache: true });
    // Corrupt the cached copy: with integrity it is refetched (and the cache repaired); without, it fails to parse.
    const cached = join(dir, readdirSync(dir)[0]!);
    writeFileSync(cached, digits.subarray(0, 100));
    await expect(InferenceSession.create(url, { backend: 'cpu', cache: { dir } })).rejects.toBeInstanceOf(ModelFormatError);
    await (await InferenceSession.create(url, { backend: 'cpu', cache: { dir }, integrity: sri('sha256', digits) })).release();
    expect(hits.get('/digits.onnx')).toBe(before + 3);
    expect(readFileSync(cached).equals(digits)).toBe(true);
  });

  it('fetches external data beside a URL once per file, with progress, whatever the number of tensors in it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgekit-cache-'));
    const events: LoadProgress[] = [];
    const s = await InferenceSession.create(`${origin}/ext/model.onnx`, { backend: 'cpu', cache: { dir }, onProgress: (p) => events.push(p) });
    const y = (await s.run({ x: new Tensor('float32', new Float32Array([1, 1, 1, 1]), [4]) })).y!.data;
    expect(Array.from(y as Float32Array)).toEqual([1, -3, 8, 50]);
    expect(hits.get('/ext/weights.bin')).toBe(1);
    expect(events.filter((e) => e.phase === 'fetch' && e.url.endsWith('/ext/weights.bin')).at(-1)).toMatchObject({ loaded: 32, total: 32 });
    // Cached like the model: a second load asks the server for neither.
    await (await InferenceSession.create(`${origin}/ext/model.onnx`, { backend: 'cpu', cache: { dir } })).release();
    expect([hits.get('/ext/model.onnx'), hits.get('/ext/weights.bin')]).toEqual([1, 1]);
    await s.release();
  });

  it("a worker's createSession reports progress back to the caller", async () => {
    const worker = await createWorker({ url: new URL('../worker/worker-entry.mjs', import.meta.url) });
    try {
      const events: LoadProgress[] = [];
      const s = await worker.createSession(`${origin}/digits.onnx`, { backend: 'cpu', onProgress: (p) => events.push(p) });
      // Progress calls are posted before the session's answer; give the last ones a turn to land.
      await new Promise((r) => setTimeout(r, 50));
      expect(events.at(-1)).toMatchObject({ phase: 'fetch', loaded: digits.length, total: digits.length });
      await s.release();
    } finally {
      await worker.terminate();
    }
  });

  it('externalDataIntegrity checks external data files from the network, the cache, a file path and memory', async () => {
    const x = () => ({ x: new Tensor('float32', new Float32Array([1, 1, 1, 1]), [4]) });
    const y = async (s: InferenceSession) => Array.from((await s.run(x())).y!.data as Float32Array);
    const good = sri('sha256', weights);
    const wrong = sri('sha256', new Uint8Array(32));
    const url = `${origin}/ext-sri/model.onnx`;
    const weightsUrl = `${origin}/ext-sri/weights.bin`;
    const fail = async (p: Promise<unknown>) => {
      const e = await p.then(() => undefined, (err: unknown) => err);
      expect(e).toBeInstanceOf(ModelFormatError);
      expect((e as Error).message).toContain("'weights.bin'");
      expect((e as Error).message).toContain(good); // the digest found
      expect((e as ModelFormatError).details).toMatchObject({ location: 'weights.bin', integrity: wrong, got: good });
    };

    // Network, with the disk cache: a mismatch is refused and not cached; a match is cached and checked again there.
    const dir = mkdtempSync(join(tmpdir(), 'edgekit-cache-'));
    const entry = join(dir, `${createHash('sha256').update(weightsUrl).digest('hex')}.onnx`);
    await fail(InferenceSession.create(url, { backend: 'cpu', cache: { dir }, externalDataIntegrity: { 'weights.bin': wrong } }));
    expect(existsSync(entry)).toBe(false);
    const s = await InferenceSession.create(url, { backend: 'cpu', cache: { dir }, externalDataIntegrity: { './weights.bin': good } });
    expect(await y(s)).toEqual([1, -3, 8, 50]);
    await s.release();
    expect(readFileSync(entry).equals(weights)).toBe(true);
    const fetched = hits.get('/ext-sri/weights.bin');
    await (await InferenceSession.create(url, { backend: 'cpu', cache: { dir }, externalDataIntegrity: { 'weights.bin': good } })).release();
    expect(hits.get('/ext-sri/weights.bin')).toBe(fetched); // served by the cache, after its check
    // A cached copy that fails the check is dropped and fetched again; the fetched one fails too: nothing is kept.
    await fail(InferenceSession.create(url, { backend: 'cpu', cache: { dir }, externalDataIntegrity: { 'weights.bin': wrong } }));
    expect(hits.get('/ext-sri/weights.bin')).toBe(fetched! + 1);
    expect(existsSync(entry)).toBe(false);
    // A corrupted cached copy fails the check: it is dropped and fetched again (the cache repaired).
    writeFileSync(entry, new Uint8Array(32));
    const repaired = await InferenceSession.create(url, { backend: 'cpu', cache: { dir }, externalDataIntegrity: { 'weights.bin': good } });
    expect(await y(repaired)).toEqual([1, -3, 8, 50]);
    await repaired.release();
    expect(hits.get('/ext-sri/weights.bin')).toBe(fetched! + 2);
    expect(readFileSync(entry).equals(weights)).toBe(true);

    // A file path: the file beside the model is read whole and checked before any tensor uses it.
    const folder = mkdtempSync(join(tmpdir(), 'edgekit-ext-'));
    writeFileSync(join(folder, 'model.onnx'), extModel);
    writeFileSync(join(folder, 'weights.bin'), weights);
    const fromFile = await InferenceSession.create(join(folder, 'model.onnx'), { backend: 'cpu', externalDataIntegrity: { 'weights.bin': good } });
    expect(await y(fromFile)).toEqual([1, -3, 8, 50]);
    await fromFile.release();
    await fail(InferenceSession.create(join(folder, 'model.onnx'), { backend: 'cpu', externalDataIntegrity: { 'weights.bin': wrong } }));

    // Bytes with their external data in memory.
    await fail(InferenceSession.create(new Uint8Array(extModel), { backend: 'cpu', externalData: { 'weights.bin': weights }, externalDataIntegrity: { 'weights.bin': wrong } }));
    await (await InferenceSession.create(new Uint8Array(extModel), { backend: 'cpu', externalData: { 'weights.bin': weights }, externalDataIntegrity: { 'weights.bin': good } })).release();

    // A name the model does not read would leave a file unchecked: refused, as are malformed maps and digests.
    const misspelt = await InferenceSession.create(url, { backend: 'cpu', externalDataIntegrity: { 'weight.bin': good } }).catch((e: unknown) => e);
    expect(misspelt).toBeInstanceOf(InvalidArgumentError);
    expect((misspelt as Error).message).toMatch(/'weight\.bin'.*'weights\.bin'/);
    await expect(InferenceSession.create(DIGITS, { backend: 'cpu', externalDataIntegrity: { 'w.bin': good } })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(InferenceSession.create(url, { backend: 'cpu', externalDataIntegrity: { '../w.bin': good } })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(InferenceSession.create(url, { backend: 'cpu', externalDataIntegrity: 'sha256-x' as unknown as Record<string, string> })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(InferenceSession.create(url, { backend: 'cpu', externalDataIntegrity: { 'weights.bin': 'md5-abc' } })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
