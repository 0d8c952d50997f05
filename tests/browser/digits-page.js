// Runs in the browser page: loads the SDK bundle as a user's page would and classifies one digit.
export async function run(origin) {
  const ek = await import(`${origin}/dist/browser/edgekit.js`);
  const session = await ek.InferenceSession.create(`${origin}/tests/fixtures/digits/digits-cnn.onnx`, { backend: 'cpu' });
  const out = await session.run({ input: new ek.Tensor('float32', new Float32Array(64).fill(0.25), [1, 1, 8, 8]) });
  let err = '';
  try {
    await session.run({ wrong: out.logits });
  } catch (e) {
    err = `${e.name}:${e.code}`;
  }
  return { names: session.inputNames, dims: out.logits.dims, finite: Array.from(out.logits.data).every(Number.isFinite), err };
}
