import { InvalidArgumentError } from '../errors.js';

/** The priorities of the Prioritized Task Scheduling API (`scheduler.postTask`), highest first. */
export type TaskPriority = 'user-blocking' | 'user-visible' | 'background';

export const PRIORITIES: readonly TaskPriority[] = Object.freeze(['user-blocking', 'user-visible', 'background']);

/** 0 for 'user-blocking' (runs first) up to 2 for 'background'. */
export function priorityRank(p: TaskPriority): number {
  return PRIORITIES.indexOf(p);
}

export function checkPriority(p: unknown, what = 'priority'): TaskPriority {
  if (typeof p === 'string' && (PRIORITIES as readonly string[]).includes(p)) return p as TaskPriority;
  throw new InvalidArgumentError(`${what} must be one of ${PRIORITIES.map((x) => `'${x}'`).join(', ')}, not ${JSON.stringify(p)}.`, { priority: p });
}

/**
 * The rank a request competes at after waiting `waitedMs`: one level higher per `agingMs` waited (never above
 * 'user-blocking'), so background work is not starved forever by a device that is always busy. No aging when
 * `agingMs` is undefined.
 */
export function effectiveRank(rank: number, waitedMs: number, agingMs: number | undefined): number {
  if (agingMs === undefined || waitedMs < agingMs) return rank;
  return Math.max(0, rank - Math.floor(waitedMs / agingMs));
}
