import { beforeAll, describe, expect, it } from 'vitest';
import { Scheduler } from '../../runtime/scheduler/index.js';
import { FineTuner, InferenceSession } from '../../sdk/node.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { images, modelPath, range, trainImages, trainSet } from './fine-tuner-helpers.js';

/**
 * tests/sdk/fine-tuner-queue.test.ts on a WebGPU session (SwiftShader unless EDGEKIT_GPU=hardware): the tuner's
 * steps and the session's runs and profiles share the device through one scheduler.
 */
beforeAll(async () => {
  const res = await gpuForTests();
  console.log(`fine-tuner queue (webgpu): ${describeDevice(res)}`);
});

describe('FineTuner on a WebGPU session, scheduled', () => {
  it("a 'user-blocking' run issued during fit runs between two steps, and profile() queues like a run", async () => {
    const scheduler = new Scheduler();
    const s = await InferenceSession.create(modelPath, { backend: 'webgpu', scheduler });
    const tuner = await FineTuner.create(s, { newHead: { classes: 5 } });
    const feed = () => ({ input: images(trainImages, [0, 1]) });
    const log: string[] = [];
    let run: Promise<unknown> | undefined;
    await tuner.fit(trainSet(range(192)), {
      batchSize: 64,
      onProgress: (e) => {
        log.push(e.type === 'step' ? `step${e.batch}` : 'epoch');
        if (e.type === 'step' && e.batch === 0) run = s.run(feed(), { priority: 'user-blocking' }).then(() => log.push('run'));
      },
    });
    await run;
    expect(log).toEqual(['step0', 'run', 'step1', 'step2', 'epoch']);

    // A profile waits for the device like a run: behind a request holding it, and by priority after it.
    const blocker = scheduler.lane({ name: 'blocker' });
    let open!: () => void;
    const held = blocker.submit(() => new Promise<void>((r) => (open = r)));
    await new Promise((r) => setTimeout(r, 0));
    const order: string[] = [];
    const profile = s.profile(feed(), { priority: 'background' }).then((p) => (order.push('profile'), p));
    const later = s.run(feed()).then(() => order.push('run'));
    await new Promise((r) => setTimeout(r, 50));
    expect(order).toEqual([]);
    open();
    const [, p] = await Promise.all([held, profile, later]);
    expect(order).toEqual(['run', 'profile']);
    expect(p.length).toBeGreaterThan(0);
    tuner.dispose();
    await s.release();
  });
});
