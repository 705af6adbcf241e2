// The paced runner holds spawns while a monitor cycle runs (its heartbeat first), and lets them go
// the moment the cycle ends: a takeover's test and start wait on exactly that.

import { describe, expect, it } from 'vitest';
import { pacedRunner, type Runner, type SpawnCallbacks } from '../../src/init/runner.js';

const quiet: SpawnCallbacks = { onExit: () => undefined, onGone: () => undefined, onOutput: () => undefined };

function recorder(): { runner: Runner; started: string[] } {
  const started: string[] = [];
  return { started, runner: { spawn: (req) => (started.push(req.command), { pgid: 1, signal: () => undefined, sweep: () => undefined }) } };
}

const timerTurn = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('pacedRunner', () => {
  it('holds a spawn while held, starts it once resumed, before its retry would have', async () => {
    const { runner, started } = recorder();
    let held = true;
    const paced = pacedRunner(runner, 4, 12, () => held);
    paced.spawn({ command: 'test' }, quiet);
    expect(started).toEqual([]);
    held = false;
    paced.resume();
    // Timers fire in expiry order: the resumed start (0 ms) before this check (2 ms) before the
    // held retry (5 ms after the spawn).
    await timerTurn(2);
    expect(started).toEqual(['test']);
  });

  it('resume while still held starts nothing; the retry starts it once the hold ends', async () => {
    const { runner, started } = recorder();
    let held = true;
    const paced = pacedRunner(runner, 4, 12, () => held);
    paced.spawn({ command: 'start' }, quiet);
    paced.resume();
    await timerTurn(2);
    expect(started).toEqual([]);
    held = false;
    for (let i = 0; i < 100 && started.length === 0; i++) await timerTurn(5);
    expect(started).toEqual(['start']);
  });
});
