// The paced runner holds spawns while a monitor cycle runs (its heartbeat first), and lets them go
// the moment the cycle ends: a takeover's test and start wait on exactly that.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pacedRunner, type Runner, type SpawnCallbacks } from '../../src/init/runner.js';

const quiet: SpawnCallbacks = { onExit: () => undefined, onGone: () => undefined, onOutput: () => undefined };

function recorder(): { runner: Runner; started: string[] } {
  const started: string[] = [];
  return { started, runner: { spawn: (req) => (started.push(req.command), { pgid: 1, signal: () => undefined, sweep: () => undefined }) } };
}

// Fake timers: the order of the held retry (5 ms) and the resumed start (next timer turn) is
// what is tested, with no real waiting.
beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());
const clock = (): number => Date.now();

describe('pacedRunner', () => {
  it('holds a spawn while held, starts it once resumed, before its retry would have', () => {
    const { runner, started } = recorder();
    let held = true;
    const paced = pacedRunner(runner, 4, 12, () => held, clock);
    paced.spawn({ command: 'test' }, quiet);
    expect(started).toEqual([]);
    held = false;
    paced.resume();
    vi.advanceTimersByTime(1); // the held retry would come at 5 ms
    expect(started).toEqual(['test']);
  });

  it('resume while still held starts nothing; the retry starts it once the hold ends', () => {
    const { runner, started } = recorder();
    let held = true;
    const paced = pacedRunner(runner, 4, 12, () => held, clock);
    paced.spawn({ command: 'start' }, quiet);
    paced.resume();
    vi.advanceTimersByTime(1);
    expect(started).toEqual([]);
    held = false;
    vi.advanceTimersByTime(5);
    expect(started).toEqual(['start']);
  });
});
