// The group engine: owns every group's and process's machine state, feeds events in (tells,
// exits, timers) and carries out the effects the pure machines return. Used by the standalone
// `peerha init` daemon and, in-process, by the cluster monitor.

import { sameHealth, type Cltab, type CltabEntry } from '../config/cltab.js';
import {
  DEFAULT_TIMINGS,
  FRESH_RECOVERY,
  SETTLED_GROUP_STATES,
  groupNext,
  groupReact,
  levelEntries,
  newProc,
  procStep,
  recoveryLimits,
  recoveryStep,
  restartsInWindow,
  type GroupEffect,
  type GroupState,
  type Proc,
  type ProcEffect,
  type ProcEvent,
  type ProcTimer,
  type ProcView,
  type Recovery,
  type RecoveryEffect,
  type RecoveryEvent,
  type RecoveryPhase,
  type Timings,
} from './machines.js';
import type { ProcessHandle, Runner } from './runner.js';

export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  setTimer(ms: number, fn: () => void): unknown;
  clearTimer(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimer: (ms, fn) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface EngineLogger {
  /** Chatter a thousand groups would flood a journal with (every tell, every process state). */
  debug?(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

interface ProcRuntime {
  entry: CltabEntry;
  proc: Proc;
  handle: ProcessHandle | null;
  startedAt: number;
  timers: Partial<Record<ProcTimer, unknown>>;
  /** Monitor entries: wall-clock time (ISO) the last check finished. */
  lastCheckAt: string | null;
  /** Bumped on every spawn so late callbacks of an earlier instance are told apart. */
  generation: number;
  /** Generations whose leftovers are being swept; the entry is not idle until they are gone. */
  sweeping: Set<number>;
  /** Times this stop entry was killed from outside and run again (bounded: a script that kills itself). */
  reruns: number;
}

interface GroupRuntime {
  name: string;
  state: GroupState;
  level: string | null;
  entries: readonly CltabEntry[];
  procs: Map<string, ProcRuntime>;
  /** Removed from cltab: drop it once halted. */
  removing: boolean;
  /** Removed while active: it runs its stop level (from its last entries) before the halt. */
  stoppingForRemoval: boolean;
  /** Fires when the stop level did not finish within stopTimeoutMs. */
  stopTimer: unknown;
  changedAt: number;
  transitions: Array<{ at: string; level: string | null; state: GroupState }>;
  /** Local restarts after failing checks or crash loops, and giving the group up (pure machine). */
  recovery: Recovery;
  /** Recovery events raised by process changes, fed in by the next reaction. */
  recoveryQueue: RecoveryEvent[];
}

export interface ProcStatus {
  readonly tag: string;
  readonly mode: string;
  readonly state: string;
  readonly pgid: number | null;
  readonly note: string | null;
  readonly lastExit: { readonly code: number | null; readonly signal: string | null } | null;
  /** Monitor entries only: their health checks. */
  readonly check?: CheckStatus;
}

export interface CheckStatus {
  /** When the last check finished (ISO), or null before the first. */
  readonly lastAt: string | null;
  readonly lastResult: 'ok' | 'failed' | 'timeout' | null;
  /** Checks failed in a row, and how many restart the group. */
  readonly failures: number;
  readonly threshold: number;
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

export interface GroupStatus {
  readonly group: string;
  /** During a local restart (or while being given up): the level it is restarted at. */
  readonly level: string | null;
  readonly state: GroupState;
  readonly notes: readonly string[];
  readonly procs: readonly ProcStatus[];
  readonly transitions: ReadonlyArray<{ at: string; level: string | null; state: GroupState }>;
  /** Local restarts (failing checks, crash-loop backoffs) within the restart window. */
  readonly restarts?: number;
  readonly maxRestarts?: number;
  /** This node gave the group up (too many restarts): FAILED at its level, its stop level run. */
  readonly givenUp?: boolean;
  readonly recovery?: RecoveryPhase;
}

/** Monotonic counts of a group's troubles on this node since the engine started (for metrics). */
export interface GroupCounts {
  /** A respawn entry's process started again after it exited. */
  respawns: number;
  /** Health checks of its monitor entries that failed or timed out. */
  checkFailures: number;
  /** Local restarts of the group (failing checks, crash loops), as the restart limit counts them. */
  restarts: number;
}

export type TellResult = { ok: true; message: string } | { ok: false; message: string };

export interface EngineOptions {
  runner: Runner;
  clock?: Clock;
  random?: () => number;
  timings?: Partial<Timings>;
  logger: EngineLogger;
  /**
   * Called (synchronously) after any group's state, level or notes changed, with the levels that
   * groups reached a settled state at in this change (DONE, PASSED or FAILED).
   */
  onChange?: (settledAt: readonly string[]) => void;
  env?: NodeJS.ProcessEnv;
  /**
   * The level that releases a group's resources (the cluster monitor's `stop`). A tell to it is
   * bounded: what still runs after stopTimeoutMs is killed and the group halted. A group removed
   * from cltab while active goes through it before it is forgotten.
   */
  /** One level for every group, or one per group. */
  stopLevel?: string | ((group: string) => string);
  stopTimeoutMs?: number;
  /**
   * A respawn entry entering crash-loop backoff counts as a restart of its group (timings
   * maxRestarts / restartWindowMs, or its monitor entries' max_restarts / window); past the limit
   * the group is given up (FAILED at its level, its stop level run). Default: when a stopLevel is
   * set — under the cluster monitor, where another node can take the group over. Standalone
   * `peerha init` keeps Cluster::Init's rule: a crash loop backs off and is retried for ever.
   */
  crashLoopsCount?: boolean;
}

/** Whether two entry lists would run the same processes (a cltab edit that changed nothing here). */
function sameEntries(a: readonly CltabEntry[], b: readonly CltabEntry[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((e, i) => {
    const o = b[i]!;
    return e.tag === o.tag && e.mode === o.mode && e.command === o.command && e.levels.join(',') === o.levels.join(',') && sameHealth(e, o);
  });
}

const MAX_TRANSITIONS = 20;
/** A stop entry killed from outside runs again at most this often (then its exit counts). */
const MAX_STOP_RERUNS = 3;

/**
 * Whether a bound that fell due at `dueAt` fired so late (by more than half of `boundMs`, or a
 * second) that this node was frozen or stalled meanwhile (a VM pause): what it bounds did not get
 * its time. Giving it that time again is safe: its group shows unfinished at its stop level until
 * it is done, and a node silent that long is the watchdog's and its peers' business.
 */
export function firedAfterFreeze(dueAt: number, now: number, boundMs: number): boolean {
  return now - dueAt > Math.min(1000, boundMs / 2);
}

/** Nothing of this entry runs: not started (or held, never run), and no earlier instance's leftovers remain. */
function idle(p: ProcRuntime): boolean {
  return (p.proc.state === 'CONFIGURED' || p.proc.state === 'HELD') && p.sweeping.size === 0;
}

export class Engine {
  private readonly groups = new Map<string, GroupRuntime>();
  /** Groups with a stop entry the runner refused (see retryHeld). */
  private readonly heldGroups = new Set<GroupRuntime>();
  /** The groups in name order, kept until one is added or removed (status() is asked often). */
  private sorted: GroupRuntime[] | null = null;
  private cltab: Cltab | null = null;
  /** The cltab's entries by group (a tell costs O(its entries), not O(the file)). */
  private entriesByGroup = new Map<string, CltabEntry[]>();
  private readonly clock: Clock;
  private readonly random: () => number;
  readonly timings: Timings;
  private readonly haltWaiters: Array<() => void> = [];
  private reacting = false;
  private pending = new Set<GroupRuntime>();
  /** By group; kept when a group is removed, so that the counts never go down. */
  private readonly troubles = new Map<string, GroupCounts>();

  constructor(private readonly opts: EngineOptions) {
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
    this.timings = { ...DEFAULT_TIMINGS, ...opts.timings };
  }

  get config(): Cltab | null {
    return this.cltab;
  }

  /**
   * Install a (valid) configuration. Groups that vanished are stopped gracefully (through the
   * stop level when one is configured) and then forgotten. Edits to other groups take effect at
   * their next tell, or at once with `reconcile`: a group at a level is re-told that level, so
   * new entries start, removed ones stop, edited ones restart and untouched ones keep running.
   */
  setConfig(cltab: Cltab, opts: { reconcile?: boolean } = {}): void {
    this.cltab = cltab;
    this.entriesByGroup = new Map();
    for (const e of cltab.entries) {
      const list = this.entriesByGroup.get(e.group);
      if (list) list.push(e);
      else this.entriesByGroup.set(e.group, [e]);
    }
    for (const g of this.groups.values()) {
      const entries = this.entriesByGroup.get(g.name);
      if (entries) {
        g.removing = false;
        g.stoppingForRemoval = false;
        if (!opts.reconcile || g.level === null || g.state === 'CONFIGURED' || g.state === 'HALTING' || sameEntries(entries, g.entries)) continue;
        if (g.recovery.phase === 'GIVEN_UP') {
          // Given up here: it runs nothing; a new configuration waits for the next tell.
          g.entries = entries;
          continue;
        }
        this.opts.logger.info({ group: g.name, level: g.level }, 'cltab changed: reconciling the group at its level');
        g.entries = entries;
        this.fire(g, 'TELL');
        continue;
      }
      if (g.removing) continue;
      g.removing = true;
      this.recover(g, { type: 'TOLD' });
      const stop = this.stopOf(g.name);
      if (stop !== undefined && g.level === stop && g.state !== 'CONFIGURED' && g.state !== 'HALTING' && !SETTLED_GROUP_STATES.includes(g.state)) {
        // Already running its stop level: let it finish, then forget it.
        g.stoppingForRemoval = true;
        continue;
      }
      if (stop !== undefined && g.state !== 'CONFIGURED' && g.state !== 'HALTING' && g.level !== stop) {
        this.opts.logger.info({ group: g.name, level: stop }, 'group removed from cltab: running its stop level, then forgetting it');
        g.stoppingForRemoval = true;
        g.level = stop;
        this.armStopTimer(g);
        this.fire(g, 'TELL');
        continue;
      }
      this.opts.logger.info({ group: g.name }, 'group removed from cltab: stopping it');
      this.fire(g, 'HALT');
    }
  }

  tell(group: string, level: string): TellResult {
    if (!this.cltab) return { ok: false, message: 'no configuration loaded' };
    const entries = this.entriesByGroup.get(group);
    if (!entries) return { ok: false, message: `no such group: ${group}` };
    let g = this.groups.get(group);
    if (!g) {
      g = {
        name: group,
        state: 'CONFIGURED',
        level: null,
        entries,
        procs: new Map(),
        removing: false,
        stoppingForRemoval: false,
        stopTimer: undefined,
        changedAt: 0,
        transitions: [],
        recovery: FRESH_RECOVERY,
        recoveryQueue: [],
      };
      this.groups.set(group, g);
      this.sorted = null;
    }
    // A tell from outside starts afresh: restarts are counted from here, a given-up group runs again.
    this.recover(g, { type: 'TOLD' });
    g.entries = entries;
    g.removing = false;
    g.stoppingForRemoval = false;
    g.level = level;
    this.opts.logger.debug?.({ group, level }, 'tell');
    this.armStopTimer(g);
    this.fire(g, 'TELL');
    return { ok: true, message: 'level transition started' };
  }

  /**
   * Stop every group (PASSED/FAILED ones too); resolves once nothing runs. `done` is called then
   * too, synchronously (a driver in virtual time cannot wait for a promise).
   */
  haltAll(done?: () => void): Promise<void> {
    for (const g of this.groups.values()) {
      this.recover(g, { type: 'TOLD' });
      this.fire(g, 'HALT');
    }
    return new Promise((resolve) => {
      this.haltWaiters.push(() => {
        done?.();
        resolve();
      });
      this.checkHalted();
    });
  }

  /** Groups with processes or state, in name order. */
  status(): GroupStatus[] {
    const now = this.clock.now();
    this.sorted ??= [...this.groups.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return this.sorted.map((g) => {
      const r = g.recovery;
      // While restarting (or being given up), the group is in transition at its level: that is what
      // the cluster monitor must see (a leave or lost quorum then tells it stop, which ends the restart).
      const releasing = r.phase === 'RESTARTING' || r.phase === 'GIVING_UP';
      const level = releasing && r.level !== null ? r.level : g.level;
      const limits = recoveryLimits(g.entries, level, this.timings);
      const procNotes = [...g.procs.values()].filter((p) => p.proc.note).map((p) => `${p.entry.tag}: ${p.proc.note}`);
      const restarts = restartsInWindow(r, now, limits.windowMs).length;
      // A note on past restarts lasts as long as they count.
      const note = r.note !== null && (r.phase !== 'IDLE' || restarts > 0) ? r.note : null;
      return {
        group: g.name,
        level,
        state: g.state,
        notes: note !== null ? [note, ...procNotes] : procNotes,
        procs: [...g.procs.values()].map((p): ProcStatus => ({
          tag: p.entry.tag,
          mode: p.entry.mode,
          state: p.proc.state,
          pgid: p.proc.groupAlive && p.handle ? p.handle.pgid : null,
          note: p.proc.note,
          lastExit: p.proc.lastExit,
          ...(p.proc.check && p.proc.health
            ? {
                check: {
                  lastAt: p.lastCheckAt,
                  lastResult: p.proc.check.last === null ? null : p.proc.check.last.ok ? 'ok' : p.proc.check.last.timedOut ? 'timeout' : 'failed',
                  failures: p.proc.check.failures,
                  threshold: p.proc.health.failures,
                  intervalMs: p.proc.health.intervalMs,
                  timeoutMs: p.proc.health.timeoutMs,
                },
              }
            : {}),
        })),
        transitions: [...g.transitions],
        restarts,
        maxRestarts: limits.maxRestarts,
        givenUp: r.phase === 'GIVEN_UP' || r.phase === 'GIVING_UP',
        recovery: r.phase,
      };
    });
  }

  /** The entries `group` runs at `level`, from its last tell (or the current cltab), file order. */
  /** Groups that had troubles here, and how many of each kind (monotonic). */
  counts(): ReadonlyMap<string, Readonly<GroupCounts>> {
    return this.troubles;
  }

  private count(group: string, kind: keyof GroupCounts): void {
    let c = this.troubles.get(group);
    if (!c) this.troubles.set(group, (c = { respawns: 0, checkFailures: 0, restarts: 0 }));
    c[kind]++;
  }

  entriesAt(group: string, level: string): CltabEntry[] {
    const entries = this.groups.get(group)?.entries ?? this.entriesByGroup.get(group) ?? [];
    // A monitor entry checks; it does nothing a level needs run (e.g. after a crash).
    return levelEntries(entries, level).filter((e) => e.mode !== 'monitor');
  }

  groupStatus(group: string): GroupStatus | undefined {
    return this.status().find((s) => s.group === group);
  }

  /** True when the group is at `level` and settled (DONE, PASSED or FAILED). */
  settledAt(group: string, level: string): GroupState | null {
    const g = this.groups.get(group);
    if (!g || g.level !== level || !SETTLED_GROUP_STATES.includes(g.state)) return null;
    return g.state;
  }

  /** Whether a stop entry waits to be run again (the runner refused it, or it was killed from outside). */
  hasHeld(): boolean {
    return this.heldGroups.size > 0;
  }

  /**
   * Run the held stop entries now (the runner refused them while the node may have been
   * self-fencing, or a watchdog killed them; the group stayed at its stop level unfinished
   * meanwhile, so still holding).
   */
  retryHeld(): void {
    const groups = [...this.heldGroups];
    this.heldGroups.clear();
    for (const g of groups) {
      if (this.groups.get(g.name) !== g || !this.hasHeldEntry(g)) continue;
      this.opts.logger.info({ group: g.name, level: g.level }, 'running the held stop entries');
      for (const rt of g.procs.values()) if (rt.proc.state === 'HELD') this.procEvent(g, rt, { type: 'RETRY' });
      this.armStopTimer(g);
      this.react(g);
    }
  }

  // ------------------------------------------------------------ internals

  /** A stop entry that was running (not being stopped by the engine) and may run again. */
  private interruptedStop(g: GroupRuntime, rt: ProcRuntime): boolean {
    if (g.level === null || g.level !== this.stopOf(g.name) || rt.reruns >= MAX_STOP_RERUNS) return false;
    return rt.proc.state === 'RUNFG' || (rt.proc.state === 'RUNBG' && rt.entry.mode === 'once');
  }

  private hasHeldEntry(g: GroupRuntime): boolean {
    for (const rt of g.procs.values()) if (rt.proc.state === 'HELD') return true;
    return false;
  }

  /** The level that releases this group's resources, if the engine has one. */
  private stopOf(group: string): string | undefined {
    const s = this.opts.stopLevel;
    return typeof s === 'function' ? s(group) : s;
  }

  /** A tell to the stop level is bounded; any other tell cancels that bound. */
  private armStopTimer(g: GroupRuntime): void {
    if (g.stopTimer !== undefined) this.clock.clearTimer(g.stopTimer);
    g.stopTimer = undefined;
    const stopLevel = this.stopOf(g.name);
    const { stopTimeoutMs } = this.opts;
    if (stopLevel === undefined || stopTimeoutMs === undefined || g.level !== stopLevel) return;
    const armedAt = this.clock.now();
    g.stopTimer = this.clock.setTimer(stopTimeoutMs, () => {
      g.stopTimer = undefined;
      if (this.groups.get(g.name) !== g || g.level !== stopLevel || SETTLED_GROUP_STATES.includes(g.state) || g.state === 'CONFIGURED') return;
      // A held stop entry has not run: halting now would report resources released that were not.
      if (this.hasHeldEntry(g)) return this.armStopTimer(g);
      // Far past its time: this node was frozen (a VM pause) and its stop entries did not get their
      // time; killed at the thaw, what they release would stay held here for good.
      if (firedAfterFreeze(armedAt + stopTimeoutMs, this.clock.now(), stopTimeoutMs)) {
        this.opts.logger.warn({ group: g.name, level: stopLevel, stopTimeoutMs }, 'stop level: this node was frozen past stop_timeout: its stop entries get their time again');
        return this.armStopTimer(g);
      }
      if (g.state === 'STOPPING') {
        // The old processes outlived the bound: kill them; the stop entries still run (their own bound).
        this.opts.logger.warn({ group: g.name, level: stopLevel, stopTimeoutMs }, 'stop level: old processes outlived stop_timeout: killing them; the stop entries run next');
        for (const rt of g.procs.values()) this.procEvent(g, rt, { type: 'KILL' });
        this.armStopTimer(g);
        this.react(g);
        return;
      }
      this.opts.logger.warn({ group: g.name, level: stopLevel, stopTimeoutMs }, 'stop level did not finish within stop_timeout: killing what still runs');
      this.setGroupState(g, groupNext(g.state, 'HALT'));
      for (const rt of g.procs.values()) this.procEvent(g, rt, { type: 'KILL' });
      this.react(g);
    });
  }

  private fire(g: GroupRuntime, event: 'TELL' | 'HALT'): void {
    this.setGroupState(g, groupNext(g.state, event));
    this.react(g);
  }

  private setGroupState(g: GroupRuntime, state: GroupState): void {
    if (g.state !== state) g.changedAt = this.clock.now();
    g.state = state;
  }

  /** History keeps the states a group rests in, not the ones a reaction passes through. */
  private recordTransition(g: GroupRuntime): void {
    const last = g.transitions[g.transitions.length - 1];
    if (last && last.state === g.state && last.level === g.level) return;
    g.transitions.push({ at: new Date().toISOString(), level: g.level, state: g.state });
    if (g.transitions.length > MAX_TRANSITIONS) g.transitions.shift();
  }

  /** Run the group machine to a fixed point, applying its effects. Re-entrant calls queue. */
  private react(g: GroupRuntime): void {
    this.pending.add(g);
    if (this.reacting) return;
    this.reacting = true;
    const settledAt: string[] = [];
    try {
      while (this.pending.size > 0) {
        const next = this.pending.values().next().value as GroupRuntime;
        this.pending.delete(next);
        const was = next.state;
        this.reactOne(next);
        if (next.state !== was && next.level !== null && SETTLED_GROUP_STATES.includes(next.state)) settledAt.push(next.level);
      }
    } finally {
      this.reacting = false;
    }
    this.opts.onChange?.(settledAt);
    this.checkHalted();
  }

  private reactOne(g: GroupRuntime): void {
    for (let round = 0; round < 10_000; round++) {
      const views = new Map<string, ProcView>();
      for (const [tag, p] of g.procs) views.set(tag, { state: idle(p) || p.proc.state !== 'CONFIGURED' ? p.proc.state : 'STOPPING', entry: p.entry });
      const before = g.state;
      const { state, effects } = groupReact({ state: g.state, level: g.level, entries: g.entries }, views);
      if (state !== before) {
        // The stop entries get stop_timeout of their own once the old processes are gone.
        if (before === 'STOPPING' && state !== 'STOPPING' && g.level === this.stopOf(g.name)) this.armStopTimer(g);
        this.setGroupState(g, state);
        // Where a group settled is news; the steps on the way there are debug chatter.
        if (SETTLED_GROUP_STATES.includes(state)) this.opts.logger.info({ group: g.name, level: g.level, state }, 'group state');
        else this.opts.logger.debug?.({ group: g.name, level: g.level, state }, 'group state');
      }
      let changed = false;
      for (const eff of effects) changed = this.applyGroupEffect(g, eff) || changed;
      if (g.stoppingForRemoval && SETTLED_GROUP_STATES.includes(g.state)) {
        // Its stop level ran: now halt it like any removed group.
        g.stoppingForRemoval = false;
        this.setGroupState(g, groupNext(g.state, 'HALT'));
        continue;
      }
      if (g.removing && g.state === 'CONFIGURED' && g.procs.size === 0) {
        this.groups.delete(g.name);
        this.sorted = null;
        this.opts.logger.info({ group: g.name }, 'group removed');
        return;
      }
      if (this.advanceRecovery(g)) continue;
      if (!changed && state === before) {
        this.recordTransition(g);
        return;
      }
    }
    this.recordTransition(g);
    this.opts.logger.error({ group: g.name }, 'group machine did not settle; will retry on the next event');
  }

  /**
   * Feed the recovery machine what happened since the last reaction (failed checks, crash loops,
   * a finished stop level) and carry out its effects. True when the group's level or state changed.
   */
  private advanceRecovery(g: GroupRuntime): boolean {
    const ev = g.recoveryQueue.shift();
    if (ev) return this.recover(g, ev) || true;
    const phase = g.recovery.phase;
    if (phase !== 'RESTARTING' && phase !== 'GIVING_UP') return false;
    const stop = this.stopOf(g.name);
    const released = g.state === 'CONFIGURED' || (stop !== undefined && g.level === stop && SETTLED_GROUP_STATES.includes(g.state));
    return released ? this.recover(g, { type: 'RELEASED' }) : false;
  }

  /** One recovery event; its effects change the group's level and state (the caller reacts). */
  private recover(g: GroupRuntime, ev: RecoveryEvent): boolean {
    const level = ev.type === 'UNHEALTHY' || ev.type === 'CRASHLOOP' ? ev.level : g.level;
    const { recovery, effects } = recoveryStep(g.recovery, ev, { now: this.clock.now(), limits: recoveryLimits(g.entries, level, this.timings) });
    const from = g.recovery.phase;
    // failedAgain appends this restart's time; a give-up or a reset does not.
    if (recovery.restarts.length > 0 && recovery.restarts.at(-1) !== g.recovery.restarts.at(-1)) this.count(g.name, 'restarts');
    g.recovery = recovery;
    if (recovery.phase !== from) this.opts.logger.info({ group: g.name, from, to: recovery.phase, note: recovery.note }, 'group recovery');
    for (const eff of effects) this.applyRecoveryEffect(g, eff);
    return effects.length > 0;
  }

  private applyRecoveryEffect(g: GroupRuntime, eff: RecoveryEffect): void {
    const log = { group: g.name, level: g.level, note: g.recovery.note };
    switch (eff.type) {
      case 'release': {
        const stop = this.stopOf(g.name);
        if (stop !== undefined && g.level !== stop) {
          this.opts.logger.warn({ ...log, stopLevel: stop }, g.recovery.phase === 'GIVING_UP' ? 'giving the group up: running its stop level' : 'restarting the group: running its stop level');
          this.moveTo(g, stop, 'TELL');
        } else {
          this.opts.logger.warn(log, g.recovery.phase === 'GIVING_UP' ? 'giving the group up: stopping it' : 'restarting the group: stopping it');
          this.setGroupState(g, groupNext(g.state, 'HALT'));
        }
        return;
      }
      case 'retell':
        this.opts.logger.info({ ...log, level: eff.level }, 'restarting the group: its level again');
        this.moveTo(g, eff.level, 'TELL');
        return;
      case 'giveUp':
        this.opts.logger.error({ ...log, level: eff.level }, 'group given up on this node');
        this.moveTo(g, eff.level, 'GIVE_UP');
        return;
    }
  }

  /** Recovery moves the group to a level itself (no outside tell): bound it as any stop level is. */
  private moveTo(g: GroupRuntime, level: string, event: 'TELL' | 'GIVE_UP'): void {
    g.level = level;
    this.armStopTimer(g);
    this.setGroupState(g, groupNext(g.state, event));
  }

  private applyGroupEffect(g: GroupRuntime, eff: GroupEffect): boolean {
    const rt = g.procs.get(eff.tag);
    switch (eff.type) {
      case 'discard':
        if (!rt || !idle(rt)) return false;
        this.clearTimers(rt);
        g.procs.delete(eff.tag);
        return true;
      case 'stop':
        if (!rt) return false;
        this.procEvent(g, rt, { type: 'STOP' });
        return true;
      case 'start': {
        const entry = g.entries.find((e) => e.tag === eff.tag);
        if (!entry) return false;
        let p = rt;
        if (!p) {
          p = { entry, proc: newProc(entry.mode, entry.health), handle: null, startedAt: 0, timers: {}, lastCheckAt: null, generation: 0, sweeping: new Set(), reruns: 0 };
          g.procs.set(eff.tag, p);
        }
        this.procEvent(g, p, { type: 'START' });
        return true;
      }
    }
  }

  /** Feed one event to a process machine and carry out its effects (without re-reacting). */
  private procEvent(g: GroupRuntime, rt: ProcRuntime, event: ProcEvent): void {
    const before = rt.proc.state;
    const checksBefore = rt.proc.check?.checks ?? 0;
    const { proc, effects } = procStep(rt.proc, event, { now: this.clock.now(), random: this.random(), timings: this.timings });
    rt.proc = proc;
    if (rt.entry.mode === 'respawn' && (event.type === 'EXIT' || event.type === 'RESPAWN') && effects.some((e) => e.type === 'spawn')) this.count(g.name, 'respawns');
    if ((proc.check?.checks ?? 0) > checksBefore && proc.check?.last?.ok === false) this.count(g.name, 'checkFailures');
    if (proc.state !== before && rt.entry.mode !== 'monitor') this.opts.logger.debug?.({ group: g.name, tag: rt.entry.tag, from: before, to: proc.state }, 'process state');
    // A respawn entry entering crash-loop backoff counts as a restart of its group.
    const counts = this.opts.crashLoopsCount ?? this.opts.stopLevel !== undefined;
    if (counts && proc.state === 'BACKOFF' && before !== 'BACKOFF' && g.level !== null && g.level !== this.stopOf(g.name)) {
      g.recoveryQueue.push({ type: 'CRASHLOOP', level: g.level, why: `${rt.entry.tag} is crash-looping (${proc.note ?? 'backoff'})` });
    }
    for (const eff of effects) this.applyProcEffect(g, rt, eff);
  }

  /** A monitor entry checks only while its group is settled at its level and not being restarted. */
  private checkReady(g: GroupRuntime, rt: ProcRuntime): boolean {
    return g.state === 'DONE' && g.recovery.phase === 'IDLE' && g.level !== null && rt.entry.levels.includes(g.level);
  }

  private applyProcEffect(g: GroupRuntime, rt: ProcRuntime, eff: ProcEffect): void {
    switch (eff.type) {
      case 'spawn':
        this.spawn(g, rt);
        return;
      case 'signal':
        this.opts.logger.info({ group: g.name, tag: rt.entry.tag, signal: eff.signal, pgid: rt.handle?.pgid }, 'signal process group');
        rt.handle?.signal(eff.signal);
        return;
      case 'timer': {
        this.clearTimer(rt, eff.name);
        const generation = rt.generation;
        rt.timers[eff.name] = this.clock.setTimer(eff.ms, () => {
          delete rt.timers[eff.name];
          if (g.procs.get(rt.entry.tag) !== rt || rt.generation !== generation) return;
          const event: ProcEvent =
            eff.name === 'escalate' ? { type: 'ESCALATE' } : eff.name === 'respawn' ? { type: 'RESPAWN' } : eff.name === 'timeout' ? { type: 'TIMEOUT' } : { type: 'CHECK', ready: this.checkReady(g, rt) };
          this.procEvent(g, rt, event);
          this.react(g);
        });
        return;
      }
      case 'unhealthy':
        if (g.level !== null && this.checkReady(g, rt)) {
          g.recoveryQueue.push({ type: 'UNHEALTHY', level: g.level, why: `${rt.entry.tag} failed ${eff.failures} checks in a row` });
        }
        return;
      case 'cancelTimer':
        this.clearTimer(rt, eff.name);
        return;
      case 'sweep':
        if (!rt.handle) return;
        rt.sweeping.add(rt.generation);
        rt.handle.sweep(Math.max(0, this.timings.killAfterMs - this.timings.termAfterMs));
        return;
    }
  }

  private spawn(g: GroupRuntime, rt: ProcRuntime): void {
    rt.generation++;
    const generation = rt.generation;
    rt.startedAt = this.clock.now();
    const log = { group: g.name, tag: rt.entry.tag };
    const current = (): boolean => g.procs.get(rt.entry.tag) === rt && rt.generation === generation;
    // A refused stop entry must run later: its group still holds what it would have released.
    // Elsewhere a refusal is a failure to execute (126): a test fails, a start goes on.
    const onRefused =
      g.level !== null && g.level === this.stopOf(g.name)
        ? (): void => {
            if (!current()) return;
            this.opts.logger.warn({ ...log }, 'stop entry not run: spawning refused (this node may be self-fencing); it runs once allowed');
            this.procEvent(g, rt, { type: 'REFUSED' });
            this.heldGroups.add(g);
            this.react(g);
          }
        : undefined;
    const handle = this.opts.runner.spawn(
      {
        command: rt.entry.command,
        env: { ...(this.opts.env ?? process.env), PEERHA_GROUP: g.name, PEERHA_TAG: rt.entry.tag, PEERHA_LEVEL: g.level ?? '' },
      },
      {
        onExit: (code, signal) => {
          if (rt.entry.mode === 'monitor') {
            if (code !== 0) this.opts.logger.warn({ ...log, code, signal }, 'health check failed');
          } else this.opts.logger.info({ ...log, code, signal }, 'process exited');
          if (!current()) return;
          if (rt.entry.mode === 'monitor' && rt.proc.state === 'PROBING') rt.lastCheckAt = new Date().toISOString();
          if (signal !== null && this.interruptedStop(g, rt)) {
            // Killed by someone else (a watchdog that took this monitor for dead, the OOM killer):
            // what it would release may still be held, so it runs again, not counts as done.
            rt.reruns++;
            this.opts.logger.warn({ ...log, signal, rerun: rt.reruns }, 'stop entry killed before it finished: it runs again once allowed');
            this.procEvent(g, rt, { type: 'INTERRUPTED', signal });
            this.heldGroups.add(g);
          } else this.procEvent(g, rt, { type: 'EXIT', code, signal, uptimeMs: this.clock.now() - rt.startedAt });
          this.react(g);
        },
        onGone: () => {
          if (rt.sweeping.delete(generation)) {
            this.react(g);
            return;
          }
          if (!current()) return;
          this.procEvent(g, rt, { type: 'GONE' });
          this.react(g);
        },
        onOutput: (stream, line) => this.opts.logger.info({ ...log, stream }, line),
        ...(onRefused ? { onRefused } : {}),
      },
    );
    rt.handle = handle;
    if (rt.entry.mode !== 'monitor') this.opts.logger.info({ ...log, pgid: handle.pgid, mode: rt.entry.mode }, 'process started');
  }

  private clearTimer(rt: ProcRuntime, name: ProcTimer): void {
    const t = rt.timers[name];
    if (t !== undefined) this.clock.clearTimer(t);
    delete rt.timers[name];
  }

  private clearTimers(rt: ProcRuntime): void {
    this.clearTimer(rt, 'escalate');
    this.clearTimer(rt, 'respawn');
    this.clearTimer(rt, 'check');
    this.clearTimer(rt, 'timeout');
  }

  private checkHalted(): void {
    if (this.haltWaiters.length === 0) return;
    for (const g of this.groups.values()) {
      for (const p of g.procs.values()) if (!idle(p)) return;
    }
    for (const w of this.haltWaiters.splice(0)) w();
  }
}
