/**
 * The request scheduler: one device shared by many models. Each model gets a Lane (a FIFO queue, or a
 * 'latest-only' one for camera frames); the Scheduler runs requests `concurrency` at a time (1 by default: GPU work
 * is serialised per device), choosing by the Prioritized Task Scheduling API's priorities ('user-blocking' >
 * 'user-visible' > 'background'), then round robin across lanes of equal priority, then FIFO within a lane.
 * Requests take an AbortSignal (CancelledError), queues are bounded (QueueFullError), a disposed lane runs nothing
 * more (SessionReleasedError), and long jobs such as training run as steps (Lane.runSteps) so interactive requests
 * fit in between. Pure TypeScript: no DOM, no workers, no GPU; time comes from an injectable Clock.
 */
export { Scheduler, DEFAULT_MAX_PENDING } from './scheduler.js';
export type { SchedulerOptions } from './scheduler.js';
export { Lane } from './lane.js';
export type { LaneOptions, LaneMode, RunInfo, SubmitOptions, StepOptions, Steps } from './lane.js';
export { PRIORITIES } from './priority.js';
export type { TaskPriority } from './priority.js';
export { ManualClock, systemClock } from './clock.js';
export type { Clock } from './clock.js';
