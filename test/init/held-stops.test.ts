// A stop entry the runner refuses (the spawn gate is shut while the node may be self-fencing) has
// not released anything: its group stays unfinished at its stop level — still holding, so no peer
// takes it — even past stop_timeout, and the entry runs once spawning is allowed again. Found by
// the simulator (seed 20101, 3 nodes, faults ×3): the watchdog's stop entry was killed at a
// whole-node thaw, the thawed monitor's own stop entries were refused, the engine said `stop DONE`
// and a peer started the group while the VIP was still up here.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCltab } from '../../src/config/cltab.js';
import { Engine, type Clock, type EngineLogger } from '../../src/init/engine.js';
import { groupReact, newProc, procBlocks, procStep, DEFAULT_TIMINGS } from '../../src/init/machines.js';
import { RealRunner, type Runner } from '../../src/init/runner.js';
import { guardedRunner } from '../../src/monitor/machine.js';
import { waitFor } from '../helpers/daemon.js';

const STOP_TIMEOUT_MS = 300;

/** Timers that fire only when the test advances the clock (the stop level's bound). */
class ManualClock implements Clock {
  private t = 0;
  private timers: { at: number; fn: () => void }[] = [];
  now(): number {
    return this.t;
  }
  setTimer(ms: number, fn: () => void): unknown {
    const timer = { at: this.t + ms, fn };
    this.timers.push(timer);
    return timer;
  }
  clearTimer(handle: unknown): void {
    this.timers = this.timers.filter((x) => x !== handle);
  }
  advance(ms: number): void {
    this.t += ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= this.t).sort((a, b) => a.at - b.at)[0];
      if (!due) return;
      this.clearTimer(due);
      due.fn();
    }
  }
}

const rigs: { dir: string; engine: Engine }[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await Promise.race([r.engine.haltAll(), new Promise((resolve) => setTimeout(resolve, 5_000))]);
    rmSync(r.dir, { recursive: true, force: true });
  }
});

/** Group g: a service and a stop entry that logs (after `stopDelay` s); `runner(allowed)` builds the runner. */
function rig(runner: (allowed: () => boolean) => Runner, stopDelay = 0) {
  const dir = mkdtempSync(join(tmpdir(), 'peerha-held-'));
  const parsed = parseCltab(
    [`g:svc:start:respawn:exec sleep 60`, `g:probe:test:test:echo test >> ${dir}/log`, `g:down:stop:wait:sleep ${stopDelay}; echo down >> ${dir}/log`].join('\n'),
    'cltab',
  );
  if (!parsed.ok) throw new Error('cltab');
  const state = { allowed: true };
  const quiet = (): void => undefined;
  const logger: EngineLogger = { info: quiet, warn: quiet, error: quiet };
  const clock = new ManualClock();
  const engine = new Engine({ runner: runner(() => state.allowed), logger, clock, stopLevel: 'stop', stopTimeoutMs: STOP_TIMEOUT_MS, timings: { termAfterMs: 200, killAfterMs: 600 } });
  engine.setConfig(parsed.cltab);
  rigs.push({ dir, engine });
  const log = (): string[] => (existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8').split('\n').filter(Boolean) : []);
  const entry = (tag: string) => engine.groupStatus('g')?.procs.find((p) => p.tag === tag);
  return { engine, clock, state, log, entry, group: () => engine.groupStatus('g')! };
}

const runners: [string, (allowed: () => boolean) => Runner][] = [
  ['the monitor refuses the spawn (guardedRunner)', (allowed) => guardedRunner(new RealRunner({ pollMs: 20 }), allowed, () => undefined, setImmediate)],
  ['the gate stays shut after the fork (RealRunner mayRun)', (allowed) => new RealRunner({ pollMs: 20, mayRun: allowed })],
];

describe('a refused stop entry is held, not done', () => {
  for (const [name, runner] of runners) {
    it(`${name}: the group stays at stop, unfinished, past stop_timeout; the entry runs once allowed`, async () => {
      const r = rig(runner);
      r.engine.tell('g', 'start');
      await waitFor('g started', () => r.group().state === 'DONE', 10_000);
      r.state.allowed = false;
      r.engine.tell('g', 'stop');
      await waitFor('the stop entry held', () => r.entry('down')?.state === 'HELD', 10_000);
      expect(r.group()).toMatchObject({ level: 'stop', state: 'STARTING' });
      expect(r.engine.hasHeld()).toBe(true);
      // Its bound does not halt it: halting would report released what was never released.
      r.clock.advance(STOP_TIMEOUT_MS * 3);
      expect(r.group()).toMatchObject({ level: 'stop', state: 'STARTING' });
      expect(r.entry('down')?.state).toBe('HELD');
      expect(r.log()).toEqual([]);

      r.state.allowed = true;
      r.engine.retryHeld();
      await waitFor('the stop level done', () => r.group().state === 'DONE', 10_000);
      expect(r.log()).toEqual(['down']);
      expect(r.engine.hasHeld()).toBe(false);
    });
  }

  it('elsewhere a refusal stays a failure to execute: a refused test fails at once (126)', async () => {
    const r = rig(runners[0]![1]);
    r.state.allowed = false;
    r.engine.tell('g', 'test');
    await waitFor('the test failed', () => r.group().state === 'FAILED', 10_000);
    expect(r.entry('probe')?.lastExit).toEqual({ code: 126, signal: null });
    expect(r.engine.hasHeld()).toBe(false);
  });

  it('a held entry goes with a halt or another level: nothing of it ever runs', async () => {
    const r = rig(runners[0]![1]);
    r.state.allowed = false;
    r.engine.tell('g', 'stop');
    await waitFor('the stop entry held', () => r.entry('down')?.state === 'HELD', 10_000);
    await r.engine.haltAll();
    expect(r.group().state).toBe('CONFIGURED');
    r.state.allowed = true;
    r.engine.retryHeld();
    expect(r.log()).toEqual([]);
  });
});

// Sim seeds 4374 and 3058: the watchdog took a monitor stalled on the store for dead and SIGKILLed
// its process groups, the running stop entry among them; the engine counted the killed entry as
// done, the thawed monitor saw nothing held, and a peer started the group while the VIP was up here.
describe('a stop entry killed from outside is held and runs again', () => {
  it('killed by a signal the engine did not send: held (still holding), rerun after retryHeld; a fourth kill counts', async () => {
    const r = rig(runners[0]![1], 30);
    r.engine.tell('g', 'stop');
    for (let kill = 1; kill <= 4; kill++) {
      await waitFor(`stop entry running (${kill})`, () => r.entry('down')?.state === 'RUNFG' && r.entry('down')?.pgid != null, 10_000);
      process.kill(-r.entry('down')!.pgid!, 'SIGKILL');
      if (kill === 4) break;
      await waitFor(`the killed stop entry held (${kill})`, () => r.entry('down')?.state === 'HELD', 10_000);
      expect(r.entry('down')?.lastExit).toEqual({ code: null, signal: 'SIGKILL' });
      expect(r.group()).toMatchObject({ level: 'stop', state: 'STARTING' });
      expect(r.engine.hasHeld()).toBe(true);
      r.engine.retryHeld();
    }
    // Bounded: a stop script that keeps dying by a signal does not hold its group forever.
    await waitFor('the fourth kill counts as its exit', () => r.group().state === 'DONE', 10_000);
    expect(r.engine.hasHeld()).toBe(false);
    expect(r.log()).toEqual([]);
  });

  it('a stop entry the engine kills itself (stop_timeout) is not rerun', async () => {
    const r = rig(runners[0]![1], 30);
    r.engine.tell('g', 'stop');
    await waitFor('the stop entry running', () => r.entry('down')?.state === 'RUNFG', 10_000);
    r.clock.advance(STOP_TIMEOUT_MS + 10);
    await waitFor('the stop level halted', () => r.group().state === 'CONFIGURED', 10_000);
    expect(r.engine.hasHeld()).toBe(false);
  });
});

describe('a stop level frozen past its bound (a VM pause)', () => {
  it('its stop entry gets its time again at the thaw instead of being killed; on time, the bound kills', async () => {
    for (const frozen of [true, false]) {
      const r = rig(runners[0]![1], 2);
      r.engine.tell('g', 'stop');
      await waitFor('the stop entry running', () => r.entry('down')?.state === 'RUNFG', 10_000);
      r.clock.advance(STOP_TIMEOUT_MS + (frozen ? 1500 : 10));
      if (frozen) {
        expect(r.entry('down')?.state).toBe('RUNFG');
        await waitFor('the stop level done', () => r.group().state === 'DONE', 10_000);
        expect(r.log()).toEqual(['down']);
      } else {
        await waitFor('the stop level halted', () => r.group().state === 'CONFIGURED', 10_000);
        expect(r.log()).toEqual([]);
      }
    }
  });
});

describe('process machine: HELD', () => {
  const c = { now: 0, random: 0.5, timings: DEFAULT_TIMINGS };
  it('a refused entry is held (blocking its level, no process), a retry makes it startable again', () => {
    const running = procStep(newProc('wait'), { type: 'START' }, c).proc;
    const held = procStep(running, { type: 'REFUSED' }, c).proc;
    expect(held).toMatchObject({ state: 'HELD', groupAlive: false });
    expect(procBlocks('HELD')).toBe(true);
    expect(procStep(held, { type: 'RETRY' }, c).proc.state).toBe('CONFIGURED');
    expect(procStep(held, { type: 'KILL' }, c).proc.state).toBe('HELD');
  });

  it('a group halting discards a held entry (nothing to stop)', () => {
    const parsed = parseCltab('g:down:stop:wait:true\n', 'cltab');
    if (!parsed.ok) throw new Error('cltab');
    const entry = parsed.cltab.entries[0]!;
    const held = { ...newProc('wait'), state: 'HELD' as const };
    const r = groupReact({ state: 'HALTING', level: 'stop', entries: parsed.cltab.entries }, new Map([[entry.tag, { entry, state: held.state }]]));
    expect(r.effects).toEqual([{ type: 'discard', tag: 'down' }]);
  });
});
