// Pure state machines of the group engine: one per cltab entry (process) and one per group.
// No timers, processes or clocks here: inputs are events, outputs are new state plus effects
// as data, which src/init/engine.ts carries out.

import { entryHasLevel, type CltabEntry, type RunMode } from '../config/cltab.js';
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
  | 'STOPPING'; // being stopped: SIGINT → SIGTERM → SIGKILL on its process group

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
  | { readonly type: 'KILL' };

export type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGKILL';

export type ProcEffect =
  | { readonly type: 'spawn' }
  | { readonly type: 'signal'; readonly signal: StopSignal }
  | { readonly type: 'timer'; readonly name: 'escalate' | 'respawn'; readonly ms: number }
  | { readonly type: 'cancelTimer'; readonly name: 'escalate' | 'respawn' }
  /** Stop what the previous instance left in its process group (before a respawn). */
  | { readonly type: 'sweep' };

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
}

export function newProc(mode: RunMode): Proc {
  return { state: 'CONFIGURED', mode, groupAlive: false, stopStep: 0, respawn: FRESH_RESPAWN, lastExit: null, note: null };
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
};

const start: ProcHandler = (p) =>
  p.mode === 'off'
    ? { proc: p, effects: [] }
    : { proc: { ...p, state: RUN_STATE[p.mode], groupAlive: true, note: null }, effects: [{ type: 'spawn' }] };

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

/** The process transition table. Pairs not listed are ignored. */
export const PROC_TRANSITIONS: Record<ProcState, Partial<Record<ProcEvent['type'], ProcHandler>>> = {
  CONFIGURED: { START: start, GONE: gone },
  RUNFG: { EXIT: exited(() => 'DONE'), STOP: beginStop, GONE: gone, KILL: killNow },
  RUNTEST: { EXIT: exited((_p, code) => (code === 0 ? 'PASS' : 'FAIL')), STOP: beginStop, GONE: gone, KILL: killNow },
  RUNBG: { EXIT: respawnExited, STOP: beginStop, GONE: gone, KILL: killNow },
  DONE: { STOP: stopFinished, GONE: gone, KILL: killNow },
  PASS: { STOP: stopFinished, GONE: gone, KILL: killNow },
  FAIL: { STOP: stopFinished, GONE: gone, KILL: killNow },
  BACKOFF: {
    RESPAWN: (p) => ({ proc: { ...p, state: 'RUNBG', groupAlive: true }, effects: [{ type: 'spawn' }] }),
    STOP: (p) => ({ proc: { ...p, state: 'CONFIGURED', note: null }, effects: [{ type: 'cancelTimer', name: 'respawn' }] }),
    GONE: gone,
  },
  STOPPING: { ESCALATE: escalate, EXIT: ignore, GONE: stopped, KILL: killNow },
};

export function procStep(p: Proc, e: ProcEvent, c: StepContext): ProcStep {
  const handler = PROC_TRANSITIONS[p.state][e.type];
  return handler ? handler(p, e, c) : { proc: p, effects: [] };
}

/** Blocks the next entry of the group from starting. */
export function procBlocks(s: ProcState): boolean {
  return s === 'RUNFG' || s === 'RUNTEST' || s === 'STOPPING';
}

/** Started and not (or no longer) holding up the group. */
export function procSettled(s: ProcState): boolean {
  return s === 'RUNBG' || s === 'DONE' || s === 'PASS' || s === 'FAIL' || s === 'BACKOFF';
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
  | 'ALL_HALTED';

/** The group transition table. A tell interrupts any state; pairs not listed are ignored. */
export const GROUP_TRANSITIONS: Record<GroupState, Partial<Record<GroupEventType, GroupState>>> = {
  CONFIGURED: { TELL: 'STOPPING', HALT: 'CONFIGURED' },
  STOPPING: { TELL: 'STOPPING', HALT: 'HALTING', OLD_STOPPED: 'STARTING' },
  STARTING: { TELL: 'STOPPING', HALT: 'HALTING', ALL_STARTED: 'CHECKING' },
  CHECKING: { TELL: 'STOPPING', HALT: 'HALTING', ALL_DONE: 'DONE', ALL_PASSED: 'PASSED', ANY_FAILED: 'FAILED' },
  DONE: { TELL: 'STOPPING', HALT: 'HALTING' },
  PASSED: { TELL: 'STOPPING', HALT: 'HALTING' },
  FAILED: { TELL: 'STOPPING', HALT: 'HALTING' },
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
  if (now.mode !== proc.entry.mode || now.command !== proc.entry.command) return false;
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
        if (p.state === 'CONFIGURED') effects.push({ type: 'discard', tag });
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
