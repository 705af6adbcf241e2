// Pure state machines of the group engine: one per cltab entry (process) and one per group.
// No timers, processes or clocks here: inputs are events, outputs are new state plus effects
// as data, which src/init/engine.ts carries out.

import { entryHasLevel, HEALTH_DEFAULTS, sameHealth, type CltabEntry, type HealthCheck, type RunMode } from '../config/cltab.js';
import type { GroupState } from '../config/clstat.js';

export { SETTLED_GROUP_STATES, type GroupState } from '../config/clstat.js';

// ---------------------------------------------------------------- timings

export interface Timings {
  /** SIGINT first; SIGTERM this long after the stop began. */
  readonly termAfterMs: number;
  /** SIGKILL this long after the stop began. */
  readonly killAfterMs: number;
  /** SIGKILL is repeated this often while the process group survives. */
  readonly killRepeatMs: number;
  /** Crash-loop detection: more than `burstCount` exits within `burstWindowMs`... */
  readonly burstCount: number;
  readonly burstWindowMs: number;
  /** ...starts backoff at `backoffMinMs`, doubling up to `backoffMaxMs`. */
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  /** An instance that ran this long resets the crash-loop memory. */
  readonly resetAfterMs: number;
  /** Backoff delays vary by ± this fraction. */
  readonly jitter: number;
  /**
   * A group restarted here (after failing health checks, or a respawn entry entering crash-loop
   * backoff) more than this many times within `restartWindowMs` is given up on this node. A
   * `monitor` entry's max_restarts/window override these for its group.
   */
  readonly maxRestarts: number;
  readonly restartWindowMs: number;
}

export const DEFAULT_TIMINGS: Timings = {
  termAfterMs: 5_000,
  killAfterMs: 15_000,
  killRepeatMs: 5_000,
  burstCount: 5,
  burstWindowMs: 10_000,
  backoffMinMs: 1_000,
  backoffMaxMs: 60_000,
  resetAfterMs: 10_000,
  jitter: 0.1,
  maxRestarts: 3,
  restartWindowMs: 600_000,
};

// ---------------------------------------------------------------- respawn backoff

export interface RespawnMemory {
  /** Monotonic times of recent quick exits, oldest first. */
  readonly exits: readonly number[];
  /** Current backoff step in ms; 0 while not throttled. */
  readonly backoffMs: number;
}

export const FRESH_RESPAWN: RespawnMemory = { exits: [], backoffMs: 0 };

/**
 * After a respawn entry exits: how long to wait before restarting it. Restart at once unless
 * it is crash-looping; then back off exponentially with jitter, never give up, and forget the
 * loop once an instance stayed up for `resetAfterMs`.
 */
export function respawnDelay(
  memory: RespawnMemory,
  uptimeMs: number,
  now: number,
  random: number,
  t: Timings,
): { delayMs: number; memory: RespawnMemory } {
  if (uptimeMs >= t.resetAfterMs) return { delayMs: 0, memory: FRESH_RESPAWN };
  const exits = [...memory.exits.filter((x) => now - x < t.burstWindowMs), now];
  let backoffMs = memory.backoffMs;
  if (backoffMs > 0) backoffMs = Math.min(backoffMs * 2, t.backoffMaxMs);
  else if (exits.length > t.burstCount) backoffMs = t.backoffMinMs;
  const kept = exits.slice(-(t.burstCount + 1));
  if (backoffMs === 0) return { delayMs: 0, memory: { exits: kept, backoffMs } };
  const factor = 1 + t.jitter * (2 * random - 1);
  return { delayMs: Math.max(0, Math.round(backoffMs * factor)), memory: { exits: kept, backoffMs } };
}

// ---------------------------------------------------------------- process machine

export type ProcState =
  | 'CONFIGURED' // not running, never started (or stopped and reset)
  | 'RUNFG' // wait entry running: blocks the next entry
  | 'RUNTEST' // test entry running: blocks the next entry
  | 'RUNBG' // once/respawn entry running: does not block
  | 'DONE' // wait/once exited
  | 'PASS' // test exited 0
  | 'FAIL' // test exited non-zero, by a signal, or could not be executed
  | 'BACKOFF' // respawn entry waiting out a crash-loop delay
  | 'WATCHING' // monitor entry waiting for its next check
  | 'PROBING' // monitor entry's check running
  | 'STOPPING' // being stopped: SIGINT → SIGTERM → SIGKILL on its process group
  | 'HELD'; // a stop entry refused by the runner (the node may be self-fencing) or killed from outside: it blocks until retried

export type ProcEvent =
  | { readonly type: 'START' }
  | { readonly type: 'STOP' }
  /** The process group's leader exited (code 127 when it could not be executed). */
  | { readonly type: 'EXIT'; readonly code: number | null; readonly signal: string | null; readonly uptimeMs: number }
  /** The last member of the process group is gone. Always follows EXIT. */
  | { readonly type: 'GONE' }
  | { readonly type: 'ESCALATE' }
  | { readonly type: 'RESPAWN' }
  /** Out of time (a stop level past its stop_timeout): SIGKILL the process group now. */
  | { readonly type: 'KILL' }
  /** A monitor entry's interval passed; `ready`: its group is settled (DONE) at its level, so check now. */
  | { readonly type: 'CHECK'; readonly ready: boolean }
  /** A monitor entry's check ran past its timeout. */
  | { readonly type: 'TIMEOUT' }
  /** The runner refused to run the command: nothing ran (a stop entry must run later, not count as done). */
  | { readonly type: 'REFUSED' }
  /** A stop entry was killed by a signal the engine did not send (a watchdog, the OOM killer): it did not finish releasing. */
  | { readonly type: 'INTERRUPTED'; readonly signal: string }
  /** A held entry may be started again. */
  | { readonly type: 'RETRY' };

export type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGKILL';

export type ProcTimer = 'escalate' | 'respawn' | 'check' | 'timeout';

export type ProcEffect =
  | { readonly type: 'spawn' }
  | { readonly type: 'signal'; readonly signal: StopSignal }
  | { readonly type: 'timer'; readonly name: ProcTimer; readonly ms: number }
  | { readonly type: 'cancelTimer'; readonly name: ProcTimer }
  /** Stop what the previous instance left in its process group (before a respawn). */
  | { readonly type: 'sweep' }
  /** A monitor entry failed `failures` checks in a row: its group needs a restart. */
  | { readonly type: 'unhealthy'; readonly failures: number };

/** A monitor entry's check history. */
export interface CheckMemory {
  /** Checks failed in a row (0 after a passing check). */
  readonly failures: number;
  readonly checks: number;
  /** The last finished check (monotonic time), or null before the first. */
  readonly last: { readonly at: number; readonly ok: boolean; readonly code: number | null; readonly signal: string | null; readonly timedOut: boolean } | null;
  /** The running check was killed at its timeout. */
  readonly timedOut: boolean;
}

export const FRESH_CHECK: CheckMemory = { failures: 0, checks: 0, last: null, timedOut: false };

export interface Proc {
  readonly state: ProcState;
  readonly mode: RunMode;
  /** A process group of ours still has members (leader may have exited). */
  readonly groupAlive: boolean;
  /** Escalation step while STOPPING: 0 = SIGINT sent, 1 = SIGTERM sent, 2+ = SIGKILL sent. */
  readonly stopStep: number;
  readonly respawn: RespawnMemory;
  readonly lastExit: { readonly code: number | null; readonly signal: string | null } | null;
  /** Human note for status, e.g. "respawn backoff 8s". */
  readonly note: string | null;
  /** Monitor entries only: the check's options and history. */
  readonly health?: HealthCheck;
  readonly check?: CheckMemory;
}

export function newProc(mode: RunMode, health?: HealthCheck): Proc {
  const base: Proc = { state: 'CONFIGURED', mode, groupAlive: false, stopStep: 0, respawn: FRESH_RESPAWN, lastExit: null, note: null };
  return mode === 'monitor' ? { ...base, health: health ?? HEALTH_DEFAULTS, check: FRESH_CHECK } : base;
}

export interface StepContext {
  readonly now: number;
  readonly random: number;
  readonly timings: Timings;
}

export interface ProcStep {
  readonly proc: Proc;
  readonly effects: readonly ProcEffect[];
}

type ProcHandler = (p: Proc, e: ProcEvent, c: StepContext) => ProcStep;

const RUN_STATE: Record<RunMode, ProcState> = {
  wait: 'RUNFG',
  test: 'RUNTEST',
  once: 'RUNBG',
  respawn: 'RUNBG',
  off: 'CONFIGURED', // `off` entries are never executed
  monitor: 'WATCHING', // a check runs only every interval, while the group is settled
};

const healthOf = (p: Proc): HealthCheck => p.health ?? HEALTH_DEFAULTS;

const start: ProcHandler = (p) => {
  if (p.mode === 'off') return { proc: p, effects: [] };
  if (p.mode === 'monitor') {
    // The first check comes an interval after the level started, not at once.
    return { proc: { ...p, state: RUN_STATE[p.mode], check: FRESH_CHECK, note: null }, effects: [{ type: 'timer', name: 'check', ms: healthOf(p).intervalMs }] };
  }
  return { proc: { ...p, state: RUN_STATE[p.mode], groupAlive: true, note: null }, effects: [{ type: 'spawn' }] };
};

// ---- monitor entries: WATCHING ⇄ PROBING

/** The interval passed: check now if the group is settled at its level, else wait another interval. */
const probe: ProcHandler = (p, e) => {
  const ev = e as Extract<ProcEvent, { type: 'CHECK' }>;
  const h = healthOf(p);
  if (!ev.ready) return { proc: p, effects: [{ type: 'timer', name: 'check', ms: h.intervalMs }] };
  const sweep: ProcEffect[] = p.groupAlive ? [{ type: 'sweep' }] : [];
  return {
    proc: { ...p, state: 'PROBING', groupAlive: true, check: { ...(p.check ?? FRESH_CHECK), timedOut: false } },
    effects: [...sweep, { type: 'spawn' }, { type: 'timer', name: 'timeout', ms: h.timeoutMs }],
  };
};

/** The check ran too long: kill it (its exit then counts as a failure). */
const probeTimedOut: ProcHandler = (p) => ({
  proc: { ...p, check: { ...(p.check ?? FRESH_CHECK), timedOut: true } },
  effects: [{ type: 'signal', signal: 'SIGKILL' }],
});

/** The check finished: exit 0 passes and resets the count; anything else (or a timeout) fails. */
const probed: ProcHandler = (p, e, c) => {
  const ev = e as Extract<ProcEvent, { type: 'EXIT' }>;
  const h = healthOf(p);
  const before = p.check ?? FRESH_CHECK;
  const ok = ev.code === 0 && !before.timedOut;
  const failures = ok ? 0 : before.failures + 1;
  const check: CheckMemory = { failures, checks: before.checks + 1, last: { at: c.now, ok, code: ev.code, signal: ev.signal, timedOut: before.timedOut }, timedOut: false };
  const why = before.timedOut ? `timed out after ${h.timeoutMs} ms` : ev.signal ? `killed by ${ev.signal}` : `exit ${ev.code}`;
  const note = ok ? null : `check failed (${why}), ${failures} of ${h.failures} in a row`;
  const effects: ProcEffect[] = [{ type: 'cancelTimer', name: 'timeout' }, { type: 'timer', name: 'check', ms: h.intervalMs }];
  if (failures >= h.failures) effects.push({ type: 'unhealthy', failures });
  return { proc: { ...p, state: 'WATCHING', check, lastExit: { code: ev.code, signal: ev.signal }, note }, effects };
};

/** A waiting monitor entry stops at once (what a check left behind is stopped like a process). */
const unwatch: ProcHandler = (p, e, c) => {
  if (!p.groupAlive) return { proc: { ...p, state: 'CONFIGURED', note: null }, effects: [{ type: 'cancelTimer', name: 'check' }] };
  const s = beginStop(p, e, c);
  return { proc: s.proc, effects: [{ type: 'cancelTimer', name: 'check' }, ...s.effects] };
};

const stopProbe: ProcHandler = (p, e, c) => {
  const s = beginStop(p, e, c);
  return { proc: s.proc, effects: [{ type: 'cancelTimer', name: 'timeout' }, ...s.effects] };
};

const killProbe: ProcHandler = (p, e, c) => {
  const s = killNow(p, e, c);
  return { proc: s.proc, effects: [{ type: 'cancelTimer', name: 'timeout' }, { type: 'cancelTimer', name: 'check' }, ...s.effects] };
};

const killWatch: ProcHandler = (p, e, c) =>
  p.groupAlive ? killProbe(p, e, c) : { proc: { ...p, state: 'CONFIGURED', note: null }, effects: [{ type: 'cancelTimer', name: 'check' }] };

const beginStop: ProcHandler = (p, _e, c) => ({
  proc: { ...p, state: 'STOPPING', stopStep: 0, note: null },
  effects: [{ type: 'signal', signal: 'SIGINT' }, { type: 'timer', name: 'escalate', ms: c.timings.termAfterMs }],
});

/** A finished entry whose process group still has members must be stopped like a running one. */
const stopFinished: ProcHandler = (p, e, c) =>
  p.groupAlive ? beginStop(p, e, c) : { proc: { ...p, state: 'CONFIGURED', note: null }, effects: [] };

const escalate: ProcHandler = (p, _e, c) => {
  const t = c.timings;
  if (p.stopStep === 0) {
    return {
      proc: { ...p, stopStep: 1 },
      effects: [{ type: 'signal', signal: 'SIGTERM' }, { type: 'timer', name: 'escalate', ms: Math.max(0, t.killAfterMs - t.termAfterMs) }],
    };
  }
  return {
    proc: { ...p, stopStep: p.stopStep + 1, note: p.stopStep >= 2 ? 'survives SIGKILL' : null },
    effects: [{ type: 'signal', signal: 'SIGKILL' }, { type: 'timer', name: 'escalate', ms: t.killRepeatMs }],
  };
};

const exited =
  (next: (p: Proc, code: number | null) => ProcState): ProcHandler =>
  (p, e) => {
    const ev = e as Extract<ProcEvent, { type: 'EXIT' }>;
    return { proc: { ...p, state: next(p, ev.code), lastExit: { code: ev.code, signal: ev.signal } }, effects: [] };
  };

const respawnExited: ProcHandler = (p, e, c) => {
  const ev = e as Extract<ProcEvent, { type: 'EXIT' }>;
  const lastExit = { code: ev.code, signal: ev.signal };
  if (p.mode !== 'respawn') return { proc: { ...p, state: 'DONE', lastExit }, effects: [] };
  const { delayMs, memory } = respawnDelay(p.respawn, ev.uptimeMs, c.now, c.random, c.timings);
  const sweep: ProcEffect[] = p.groupAlive ? [{ type: 'sweep' }] : [];
  if (delayMs === 0) {
    return { proc: { ...p, state: 'RUNBG', groupAlive: true, respawn: memory, lastExit, note: null }, effects: [...sweep, { type: 'spawn' }] };
  }
  return {
    proc: { ...p, state: 'BACKOFF', groupAlive: false, respawn: memory, lastExit, note: `respawn backoff ${Math.round(memory.backoffMs / 1000)}s` },
    effects: [...sweep, { type: 'timer', name: 'respawn', ms: delayMs }],
  };
};

const gone: ProcHandler = (p) => ({ proc: { ...p, groupAlive: false }, effects: [] });

/** SIGKILL at once, whatever step of the stop it was at; repeated while the group survives. */
const killNow: ProcHandler = (p, _e, c) =>
  p.groupAlive || p.state === 'STOPPING' || p.state === 'RUNFG' || p.state === 'RUNTEST' || p.state === 'RUNBG'
    ? { proc: { ...p, state: 'STOPPING', stopStep: Math.max(2, p.stopStep), note: null }, effects: [{ type: 'signal', signal: 'SIGKILL' }, { type: 'timer', name: 'escalate', ms: c.timings.killRepeatMs }] }
    : { proc: p, effects: [] };

const stopped: ProcHandler = (p) => ({
  proc: { ...p, state: 'CONFIGURED', groupAlive: false, stopStep: 0, note: null },
  effects: [{ type: 'cancelTimer', name: 'escalate' }],
});

const ignore: ProcHandler = (p) => ({ proc: p, effects: [] });

const held: ProcHandler = (p) => ({ proc: { ...p, state: 'HELD', groupAlive: false, note: 'not run: spawning refused (self-fencing?); runs once allowed' }, effects: [] });

const interrupted: ProcHandler = (p, e) => {
  const signal = (e as Extract<ProcEvent, { type: 'INTERRUPTED' }>).signal;
  return { proc: { ...p, state: 'HELD', lastExit: { code: null, signal }, note: `killed by ${signal} before it finished; runs again once allowed` }, effects: [] };
};

const unheld: ProcHandler = (p) => ({ proc: { ...p, state: 'CONFIGURED', note: null }, effects: [] });

/** The process transition table. Pairs not listed are ignored. */
export const PROC_TRANSITIONS: Record<ProcState, Partial<Record<ProcEvent['type'], ProcHandler>>> = {
  CONFIGURED: { START: start, GONE: gone },
  RUNFG: { EXIT: exited(() => 'DONE'), STOP: beginStop, GONE: gone, KILL: killNow, REFUSED: held, INTERRUPTED: interrupted },
  RUNTEST: { EXIT: exited((_p, code) => (code === 0 ? 'PASS' : 'FAIL')), STOP: beginStop, GONE: gone, KILL: killNow, REFUSED: held },
  RUNBG: { EXIT: respawnExited, STOP: beginStop, GONE: gone, KILL: killNow, REFUSED: held, INTERRUPTED: interrupted },
  DONE: { STOP: stopFinished, GONE: gone, KILL: killNow },
  PASS: { STOP: stopFinished, GONE: gone, KILL: killNow },
  FAIL: { STOP: stopFinished, GONE: gone, KILL: killNow },
  BACKOFF: {
    RESPAWN: (p) => ({ proc: { ...p, state: 'RUNBG', groupAlive: true }, effects: [{ type: 'spawn' }] }),
    STOP: (p) => ({ proc: { ...p, state: 'CONFIGURED', note: null }, effects: [{ type: 'cancelTimer', name: 'respawn' }] }),
    GONE: gone,
  },
  WATCHING: { CHECK: probe, STOP: unwatch, GONE: gone, KILL: killWatch },
  PROBING: { EXIT: probed, TIMEOUT: probeTimedOut, STOP: stopProbe, GONE: gone, KILL: killProbe },
  STOPPING: { ESCALATE: escalate, EXIT: ignore, GONE: stopped, KILL: killNow },
  HELD: { RETRY: unheld, STOP: unheld, GONE: gone },
};

export function procStep(p: Proc, e: ProcEvent, c: StepContext): ProcStep {
  const handler = PROC_TRANSITIONS[p.state][e.type];
  return handler ? handler(p, e, c) : { proc: p, effects: [] };
}

/** Blocks the next entry of the group from starting. */
export function procBlocks(s: ProcState): boolean {
  return s === 'RUNFG' || s === 'RUNTEST' || s === 'STOPPING' || s === 'HELD';
}

/** Started and not (or no longer) holding up the group. */
export function procSettled(s: ProcState): boolean {
  return s === 'RUNBG' || s === 'DONE' || s === 'PASS' || s === 'FAIL' || s === 'BACKOFF' || s === 'WATCHING' || s === 'PROBING';
}

// ---------------------------------------------------------------- group machine



export type GroupEventType =
  | 'TELL'
  | 'HALT'
  | 'OLD_STOPPED'
  | 'ALL_STARTED'
  | 'ALL_DONE'
  | 'ALL_PASSED'
  | 'ANY_FAILED'
  | 'ALL_HALTED'
  /** Its restarts here ran out (failing checks, a crash loop): it ends FAILED, its stop level run. */
  | 'GIVE_UP';

/** The group transition table. A tell interrupts any state; pairs not listed are ignored. */
export const GROUP_TRANSITIONS: Record<GroupState, Partial<Record<GroupEventType, GroupState>>> = {
  CONFIGURED: { TELL: 'STOPPING', HALT: 'CONFIGURED', GIVE_UP: 'FAILED' },
  STOPPING: { TELL: 'STOPPING', HALT: 'HALTING', OLD_STOPPED: 'STARTING' },
  STARTING: { TELL: 'STOPPING', HALT: 'HALTING', ALL_STARTED: 'CHECKING' },
  CHECKING: { TELL: 'STOPPING', HALT: 'HALTING', ALL_DONE: 'DONE', ALL_PASSED: 'PASSED', ANY_FAILED: 'FAILED' },
  DONE: { TELL: 'STOPPING', HALT: 'HALTING', GIVE_UP: 'FAILED' },
  PASSED: { TELL: 'STOPPING', HALT: 'HALTING', GIVE_UP: 'FAILED' },
  FAILED: { TELL: 'STOPPING', HALT: 'HALTING', GIVE_UP: 'FAILED' },
  HALTING: { TELL: 'STOPPING', HALT: 'HALTING', ALL_HALTED: 'CONFIGURED' },
};

export function groupNext(state: GroupState, event: GroupEventType): GroupState {
  return GROUP_TRANSITIONS[state][event] ?? state;
}

/** What a group's process looks like to the group machine. */
export interface ProcView {
  readonly state: ProcState;
  /** The entry this process was started from. */
  readonly entry: CltabEntry;
}

export interface GroupModel {
  readonly state: GroupState;
  /** The level the group is at or moving to (null before the first tell). */
  readonly level: string | null;
  /** This group's entries (from the configuration of the last tell), file order. */
  readonly entries: readonly CltabEntry[];
}

export type GroupEffect =
  | { readonly type: 'start'; readonly tag: string }
  | { readonly type: 'stop'; readonly tag: string }
  /** Forget a stopped process (its respawn memory, its outcome). */
  | { readonly type: 'discard'; readonly tag: string };

/** An entry keeps its process across a tell only if it still exists unchanged and has the level. */
export function keepsProcess(proc: ProcView, entries: readonly CltabEntry[], level: string): boolean {
  const now = entries.find((e) => e.tag === proc.entry.tag);
  if (!now || now.mode === 'off') return false;
  if (now.mode !== proc.entry.mode || now.command !== proc.entry.command || !sameHealth(now, proc.entry)) return false;
  return entryHasLevel(now, level);
}

/** Entries that run at `level`, in file order (`off` entries never run). */
export function levelEntries(entries: readonly CltabEntry[], level: string): CltabEntry[] {
  return entries.filter((e) => e.mode !== 'off' && entryHasLevel(e, level));
}

/**
 * Group result once every entry of the level started and none blocks (reference §2.6):
 * any FAIL → FAILED; no entries → DONE; all tests and all passed → PASSED; otherwise DONE.
 */
export function groupResult(states: readonly ProcState[], modes: readonly RunMode[]): GroupEventType {
  if (states.includes('FAIL')) return 'ANY_FAILED';
  if (states.length > 0 && modes.every((m) => m === 'test') && states.every((s) => s === 'PASS')) return 'ALL_PASSED';
  return 'ALL_DONE';
}

/**
 * Advance a group as far as it can go given its processes' states. Called after every tell,
 * halt and process change. Returns the new state and what to do to processes.
 */
export function groupReact(model: GroupModel, procs: ReadonlyMap<string, ProcView>): { state: GroupState; effects: GroupEffect[] } {
  const effects: GroupEffect[] = [];
  let state = model.state;
  const level = model.level;
  for (let guard = 0; guard < 8; guard++) {
    if (state === 'STOPPING' || state === 'HALTING') {
      let waiting = false;
      for (const [tag, p] of procs) {
        const goes = state === 'HALTING' || level === null || !keepsProcess(p, model.entries, level);
        if (!goes) continue;
        if (p.state === 'CONFIGURED' || p.state === 'HELD') effects.push({ type: 'discard', tag });
        else {
          waiting = true;
          if (p.state !== 'STOPPING') effects.push({ type: 'stop', tag });
        }
      }
      if (waiting) break;
      state = groupNext(state, state === 'HALTING' ? 'ALL_HALTED' : 'OLD_STOPPED');
      if (state === 'CONFIGURED') break;
      continue;
    }
    if (state === 'STARTING' && level !== null) {
      let blocked = false;
      for (const entry of levelEntries(model.entries, level)) {
        const p = procs.get(entry.tag);
        if (!p || p.state === 'CONFIGURED') {
          effects.push({ type: 'start', tag: entry.tag });
          // once/respawn do not block; wait/test do. Re-check after the start takes effect.
          blocked = true;
          break;
        }
        if (procBlocks(p.state)) {
          blocked = true;
          break;
        }
      }
      if (blocked) break;
      state = groupNext(state, 'ALL_STARTED');
      continue;
    }
    if (state === 'CHECKING' && level !== null) {
      const entries = levelEntries(model.entries, level);
      const views = entries.map((e) => procs.get(e.tag));
      if (views.some((v) => !v || !procSettled(v.state))) break;
      state = groupNext(state, groupResult(views.map((v) => v!.state), entries.map((e) => e.mode)));
      continue;
    }
    break;
  }
  return { state, effects };
}

// ---------------------------------------------------------------- recovery machine
//
// A group settled at a level restarts itself here when a `monitor` entry fails its checks `failures`
// times in a row: its stop level runs (or, without one, it halts), then the level again. A
// respawn entry entering crash-loop backoff counts as one such restart. Past `maxRestarts` within
// `windowMs` the node gives the group up: its stop level runs and it ends FAILED at its level
// (the cluster monitor then moves it elsewhere). An outside tell (or halt) starts afresh.

export type RecoveryPhase =
  | 'IDLE' // nothing under way (restarts may be counting in the window)
  | 'RESTARTING' // running the stop level (or halting) before telling the level again
  | 'GIVING_UP' // running the stop level (or halting) before ending FAILED
  | 'GIVEN_UP'; // FAILED at its level; waits for an outside tell

export interface Recovery {
  readonly phase: RecoveryPhase;
  /** Monotonic times of the restarts counted (oldest first; pruned to the window when counting). */
  readonly restarts: readonly number[];
  /** The level to return to (RESTARTING) or that it was given up at (GIVING_UP, GIVEN_UP). */
  readonly level: string | null;
  /** What it last counted (a failing check, a crash loop), and where it stands, for status. */
  readonly reason: string | null;
  /** The status note: restarting, restarted, given up. */
  readonly note: string | null;
}

export const FRESH_RECOVERY: Recovery = { phase: 'IDLE', restarts: [], level: null, reason: null, note: null };

export type RecoveryEvent =
  /** A monitor entry at `level` failed its checks `failures` times in a row. */
  | { readonly type: 'UNHEALTHY'; readonly level: string; readonly why: string }
  /** A respawn entry at `level` entered crash-loop backoff. */
  | { readonly type: 'CRASHLOOP'; readonly level: string; readonly why: string }
  /** The stop level finished (settled), or the group halted. */
  | { readonly type: 'RELEASED' }
  /** Told a level (or halted) from outside: forget the restarts. */
  | { readonly type: 'TOLD' };

export type RecoveryEffect =
  /** Run the stop level (or halt the group when there is none). */
  | { readonly type: 'release' }
  /** Tell the level again. */
  | { readonly type: 'retell'; readonly level: string }
  /** End FAILED at `level` (GIVE_UP). */
  | { readonly type: 'giveUp'; readonly level: string };

export interface RecoveryLimits {
  readonly maxRestarts: number;
  readonly windowMs: number;
}

export interface RecoveryContext {
  readonly now: number;
  readonly limits: RecoveryLimits;
}

export interface RecoveryStep {
  readonly recovery: Recovery;
  readonly effects: readonly RecoveryEffect[];
}

type RecoveryHandler = (r: Recovery, e: RecoveryEvent, c: RecoveryContext) => RecoveryStep;

/**
 * The group's restart limits at `level`: the strictest of its `monitor` entries' max_restarts and
 * the longest of their windows there, else the engine's timings.
 */
export function recoveryLimits(entries: readonly CltabEntry[], level: string | null, t: Timings): RecoveryLimits {
  const checks = level === null ? [] : levelEntries(entries, level).flatMap((e) => (e.mode === 'monitor' && e.health ? [e.health] : []));
  const max = checks.flatMap((h) => (h.maxRestarts !== undefined ? [h.maxRestarts] : []));
  const windows = checks.flatMap((h) => (h.windowMs !== undefined ? [h.windowMs] : []));
  return { maxRestarts: max.length ? Math.min(...max) : t.maxRestarts, windowMs: windows.length ? Math.max(...windows) : t.restartWindowMs };
}

/** Restarts still inside the window at `now`. */
export function restartsInWindow(r: Recovery, now: number, windowMs: number): number[] {
  return r.restarts.filter((t) => now - t < windowMs);
}

function windowText(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 100) / 10} s`;
}

/** Something failed again: restart (or, for a crash loop, just count), unless the restarts ran out. */
const failedAgain: RecoveryHandler = (r, e, c) => {
  const ev = e as Extract<RecoveryEvent, { type: 'UNHEALTHY' | 'CRASHLOOP' }>;
  const recent = restartsInWindow(r, c.now, c.limits.windowMs);
  const { maxRestarts, windowMs } = c.limits;
  if (recent.length >= maxRestarts) {
    const reason = `${ev.why}, after ${recent.length} restart${recent.length === 1 ? '' : 's'} within ${windowText(windowMs)} (max_restarts ${maxRestarts})`;
    return { recovery: { phase: 'GIVING_UP', restarts: recent, level: ev.level, reason, note: `given up here: ${reason}` }, effects: [{ type: 'release' }] };
  }
  const restarts = [...recent, c.now];
  const reason = `${ev.why} (restart ${restarts.length} of ${maxRestarts} within ${windowText(windowMs)})`;
  if (ev.type === 'CRASHLOOP') {
    // The backoff is the restart: respawn keeps trying on its own; only count it.
    return { recovery: { ...r, restarts, reason, note: `counted as a restart: ${reason}` }, effects: [] };
  }
  return { recovery: { phase: 'RESTARTING', restarts, level: ev.level, reason, note: `restarting here: ${reason}` }, effects: [{ type: 'release' }] };
};

const restarted: RecoveryHandler = (r) => ({
  recovery: { ...r, phase: 'IDLE', level: null, note: `restarted here: ${r.reason ?? ''}` },
  effects: r.level === null ? [] : [{ type: 'retell', level: r.level }],
});

const gaveUp: RecoveryHandler = (r) => ({ recovery: { ...r, phase: 'GIVEN_UP' }, effects: r.level === null ? [] : [{ type: 'giveUp', level: r.level }] });

const afresh: RecoveryHandler = () => ({ recovery: FRESH_RECOVERY, effects: [] });

/** The recovery transition table. Pairs not listed are ignored. */
export const RECOVERY_TRANSITIONS: Record<RecoveryPhase, Partial<Record<RecoveryEvent['type'], RecoveryHandler>>> = {
  IDLE: { UNHEALTHY: failedAgain, CRASHLOOP: failedAgain, TOLD: afresh },
  RESTARTING: { RELEASED: restarted, TOLD: afresh },
  GIVING_UP: { RELEASED: gaveUp, TOLD: afresh },
  GIVEN_UP: { TOLD: afresh },
};

export function recoveryStep(r: Recovery, e: RecoveryEvent, c: RecoveryContext): RecoveryStep {
  const handler = RECOVERY_TRANSITIONS[r.phase][e.type];
  return handler ? handler(r, e, c) : { recovery: r, effects: [] };
}
