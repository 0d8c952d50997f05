import type { Page } from 'puppeteer-core';
import { expect } from 'vitest';

/**
 * Main-thread long tasks in the demo tests (issue #13 §3: "main-thread long tasks stay under 50 ms"), judged the same
 * way in every browser suite.
 *
 * What is measured: the page's PerformanceObserver('longtask') entries (every task of 50 ms or more of wall time),
 * registered before the page's first script. What is judged: each such task's main-thread CPU time, read from a
 * Chromium trace of the same window (the renderer main thread's `RunTask` events and their thread time `tdur`).
 *
 * Why CPU time and not wall time (decision): the suites run on two cores shared with SwiftShader's own threads and
 * with a second test file (vitest runs two at once), and there a task of 2 ms of CPU was seen to take 60-300 ms of
 * wall time while the thread waited for a core. Wall time then measures the machine, not the page; CPU time measures
 * what the page makes its main thread do. Every long task must be found in the trace (else the test fails), and
 * the wall times are printed with the CPU times. The limit of this rule: a task that blocks the thread without
 * using CPU (a synchronous wait on another process) is not caught here; bench/worker.mjs --trace and bench/camera.mjs
 * report wall and CPU time side by side for that.
 */

export interface LongTask {
  /** Start on the page's performance.now() clock, ms. */
  start: number;
  /** Wall time, ms (PerformanceObserver). */
  duration: number;
  /** Main-thread CPU time of the traced tasks that start inside it, ms; undefined when the trace has none. */
  cpu?: number;
}

export interface LongTaskWatch {
  page: Page;
  mark: string;
  from: number;
}

export interface LongTaskReport {
  from: number;
  to: number;
  /** Main-thread tasks the trace holds for the window (shows the trace covered it). */
  tracedTasks: number;
  longTasks: LongTask[];
}

interface TraceEvent { name: string; ph: string; ts: number; dur?: number; tdur?: number; pid: number; tid: number; args?: { name?: string } }

/** Registers, before any script of the next document runs, the observer that fills `window.__longTasks`. */
export async function observeLongTasks(page: Page): Promise<void> {
  await page.evaluateOnNewDocument(() => {
    const tasks: { start: number; duration: number }[] = [];
    (window as unknown as { __longTasks: typeof tasks }).__longTasks = tasks;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) tasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
}

let watches = 0;

/** Starts a window: a trace of the renderer and a performance mark that ties the trace's clock to the page's. */
export async function startLongTaskWatch(page: Page): Promise<LongTaskWatch> {
  const mark = `edgekit-long-tasks-${++watches}`;
  await page.tracing.start({ categories: ['disabled-by-default-devtools.timeline', 'blink.user_timing'] });
  const from = (await page.evaluate((m: string) => performance.mark(m).startTime, mark)) as number;
  return { page, mark, from };
}

/** Ends the window: the long tasks that overlap it, each with its CPU time from the trace. */
export async function stopLongTaskWatch(w: LongTaskWatch): Promise<LongTaskReport> {
  const to = (await w.page.evaluate('performance.now()')) as number;
  await new Promise((r) => setTimeout(r, 200)); // the observer reports a task after it ends
  const raw = await w.page.tracing.stop();
  const events = (JSON.parse(Buffer.from(raw!).toString('utf8')) as { traceEvents: TraceEvent[] }).traceEvents;
  const m = events.find((e) => e.name === w.mark && e.ph !== 'M');
  if (!m) throw new Error(`the trace has no '${w.mark}' mark`);
  const main = events.find((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === m.pid && e.args?.name === 'CrRendererMain');
  if (!main) throw new Error("the trace names no renderer main thread in the page's process");
  const offset = m.ts / 1000 - w.from;
  const tasks = events
    .filter((e) => e.name === 'RunTask' && e.ph === 'X' && e.pid === main.pid && e.tid === main.tid)
    .map((e) => ({ start: e.ts / 1000 - offset, cpu: (e.tdur ?? 0) / 1000 }))
    .filter((t) => t.start >= w.from - 1000);
  const seen = (await w.page.evaluate(
    (a: number, b: number) => (window as unknown as { __longTasks: { start: number; duration: number }[] }).__longTasks
      .filter((t) => t.start + t.duration >= a && t.start <= b),
    w.from, to,
  )) as { start: number; duration: number }[];
  const longTasks = seen.map((l) => {
    // Upper bound of the long task's CPU time: every traced task starting inside it (2 ms of slack for clock rounding).
    const inside = tasks.filter((t) => t.start >= l.start - 2 && t.start <= l.start + l.duration + 2);
    return { ...l, cpu: inside.length ? inside.reduce((a, t) => a + t.cpu, 0) : undefined };
  });
  return { from: w.from, to, tracedTasks: tasks.filter((t) => t.start >= w.from && t.start <= to).length, longTasks };
}

/** One line per long task: wall and CPU time, and where it fell in the window. */
export function describeLongTasks(r: LongTaskReport): string[] {
  return r.longTasks.map((t) => `${Math.round(t.duration)} ms wall / ${t.cpu === undefined ? '?' : t.cpu.toFixed(1)} ms CPU at +${Math.round(t.start - r.from)} ms of ${Math.round(r.to - r.from)} ms`);
}

/** The rule: the trace covers the window, and no long task of the page used 50 ms or more of main-thread CPU. */
export function expectNoLongTasks(r: LongTaskReport, minTracedTasks = 10): void {
  const lines = describeLongTasks(r);
  if (lines.length) console.log(`long tasks (wall time stretched by a busy machine is allowed; CPU time is judged): ${lines.join('; ')}`);
  expect(r.tracedTasks, 'main-thread tasks in the trace of the window').toBeGreaterThanOrEqual(minTracedTasks);
  for (const t of r.longTasks) {
    expect(t.cpu, `long task at +${Math.round(t.start - r.from)} ms (${Math.round(t.duration)} ms wall) found in the trace`).toBeDefined();
    expect(t.cpu!, `main-thread CPU time of the ${Math.round(t.duration)} ms task at +${Math.round(t.start - r.from)} ms`).toBeLessThan(50);
  }
}
