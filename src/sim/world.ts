// The simulated cluster: nodes (machine, monitor, watchdog, processes, resources), the shared
// store, the fence hook, the fault schedule, and the invariants checked as the history unfolds.
//
// Ground truth lives here, not in any monitor: which processes are actually alive on which node,
// and which node holds which group's resource (a VIP, a mount: it outlives processes).
//
// Resources: a group's resource is acquired on a node when one of its resource processes (its
// setup entry, or its service when it has none) starts there; it is released only when one of the
// group's stop entries (`<group>-clean`, level stop) runs to completion (exit 0) on that node — run
// by the engine's stop level, by the watchdog after it fired, or by a restarted monitor's clean-up
// — or when the machine goes down (crash, fence power-off). Killing the processes releases nothing;
// a stop entry killed at stop_timeout releases nothing. The watchdog is modelled on
// bin/peerha-watchdog: it wakes at its deadline (last pet + timeout/2), SIGKILLs the process groups
// of the record (never the stop entries it runs itself), then runs the stop entries the monitor
// recorded (driver.ts mirrors daemon.ts saveStops) within the record's stop_timeout, and SIGKILLs
// what they left; when its monitor dies it does the same at once and then deletes the record. A
// restarted monitor first kills what the record names and runs the recorded stop entries
// (cleanLeftovers), then joins. The record lives in /run: gone with the machine.
//
// Invariants:
//   1. never two owners — a group's resource processes (its setup and service entries) alive on two
//      nodes at once, checked whenever one starts or a frozen node thaws;
//   1b. never two holders — a group's resource held on two nodes at once, checked whenever one is
//      acquired or a frozen node thaws. Tolerances (each one counted in stats, each one bounded):
//      - one-sided views: as for owners, a double hold that begins while a one-sided view fault
//        lasts (or within the bound after it) must end within the poison-pill bound of a stop
//        level: SIGKILL time (the processes stop) + stop_timeout (the stop entries run) + 2
//        cycles + visibility_lag, on the slowest clock (stats.pillHoldOverlaps);
//      - whole-node freeze (VM pause): a frozen machine cannot act, so a peer may take the group
//        over after `timeout` while it still holds the resource — the overlap only fencing closes
//        (README, "Resources leave a node on every path"). A frozen machine's holds do not count
//        while it is frozen; on thaw, each hold it had before must be gone within stop_timeout
//        (its watchdog fires first on thaw and runs the stop entries) if another node holds the
//        group, else it is a violation (stats.freezeOverlaps; how long after the thaw each
//        overlap ended: World.thawOverlapsMs).
//      No other overlap is tolerated: not after a kill -9, a monitor freeze, a self-fence, a leave,
//      a halt, a restart.
//   2. progress — once faults have healed and quorum holds, every wanted group in cltab with an
//      eligible node runs on exactly one node (and every other group nowhere) within a stated
//      bound, and its resource is held on that node alone (nowhere for a group that runs nowhere);
//      while DIR/halt stands, nothing runs, nothing is held and no monitor cycles;
//   3. quorum-less nodes run nothing — a monitor that decided without quorum (or while
//      self-fencing or leaving) has no group process left (stop-level cleanup aside) after
//      killAfter + one cycle.

import { parseClstat } from '../config/clstat.js';
import { halfWritten, parseCltab } from '../config/cltab.js';
import { parseHactl, type HactlWant } from '../config/hactl.js';
import { chooseCopy, contentHash, type Judged } from '../cluster/replicate.js';
import type { FenceMethod } from '../config/monitor.js';
import type { SpawnCallbacks, ProcessHandle, SpawnRequest } from '../init/runner.js';
import type { StopSignal } from '../init/machines.js';
import { firedAfterFreeze } from '../init/engine.js';
import type { FenceOutcome } from '../monitor/events.js';
import type { Alert } from '../monitor/alerts.js';
import type { Logic } from '../monitor/logic.js';
import type { Instance } from '../monitor/decide.js';
import { Rng } from './rng.js';
import type { Fault, GroupSpec, NodeClockSpec, Scenario } from './scenario.js';
import { Scheduler, type SimEvent } from './scheduler.js';
import { SimStore } from './store.js';

export type ProcKind = 'test' | 'setup' | 'svc' | 'clean';

/** A simulated monitor process as the world sees it (src/sim/driver.ts drives step() behind it). */
export interface SimMonitor {
  readonly inc: number;
  /** Past the start-up checks and cycling. */
  readonly running: boolean;
  readonly leaving: boolean;
  readonly lastQuorumOk: boolean | null;
  start(): void;
  leave(): void;
  /** What its engine runs right now. */
  localInstances(): Map<string, Instance>;
  /** The longest wait until one of its unfinished fence incidents is tried again. */
  fenceWaitMs(): number;
}

/** A pending callback of a monitor process; cancelled ones never run. */
export interface Handle {
  cancelled: boolean;
}

/** How far past its deadline the watchdog wakes (local ms). */
const WAKE_SLACK_MS = 0.01;

/** Wall clocks are an epoch plus virtual time plus the node's offset (timestamps only). */
const EPOCH_MS = 1.7e12;

export interface SimProc {
  readonly id: number;
  readonly node: SimNode;
  readonly inc: number;
  readonly group: string;
  readonly kind: ProcKind;
  readonly level: string;
  /** A resource process: two of these alive on two nodes is a double owner. */
  readonly owner: boolean;
  alive: boolean;
  readonly since: number;
  cb: SpawnCallbacks;
  death: SimEvent | null;
  deathAt: number;
  readonly ignoreInt: boolean;
  readonly ignoreTerm: boolean;
  /** Not the engine's: a stop entry run by the watchdog or a restarted monitor (not in the process-group record). */
  readonly outside: boolean;
  /** Called once when it is gone (exit, kill, machine down). */
  onGone: (() => void) | null;
}

/** The monitor's stop-entry record on the node's local disk (`<state_dir>/<node>.stops`). */
export interface StopRecord {
  readonly stopTimeoutMs: number;
  /** Group → the tags of its stop entries, file order. */
  readonly groups: ReadonlyMap<string, readonly string[]>;
}

/** What the simulated machinery outside the monitor does (negative controls switch parts off). */
export interface SimModel {
  /** The watchdog runs the recorded stop entries after it kills the groups (and then deletes the record). */
  readonly watchdogStops: boolean;
  /** The store's O_EXCL create lets one node win a name (false: every create of a claim succeeds). */
  readonly exclusiveClaims: boolean;
  /** A stop entry the spawn gate refuses waits to run (false: it "exits" 126 and its stop level is done). */
  readonly heldStops: boolean;
  /** The watchdog's stop_timeout overrun by a whole-machine freeze gives its stop entries their time again (false: killed at the thaw). */
  readonly watchdogThawGrace: boolean;
}

export const REAL_MODEL: SimModel = { watchdogStops: true, exclusiveClaims: true, heldStops: true, watchdogThawGrace: true };

export interface Violation {
  readonly invariant: 'never two owners' | 'never two holders' | 'progress' | 'quorum-less nodes run nothing' | 'alert sequence';
  readonly time: number;
  readonly detail: string;
}

export type NodeStatus = 'never' | 'up' | 'monitor-down' | 'left' | 'down';

interface Fence {
  readonly target: string;
  done: boolean;
}

export class SimNode {
  status: NodeStatus = 'never';
  inc = 0;
  monitor: SimMonitor | null = null;
  monitorFrozen = false;
  nodeFrozen = false;
  /** Wall-clock steps so far (clock-step faults). */
  wallStepMs = 0;
  private deferred: Array<() => void> = [];
  private deferredNode: Array<() => void> = [];
  readonly procs = new Set<SimProc>();
  readonly fences = new Set<Fence>();
  readonly rng: Rng;
  /**
   * The watchdog sidecar: its last pet (local ms), whether it fired in this silence, whether
   * it ran the stop entries in this silence, and its stop-entry child while that runs (callbacks
   * waiting for it).
   */
  private wd = { active: false, lastPet: 0, token: 0, fired: false, stopsRan: false, stopper: null as Array<() => void> | null };
  /** Resources this machine holds: group → since when (global ms). */
  readonly held = new Map<string, number>();
  /** The monitor's stop-entry record (local disk, /run: lost when the machine goes down). */
  stopRecord: StopRecord | null = null;
  /** Bumped when the machine goes down: what ran before (stop-entry runs, the watchdog) is gone. */
  boot = 0;
  /** After a whole-node freeze: the holds it had when it thawed, exempt until `thawGraceUntil`. */
  thawHolds = new Map<string, number>();
  thawGraceUntil = Number.NEGATIVE_INFINITY;
  noQuorumSince: number | null = null;
  noQuorumToken = 0;
  freezeToken = 0;
  restarts = 0;

  constructor(
    readonly world: World,
    readonly name: string,
    readonly clock: NodeClockSpec,
  ) {
    this.rng = new Rng(world.scenario.seed, 100 + Number(name.slice(1)));
  }

  /** This machine's performance.now(). */
  local(): number {
    return this.clock.base + this.clock.rate * this.world.sched.now;
  }

  /** A timer of this monitor process (local ms): dropped if the monitor died, held while frozen. */
  post(localMs: number, fn: () => void): Handle {
    const h: Handle = { cancelled: false };
    const inc = this.inc;
    this.world.sched.after(localMs / this.clock.rate, () => {
      if (h.cancelled) return;
      this.deliver(inc, () => {
        if (!h.cancelled) fn();
      });
    });
    return h;
  }

  /** Run a callback of monitor incarnation `inc` now, later (frozen), or never (it died). */
  deliver(inc: number, fn: () => void): void {
    if (inc !== this.inc || !this.monitor) return;
    if (this.monitorFrozen) this.deferred.push(() => inc === this.inc && fn());
    else fn();
  }

  /** The monitor's clock, for the store (StoreClient). */
  now(): number {
    return this.local();
  }

  /** The rest of a store batch of the monitor (StoreClient): held while it is frozen, dropped if it dies meanwhile. */
  whenRunning(fn: () => void): void {
    if (this.monitorFrozen) this.deferred.push(fn);
    else fn();
  }

  /** Something that happens on this machine outside the monitor (processes, the watchdog). */
  postNode(globalMs: number, fn: () => void): void {
    this.world.sched.after(globalMs, () => {
      if (this.status === 'down') return;
      if (this.nodeFrozen) this.deferredNode.push(fn);
      else fn();
    });
  }

  hasLiveProcs(): boolean {
    for (const p of this.procs) if (p.alive) return true;
    return false;
  }

  /**
   * SIGKILL every process group in the record (watchdog, self-fence, leftovers at start): the
   * engine's processes, not the stop entries the watchdog or a restarted monitor runs.
   */
  killAll(why: string): void {
    let n = 0;
    for (const p of [...this.procs]) {
      if (!p.alive || p.outside) continue;
      this.world.kill(p, 'SIGKILL');
      n++;
    }
    if (n > 0) {
      this.world.trace(this.name, `${why}: SIGKILL ${n} process(es)`);
      if (why.startsWith('watchdog')) this.world.stats.watchdogKills++;
      else if (why.startsWith('self-fence')) this.world.stats.selfFenceKills++;
    }
  }

  // ---------------------------------------------------------------------------- watchdog

  /**
   * As bin/peerha-watchdog: it sleeps until its deadline (last pet + limit, on this machine's
   * monotonic clock) and looks again; past it, it SIGKILLs the recorded groups, once per silence
   * runs the recorded stop entries (a child of its own), and keeps killing every tick (limit/4,
   * at least 20 ms) while the silence lasts. A whole-node freeze holds its wake-up: on thaw it
   * runs before anything else of the machine.
   */
  watchdogStart(limit: number): void {
    const token = ++this.wd.token;
    this.wd = { ...this.wd, active: true, lastPet: this.local(), token, fired: false, stopsRan: false };
    const tick = Math.max(20, limit / 4);
    // It wakes just past its deadline (select() never returns early): by then the monitor, which
    // petted it a little earlier, refuses to spawn (spawnRefused: more than timeout/2 since its pet).
    const loop = (): void => {
      if (!this.wd.active || this.wd.token !== token) return;
      const left = this.wd.lastPet + limit - this.local();
      if (left >= 0) return this.postNode((left + WAKE_SLACK_MS) / this.clock.rate, loop);
      // Its stop-entry child reads the record right after the kill, before the monitor (a separate
      // process, if it runs at all) can react to its processes' deaths and rewrite it.
      const record = this.stopRecord;
      this.killAll('watchdog: monitor silent');
      if (!this.wd.fired) this.startStopper('watchdog: monitor silent', record);
      this.wd.fired = true;
      this.postNode(tick / this.clock.rate, loop);
    };
    this.postNode((limit + WAKE_SLACK_MS) / this.clock.rate, loop);
  }

  watchdogPet(ageMs = 0): void {
    if (!this.wd.active) return;
    this.wd.lastPet = this.local() - ageMs;
    this.wd.fired = false;
    this.wd.stopsRan = false;
  }

  watchdogBye(): void {
    this.wd.active = false;
    this.wd.token++;
  }

  /** `bye`, answered once the watchdog exited: after the stop-entry run it has under way, if any. */
  watchdogLeave(gone: () => void): void {
    this.watchdogBye();
    // It reads the bye after what it is doing now (a kill it is in the middle of, then its stopper).
    this.postNode(0, () => {
      if (this.wd.stopper) this.wd.stopper.push(gone);
      else gone();
    });
  }

  /** The watchdog's child that runs the recorded stop entries (one at a time, once per silence). */
  private startStopper(why: string, record: StopRecord | null): void {
    if (!this.world.model.watchdogStops || this.wd.stopper || this.wd.stopsRan) return;
    this.wd.stopsRan = true;
    const waiting: Array<() => void> = [];
    this.wd.stopper = waiting;
    const ran = this.runRecordedStops(
      why,
      () => {
        if (this.wd.stopper === waiting) this.wd.stopper = null;
        for (const fn of waiting) fn();
      },
      record,
    );
    if (ran) this.world.stats.watchdogStopRuns++;
  }

  /**
   * The monitor died: the watchdog sees its stdin close, kills every recorded group, runs the stop
   * entries (or waits for the run under way), deletes the record and exits.
   */
  private watchdogDisconnect(): void {
    if (!this.wd.active) return;
    this.watchdogBye();
    const record = this.stopRecord;
    this.killAll('watchdog: monitor gone');
    if (!this.world.model.watchdogStops) return;
    const boot = this.boot;
    const unlink = (): void => {
      if (this.boot === boot) this.stopRecord = null;
    };
    if (this.wd.stopper) this.wd.stopper.push(unlink);
    else if (!this.wd.stopsRan) {
      if (this.runRecordedStops('watchdog: monitor gone', unlink, record)) this.world.stats.watchdogStopRuns++;
    } else unlink();
  }

  /**
   * Run the stop entries of the record as it is now (each group's in file order, groups side by
   * side), all within the record's stop_timeout; what still runs then is SIGKILLed. `done` is
   * called when all finished or at that deadline (never if the machine went down meanwhile).
   * False when the record had nothing to run (`done` was called at once).
   */
  runRecordedStops(why: string, done: () => void, rec: StopRecord | null = this.stopRecord): boolean {
    const groups = rec ? [...rec.groups].filter(([, tags]) => tags.length > 0) : [];
    if (!rec || groups.length === 0) {
      done();
      return false;
    }
    const boot = this.boot;
    this.world.trace(this.name, `${why}: running the stop entries of ${groups.map(([g]) => g).join(',')} (stop_timeout ${rec.stopTimeoutMs} ms)`);
    const live = new Set<SimProc>();
    let running = groups.length;
    let over = false;
    const finish = (): void => {
      if (over) return;
      over = true;
      if (this.boot === boot) done();
    };
    const next = (group: string, tags: readonly string[], i: number): void => {
      if (over || this.boot !== boot) return;
      if (i >= tags.length) {
        if (--running === 0) finish();
        return;
      }
      const p = this.world.spawnStopEntry(this, group, tags[i]!);
      live.add(p);
      p.onGone = () => {
        live.delete(p);
        next(group, tags, i + 1);
      };
    };
    for (const [group, tags] of groups) next(group, tags, 0);
    if (over) return true;
    const bound = (): void => {
      const dueAt = this.world.sched.now + rec.stopTimeoutMs / this.clock.rate;
      this.postNode(rec.stopTimeoutMs / this.clock.rate, () => deadline(dueAt));
    };
    const deadline = (dueAt: number): void => {
      if (over || this.boot !== boot) return;
      // peerha-watchdog: a deadline passed during a freeze of the whole machine gives the stop
      // entries their time again (as the engine's stop_timeout does): killed at the thaw, what they
      // release would stay held here for good.
      if (this.world.model.watchdogThawGrace && firedAfterFreeze(dueAt * this.clock.rate, this.world.sched.now * this.clock.rate, rec.stopTimeoutMs)) {
        this.world.trace(this.name, `${why}: frozen past stop_timeout: the stop entries get their time again`);
        return bound();
      }
      over = true;
      if (live.size > 0) {
        this.world.stats.stopEntriesKilled += live.size;
        this.world.trace(this.name, `${why}: stop entries did not finish within stop_timeout: SIGKILL ${live.size}`);
      }
      for (const p of [...live]) this.world.kill(p, 'SIGKILL');
      done();
    };
    bound();
    return true;
  }

  // ---------------------------------------------------------------------------- lifecycle

  startMonitor(): void {
    if (this.status === 'up') return;
    this.status = 'up';
    this.inc++;
    this.restarts++;
    this.deferred = [];
    this.monitorFrozen = false;
    this.nodeFrozen = false;
    this.monitor = this.world.newMonitor(this.world, this);
    this.world.trace(this.name, `monitor process starts (incarnation ${this.inc})`);
    this.monitor.start();
  }

  private endMonitor(status: NodeStatus): void {
    this.status = status;
    this.inc++;
    this.monitor = null;
    this.deferred = [];
    this.monitorFrozen = false;
    this.noQuorumSince = null;
    this.noQuorumToken++;
    this.freezeToken++;
    this.world.store.state(this.name).hung.length = 0;
  }

  /**
   * The monitor process exited by itself. systemd (Restart=always) restarts it after a start-up
   * refusal or a cluster halt (it then waits for the halt to be undone); an orderly leave is the
   * admin's doing, and the fault that caused it restarts it.
   */
  monitorExited(code: number, why: string): void {
    this.world.trace(this.name, `monitor exits ${code}: ${why}`);
    this.endMonitor(code === 0 ? 'left' : 'monitor-down');
    if (why === 'halt') this.world.stats.haltExits++;
    if (code !== 0 || why === 'halt') {
      this.world.sched.after(1000, () => {
        if (this.status !== 'monitor-down' && this.status !== 'left') return;
        this.startMonitor();
        this.world.disrupted();
      });
    }
  }

  killMonitor(): void {
    this.world.trace(this.name, 'monitor killed (SIGKILL)');
    this.endMonitor('monitor-down');
    this.watchdogDisconnect();
  }

  crash(why: string): void {
    if (this.status === 'down') return;
    this.world.trace(this.name, `node down: ${why}`);
    this.endMonitor('down');
    this.nodeFrozen = false;
    this.deferredNode = [];
    this.watchdogBye();
    this.wd.stopper = null;
    this.boot++;
    for (const p of [...this.procs]) if (p.alive) this.world.kill(p, null);
    // A machine that is off holds nothing (a VIP goes with it); /run and its records are gone.
    if (this.held.size > 0) this.world.trace(this.name, `releases ${[...this.held.keys()].join(',')} (machine down)`);
    this.world.stats.releasedByDown += this.held.size;
    this.held.clear();
    this.stopRecord = null;
    this.thawHolds.clear();
    for (const f of [...this.fences]) {
      this.world.stats.fencerDied++;
      f.done = true;
      this.fences.delete(f);
      if (this.rng.chance(0.5)) this.world.powerOff(f.target, `the fence ${this.name} was running when it died went through`);
    }
  }

  freeze(whole: boolean, dur: number): void {
    if (this.status !== 'up' || this.monitorFrozen) return;
    this.monitorFrozen = true;
    this.nodeFrozen = whole;
    this.noQuorumSince = null;
    this.noQuorumToken++;
    const token = ++this.freezeToken;
    this.world.trace(this.name, whole ? 'whole node frozen' : 'monitor frozen (SIGSTOP)');
    this.world.sched.after(dur, () => {
      if (token !== this.freezeToken) return;
      this.thaw();
    });
  }

  private thaw(): void {
    this.world.trace(this.name, 'thawed');
    if (this.nodeFrozen) {
      this.nodeFrozen = false;
      for (const fn of this.deferredNode.splice(0)) fn();
      this.world.checkOwnersOn(this);
      this.world.thawedHolder(this);
    }
    this.monitorFrozen = false;
    for (const fn of this.deferred.splice(0)) {
      if (this.monitorFrozen) this.deferred.push(fn);
      else fn();
    }
  }
}

export class World {
  readonly sched = new Scheduler();
  readonly store: SimStore;
  readonly nodes = new Map<string, SimNode>();
  readonly groups = new Map<string, GroupSpec>();
  /** DIR/halt stands. */
  halted = false;
  /** Targets an operator is about to power off and confirm (manual fencing). */
  private readonly operating = new Set<string>();
  readonly rng: Rng;
  violation: Violation | null = null;
  readonly log: string[] = [];
  private nextPid = 1;
  private readonly alive = new Map<string, Set<SimProc>>();
  private fenceFaulty: { failure: number; timeout: number; slow: number } | null = null;
  private faultTokens = new Map<string, number>();
  /** Last time something broke (a fault, a fence power-off): progress is measured from the heal. */
  lastDisruption = 0;
  healed = false;
  done = false;
  convergedSince: number | null = null;
  convergeMs: number | null = null;
  progressMode: 'progress' | 'no quorum' | 'halted' | null = null;
  deadline = Number.POSITIVE_INFINITY;
  boundMs = 0;
  readonly stats = {
    spawns: 0, fences: 0, fenceEffects: 0, watchdogKills: 0, selfFenceKills: 0, fencerDied: 0, fenceFailed: 0, fenceTimedOut: 0, fenceSlow: 0, fenceMismatch: 0,
    manualConfirms: 0, agentFences: 0, commandFences: 0, halts: 0, haltExits: 0, cltabEdits: 0, cltabEditsPartitioned: 0, badEdits: 0, failedBatches: 0, staleHeartbeats: 0, cycleRetries: 0,
    viewsLost: 0, viewsStuck: 0, viewsCut: 0, pillOverlaps: 0, fullDisks: 0, clockSteps: 0, symlinks: 0,
    // resources
    // alerts: raised; the same node or quorum event twice in a row cluster-wide (a repeat: split views under faults); sequences not increasing per node
    alerts: 0, alertRepeats: 0, alertSeqBackwards: 0,
    acquired: 0, releasedByStop: 0, releasedByDown: 0, watchdogStopRuns: 0, leftoverStopRuns: 0, heldStopRetries: 0, outsideStopEntries: 0, stopEntriesKilled: 0, pillHoldOverlaps: 0, freezeOverlaps: 0,
  };
  /** Per whole-node-freeze overlap: how long after the thaw the thawed node's hold ended (ms). */
  readonly thawOverlapsMs: number[] = [];
  private readonly thawOverlapOpen = new Map<string, number>();
  private readonly holdEpisodes = new Set<string>();
  /** When the last one-sided view fault ends (double runs within the poison-pill bound are allowed until then). */
  private viewFaultsUntil = Number.NEGATIVE_INFINITY;
  private readonly pillEpisodes = new Set<string>();

  constructor(
    readonly scenario: Scenario,
    readonly logic: Logic,
    readonly tracing: boolean,
    /** Starts a monitor process on a node (the simulator's driver of step()). */
    readonly newMonitor: (world: World, node: SimNode) => SimMonitor,
    readonly model: SimModel = REAL_MODEL,
  ) {
    this.rng = new Rng(scenario.seed, 7);
    this.store = new SimStore(this.sched, new Rng(scenario.seed, 8), scenario.storeLagMs, scenario.storeLatencyMs);
    this.store.onRead = (reader, path) => this.watchConfirmations(reader, path);
    this.store.claimLoss = scenario.claimLoss;
    this.store.exclusiveClaims = model.exclusiveClaims;
    for (const g of scenario.groups) {
      this.groups.set(g.name, g);
      this.alive.set(g.name, new Set());
    }
    this.store.put('cltab', scenario.cltab);
    this.store.put('hactl', scenario.hactl);
    for (const n of scenario.nodes) this.nodes.set(n, new SimNode(this, n, scenario.clocks.get(n)!));
  }

  /** A node's wall clock (ms): only ever written into timestamps. */
  wallNow(node: SimNode): number {
    return EPOCH_MS + this.sched.now + node.clock.wallOffsetMs + node.wallStepMs;
  }

  /**
   * What the cluster must converge to: the newest valid copy of cltab and of hactl in the store,
   * or a hand edit of the admin copy made since (the replication rule). A bad edit of the only copy leaves nothing valid: nothing is wanted.
   */
  private effectiveConfig(): { groups: ReadonlySet<string>; wants: ReadonlyMap<string, HactlWant> } {
    const paths = ['cltab', 'hactl'].flatMap((f) => [f, ...this.scenario.nodes.map((n) => `nodes/${n}/${f}`)]);
    const key = paths.map((p) => this.store.latest(p)?.idx ?? 0).join(',') + [...this.store.links].join(',');
    if (this.config?.key === key) return this.config.value;
    const winner = (file: 'cltab' | 'hactl', valid: (text: string) => boolean): string | null => {
      const judged: Judged[] = [];
      for (const path of [file, ...this.scenario.nodes.map((n) => `nodes/${n}/${file}`)]) {
        const v = this.store.latest(path);
        if (this.store.links.has(path)) continue; // refused: never a candidate
        if (v?.text) judged.push({ source: path, text: v.text, mtimeMs: v.mtimeMs, hash: contentHash(v.text), errors: valid(v.text) ? [] : ['invalid'] });
      }
      return chooseCopy(judged, file)?.text ?? null;
    };
    const cltab = winner('cltab', (t) => !halfWritten(t, 'cltab') && parseCltab(t, 'cltab').ok);
    const hactl = winner('hactl', (t) => !halfWritten(t, 'hactl') && parseHactl(t, 'hactl').ok);
    const c = cltab === null ? null : parseCltab(cltab, 'cltab');
    const h = hactl === null ? null : parseHactl(hactl, 'hactl');
    const value = { groups: new Set(c?.ok ? c.cltab.groups : []), wants: h?.ok ? h.hactl.wants : new Map<string, HactlWant>() };
    this.config = { key, value };
    return value;
  }

  private config: { key: string; value: { groups: ReadonlySet<string>; wants: ReadonlyMap<string, HactlWant> } } | null = null;

  trace(node: string, msg: string): void {
    if (this.tracing) this.log.push(`${this.sched.now.toFixed(1).padStart(9)} ${node.padEnd(4)} ${msg}`);
  }

  // ---------------------------------------------------------------------------- processes

  spawn(node: SimNode, inc: number, req: SpawnRequest, cb: SpawnCallbacks): ProcessHandle {
    const env = req.env ?? {};
    const group = env.PEERHA_GROUP ?? '';
    const tag = env.PEERHA_TAG ?? '';
    const p = this.newProc(node, inc, group, tag, env.PEERHA_LEVEL ?? '', cb, false);
    return {
      pgid: p.id,
      signal: (sig: StopSignal) => this.signal(p, sig),
      sweep: () => undefined,
    };
  }

  /** A recorded stop entry run outside the engine (the watchdog, a restarted monitor's clean-up). */
  spawnStopEntry(node: SimNode, group: string, tag: string): SimProc {
    this.stats.outsideStopEntries++;
    return this.newProc(node, -1, group, tag, 'stop', { onExit: () => undefined, onGone: () => undefined, onOutput: () => undefined }, true);
  }

  private newProc(node: SimNode, inc: number, group: string, tag: string, level: string, cb: SpawnCallbacks, outside: boolean): SimProc {
    const kind = tag.slice(group.length + 1) as ProcKind;
    const spec = this.groups.get(group)!;
    const p: SimProc = {
      id: this.nextPid++,
      node,
      inc,
      group,
      kind,
      level,
      owner: kind === 'setup' || kind === 'svc',
      alive: true,
      since: this.sched.now,
      cb,
      death: null,
      deathAt: Number.POSITIVE_INFINITY,
      ignoreInt: node.rng.chance(spec.ignoreInt),
      ignoreTerm: node.rng.chance(spec.ignoreTerm),
      outside,
      onGone: null,
    };
    node.procs.add(p);
    this.alive.get(group)!.add(p);
    this.stats.spawns++;
    this.trace(node.name, `spawn ${tag} (pid ${p.id}) at level ${p.level}${outside ? ' (recorded stop entry)' : ''}`);
    const rate = node.clock.rate;
    if (kind === 'test') this.exitAfter(p, node.rng.uniform(spec.testMs[0], spec.testMs[1]) / rate, spec.pass.get(node.name) ? 0 : 1, null);
    else if (kind === 'setup') this.exitAfter(p, node.rng.uniform(spec.setupMs[0], spec.setupMs[1]) / rate, 0, null);
    else if (kind === 'clean') this.exitAfter(p, node.rng.uniform(spec.cleanMs[0], spec.cleanMs[1]) / rate, 0, null);
    // Processes first: a double run is reported as one; "never two holders" catches what outlives them.
    this.checkSpawn(p);
    if (p.owner) this.acquire(node, group);
    return p;
  }

  private exitAfter(p: SimProc, ms: number, code: number | null, signal: string | null): void {
    const at = this.sched.now + ms;
    if (at >= p.deathAt) return;
    if (p.death) p.death.cancelled = true;
    p.deathAt = at;
    const ev = this.sched.at(at, () => {
      if (!p.alive || p.death !== ev) return;
      if (p.node.nodeFrozen) {
        // a frozen machine's processes do not run: it exits once thawed
        p.death = null;
        p.deathAt = Number.POSITIVE_INFINITY;
        p.node.postNode(0, () => p.alive && this.exitAfter(p, 0, code, signal));
        return;
      }
      this.die(p, code, signal);
    });
    p.death = ev;
  }

  private signal(p: SimProc, sig: StopSignal): void {
    if (!p.alive) return;
    const spec = this.groups.get(p.group)!;
    const rate = p.node.clock.rate;
    if (sig === 'SIGKILL') return this.kill(p, 'SIGKILL');
    if (sig === 'SIGTERM') {
      if (!p.ignoreTerm) this.exitAfter(p, p.node.rng.uniform(0, 30) / rate, null, 'SIGTERM');
      return;
    }
    if (p.kind !== 'svc') return this.exitAfter(p, p.node.rng.uniform(0, 20) / rate, null, 'SIGINT');
    if (!p.ignoreInt) this.exitAfter(p, p.node.rng.uniform(spec.stopMs[0], spec.stopMs[1]) / rate, null, 'SIGINT');
  }

  /** SIGKILL (or the machine went down: signal null, nobody is told). */
  kill(p: SimProc, sig: 'SIGKILL' | null): void {
    if (!p.alive) return;
    if (sig === 'SIGKILL') this.die(p, null, 'SIGKILL');
    else this.bury(p);
  }

  private bury(p: SimProc): void {
    p.alive = false;
    if (p.death) p.death.cancelled = true;
    p.node.procs.delete(p);
    this.alive.get(p.group)!.delete(p);
    const gone = p.onGone;
    p.onGone = null;
    gone?.();
  }

  private die(p: SimProc, code: number | null, signal: string | null): void {
    if (!p.alive) return;
    this.trace(p.node.name, `exit ${p.group}-${p.kind} (pid ${p.id}) ${signal ?? `code ${code}`}`);
    // A stop entry that ran to completion released the group's resource here.
    if (p.kind === 'clean' && code === 0) this.release(p.node, p.group);
    this.bury(p);
    const node = p.node;
    // The engine hears of it when its monitor runs (only the monitor incarnation that started it).
    if (node.inc === p.inc && node.monitor) {
      node.deliver(p.inc, () => {
        p.cb.onExit(code, signal);
        p.cb.onGone();
      });
    }
  }

  // ---------------------------------------------------------------------------- alerts

  private readonly alertSeqs = new Map<string, number>();
  private readonly lastAlerted = new Map<string, string>();

  /**
   * A monitor raised an alert. Invariant: each node's sequences strictly increase, across its
   * restarts. Counted: node and quorum events that do not alternate cluster-wide (a repeat: two
   * observers with split views, under faults).
   */
  alerted(node: SimNode, a: Alert): void {
    this.stats.alerts++;
    const last = this.alertSeqs.get(node.name) ?? 0;
    if (a.sequence <= last) {
      this.stats.alertSeqBackwards++;
      this.fail('alert sequence', `${node.name} raised ${a.event} with sequence ${a.sequence} after ${last} (restarts included)`);
    }
    this.alertSeqs.set(node.name, a.sequence);
    const subject = a.event.startsWith('node_') ? `node ${a.node}` : a.event.startsWith('quorum_') ? 'quorum' : null;
    if (subject !== null) {
      // node_fenced may repeat: each is a fence that happened (a fenced node's heartbeat moved again).
      if (this.lastAlerted.get(subject) === a.event && a.event !== 'node_fenced') this.stats.alertRepeats++;
      this.lastAlerted.set(subject, a.event);
    }
    if (this.tracing) this.trace(node.name, `alert ${a.sequence} ${a.event} ${a.node}${a.group ? ` ${a.group}` : ''}`);
  }

  // ---------------------------------------------------------------------------- invariants

  private fail(invariant: Violation['invariant'], detail: string): void {
    if (this.violation) return;
    this.violation = { invariant, time: this.sched.now, detail };
    this.trace('----', `VIOLATION (${invariant}): ${detail}`);
  }

  private ownersOf(group: string): Map<string, SimProc[]> {
    const out = new Map<string, SimProc[]>();
    for (const p of this.alive.get(group) ?? []) {
      if (!p.owner || p.node.nodeFrozen) continue;
      const l = out.get(p.node.name) ?? [];
      l.push(p);
      out.set(p.node.name, l);
    }
    return out;
  }

  private checkOwners(group: string): void {
    const owners = this.ownersOf(group);
    if (owners.size < 2) return;
    const who = [...owners].map(([n, ps]) => `${n} (${ps.map((p) => `${p.kind} pid ${p.id} since ${p.since.toFixed(1)}`).join(', ')})`);
    // A one-sided view (one node cannot read another, or reads it frozen) may double-run a group
    // for at most the poison-pill bound: the victim reads the taker's stale claim within a cycle
    // and stops its group (killAfter at most) while the taker still waits out its plan window.
    const bound = this.pillBoundMs();
    if (this.sched.now <= this.viewFaultsUntil + bound) {
      if (this.pillEpisodes.has(group)) return;
      const first = new Set(owners.keys());
      this.pillEpisodes.add(group);
      this.stats.pillOverlaps++;
      this.sched.after(bound, () => {
        this.pillEpisodes.delete(group);
        const still = this.ownersOf(group);
        if ([...still.keys()].filter((n) => first.has(n)).length >= 2) this.fail('never two owners', `group ${group} still on ${still.size} nodes ${bound.toFixed(0)} ms (the poison-pill bound) after a double run began under a one-sided view: ${who.join('; ')}`);
      });
      return;
    }
    this.fail('never two owners', `group ${group} has resource processes alive on ${owners.size} nodes: ${who.join('; ')}`);
  }

  /** How long a one-sided view may double-run a group: a cycle to read the claim, the stop (killAfter), slack for latency. */
  private pillBoundMs(): number {
    const minRate = Math.min(...[...this.nodes.values()].map((n) => n.clock.rate));
    return (this.scenario.timings.killAfterMs + 2 * this.scenario.cycleMs + this.scenario.visibilityLagMs) / minRate;
  }

  checkOwnersOn(node: SimNode): void {
    const groups = new Set([...node.procs].filter((p) => p.alive && p.owner).map((p) => p.group));
    for (const g of groups) this.checkOwners(g);
  }

  // ---------------------------------------------------------------------------- resources

  private acquire(node: SimNode, group: string): void {
    if (!node.held.has(group)) {
      node.held.set(group, this.sched.now);
      this.stats.acquired++;
      this.trace(node.name, `acquires ${group}'s resource`);
    }
    this.checkHolders(group);
  }

  private release(node: SimNode, group: string): void {
    if (!node.held.delete(group)) return;
    this.stats.releasedByStop++;
    this.trace(node.name, `releases ${group}'s resource (stop entry ran)`);
    const key = `${node.name} ${group}`;
    const since = this.thawOverlapOpen.get(key);
    if (since !== undefined) {
      this.thawOverlapOpen.delete(key);
      this.thawOverlapsMs.push(this.sched.now - since);
    }
  }

  /** A hold that counts now: not on a frozen machine, not one a thawed machine still has grace for. */
  private counts(node: SimNode, group: string): boolean {
    const since = node.held.get(group);
    if (since === undefined || node.nodeFrozen) return false;
    return !(this.sched.now <= node.thawGraceUntil && node.thawHolds.get(group) === since);
  }

  /** Nodes whose hold of `group` counts now, with since when. */
  holdersOf(group: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const n of this.nodes.values()) if (this.counts(n, group)) out.set(n.name, n.held.get(group)!);
    return out;
  }

  private describeHolders(holders: ReadonlyMap<string, number>): string {
    return [...holders].map(([n, since]) => `${n} (since ${since.toFixed(1)})`).join(', ');
  }

  private checkHolders(group: string): void {
    const holders = this.holdersOf(group);
    if (holders.size < 2) return;
    const who = this.describeHolders(holders);
    // Under a one-sided view the victim releases through its stop level once it reads the claim:
    // the same pill episode as for processes, with the stop level's bound.
    const bound = this.holdPillBoundMs();
    if (this.inHoldPillWindow()) {
      if (this.holdEpisodes.has(group)) return;
      const first = new Map(holders);
      this.holdEpisodes.add(group);
      this.stats.pillHoldOverlaps++;
      this.sched.after(bound, () => {
        this.holdEpisodes.delete(group);
        const still = [...this.holdersOf(group)].filter(([n, since]) => first.get(n) === since);
        if (still.length >= 2) this.fail('never two holders', `group ${group}'s resource still held on ${still.length} nodes ${bound.toFixed(0)} ms (the poison-pill bound for a stop level) after a double hold began under a one-sided view: ${who}`);
        else this.checkHolders(group);
      });
      return;
    }
    this.fail('never two holders', `group ${group}'s resource is held on ${holders.size} nodes: ${who}`);
  }

  /**
   * How long a one-sided view may double-hold a resource: a cycle to read the claim, then the
   * victim's stop level — its processes stop (within the SIGKILL time) and its stop entries run
   * (within stop_timeout) — and slack for latency: the owners' bound plus stop_timeout.
   */
  private holdPillBoundMs(): number {
    return (this.scenario.timings.killAfterMs + this.scenario.stopTimeoutMs + 2 * this.scenario.cycleMs + this.scenario.visibilityLagMs) / this.minRate();
  }

  private inHoldPillWindow(): boolean {
    return this.sched.now <= this.viewFaultsUntil + this.holdPillBoundMs();
  }

  /**
   * A whole-node freeze ended (the watchdog already ran its overdue wake-up): what the machine
   * held through the freeze must be released within stop_timeout where another node holds it too.
   */
  thawedHolder(node: SimNode): void {
    if (node.held.size === 0) return;
    const bound = node.world.scenario.stopTimeoutMs / node.clock.rate + 1;
    node.thawHolds = new Map(node.held);
    node.thawGraceUntil = this.sched.now + bound;
    const thawAt = this.sched.now;
    const holds = new Map(node.held);
    for (const g of holds.keys()) {
      if (this.holdersOf(g).size === 0) continue;
      this.stats.freezeOverlaps++;
      this.thawOverlapOpen.set(`${node.name} ${g}`, thawAt);
    }
    this.sched.after(bound, () => {
      for (const [g, since] of holds) {
        this.thawOverlapOpen.delete(`${node.name} ${g}`);
        if (node.held.get(g) !== since || node.nodeFrozen) continue;
        const others = this.holdersOf(g);
        others.delete(node.name);
        if (others.size === 0) continue;
        // A one-sided view may also have let a peer in: then its (longer) pill bound applies.
        if (this.inHoldPillWindow()) this.checkHolders(g);
        else this.fail('never two holders', `group ${g}'s resource still held on ${node.name} ${bound.toFixed(0)} ms (stop_timeout) after its whole-node freeze ended, and on ${this.describeHolders(others)}`);
      }
    });
  }

  private quorumBound(node: SimNode): number {
    return (this.scenario.timings.killAfterMs + this.scenario.cycleMs) / node.clock.rate;
  }

  private checkSpawn(p: SimProc): void {
    if (p.owner) this.checkOwners(p.group);
    const since = p.node.noQuorumSince;
    if (p.level !== 'stop' && since !== null && this.sched.now - since > this.quorumBound(p.node)) {
      this.fail('quorum-less nodes run nothing', `${p.node.name} started ${p.group}-${p.kind} ${(this.sched.now - since).toFixed(0)} ms after it decided without quorum`);
    }
  }

  /** A monitor decided with (ok) or without quorum: without it, its groups must be gone within the bound. */
  quorumVerdict(node: SimNode, ok: boolean, why: string): void {
    if (ok) {
      if (node.noQuorumSince !== null) node.noQuorumToken++;
      node.noQuorumSince = null;
      return;
    }
    if (node.noQuorumSince !== null) return;
    const since = this.sched.now;
    node.noQuorumSince = since;
    const token = ++node.noQuorumToken;
    this.sched.after(this.quorumBound(node), () => {
      if (token !== node.noQuorumToken || node.noQuorumSince !== since) return;
      const running = [...node.procs].filter((p) => p.alive && p.level !== 'stop');
      if (running.length > 0) {
        this.fail('quorum-less nodes run nothing', `${node.name} decided ${why} at ${since.toFixed(1)} and still runs ${running.map((p) => `${p.group}-${p.kind} (pid ${p.id})`).join(', ')} ${(this.sched.now - since).toFixed(0)} ms later`);
      }
    });
  }

  // ---------------------------------------------------------------------------- fences

  /**
   * The fence hook: an agent (off, then status to verify) or a command, with the outcome mix of the
   * current fault window; a success powers the target off. An agent whose `off` "succeeds" while
   * its status still says on (a status mismatch) fails and powers nothing off.
   */
  runFence(fencer: SimNode, target: string, method: Exclude<FenceMethod, { kind: 'manual' }>, action: string, timeoutMs: number, done: (outcome: FenceOutcome) => void): void {
    this.stats.fences++;
    const f = this.fenceFaulty;
    const r = this.rng;
    const agent = method.kind === 'agent';
    if (agent) this.stats.agentFences++;
    else this.stats.commandFences++;
    const mismatch = f && agent ? f.failure : 0;
    const outcome = f ? r.weighted([[f.failure, 'failure'], [f.timeout, 'timeout'], [f.slow, 'slow'], [mismatch, 'mismatch'], [Math.max(0, 1 - f.failure - f.timeout - f.slow - mismatch), 'success']] as const) : 'success';
    if (outcome === 'failure') this.stats.fenceFailed++;
    else if (outcome === 'timeout') this.stats.fenceTimedOut++;
    else if (outcome === 'slow') this.stats.fenceSlow++;
    else if (outcome === 'mismatch') this.stats.fenceMismatch++;
    const dur = outcome === 'timeout' ? timeoutMs : outcome === 'slow' ? r.uniform(0.5 * timeoutMs, 0.95 * timeoutMs) : r.uniform(20, 300);
    const fence: Fence = { target, done: false };
    fencer.fences.add(fence);
    this.trace(fencer.name, `fence ${agent ? 'agent' : 'command'} for ${target} starts (${outcome}, ${dur.toFixed(0)} ms)`);
    this.sched.after(dur, () => {
      if (fence.done) return;
      fence.done = true;
      fencer.fences.delete(fence);
      if (outcome === 'success' || outcome === 'slow') this.powerOff(target, `fenced by ${fencer.name}`);
      const result = outcome === 'timeout' ? 'timeout' : outcome === 'failure' || outcome === 'mismatch' ? 'failure' : 'success';
      const detail = outcome === 'mismatch' ? 'status check exit 0 (expected 2): still on' : outcome;
      done({ method: agent ? method.agent : `command ${method.command}`, action: agent ? `${action}+status` : action, result, durationMs: Math.round(dur), detail });
    });
  }

  /**
   * The operator of the manual method: a monitor that reads DIR/fence-confirm/NODE is waiting for
   * one. A while later the operator makes sure NODE is off (powers it off if it is not), then runs
   * `peerha fence confirm NODE`, which names the incarnation its clstat shows (seq and pid).
   */
  private watchConfirmations(_reader: string, path: string): void {
    if (!path.startsWith('fence-confirm/')) return;
    const target = path.slice('fence-confirm/'.length);
    if (this.operating.has(target)) return;
    this.operating.add(target);
    const T = this.scenario.timeoutMs;
    this.sched.after(this.rng.uniform(T, 4 * T), () => {
      this.operating.delete(target);
      this.powerOff(target, 'powered off by an operator before confirming');
      const last = this.store.latest(`nodes/${target}/clstat`);
      const h = last?.text ? parseClstat(last.text).header : null;
      const confirm = { node: target, time: new Date(EPOCH_MS + this.sched.now).toISOString(), by: 'operator', ...(h ? { seq: h.seq, pid: h.pid } : {}) };
      this.store.put(path, JSON.stringify(confirm) + '\n');
      this.stats.manualConfirms++;
      this.trace('adm', `peerha fence confirm ${target}${h ? ` (seq ${h.seq}, pid ${h.pid})` : ''}`);
    });
  }

  powerOff(target: string, why: string): void {
    const node = this.nodes.get(target);
    if (!node || node.status === 'down' || node.status === 'never') return;
    this.stats.fenceEffects++;
    node.crash(why);
    this.disrupted();
    if (this.rng.chance(this.scenario.rebootAfterFence)) {
      this.sched.after(this.rng.uniform(this.scenario.timeoutMs, 3 * this.scenario.timeoutMs), () => {
        if (node.status !== 'down') return;
        node.startMonitor();
        this.disrupted();
      });
    }
  }

  // ---------------------------------------------------------------------------- faults

  private token(key: string): number {
    const t = (this.faultTokens.get(key) ?? 0) + 1;
    this.faultTokens.set(key, t);
    return t;
  }

  private restartLater(node: SimNode, ms: number): void {
    const attempt = (): void => {
      if (node.status === 'up') {
        if (node.monitor?.leaving) this.sched.after(this.scenario.cycleMs, attempt);
        return;
      }
      node.startMonitor();
      this.disrupted();
    };
    this.sched.after(ms, attempt);
  }

  apply(f: Fault): void {
    this.disrupted();
    const node = 'node' in f ? this.nodes.get(f.node)! : null;
    switch (f.kind) {
      case 'start':
        this.trace(f.node, 'joins');
        node!.startMonitor();
        return;
      case 'crash-fencer': {
        const busy = [...this.nodes.values()].find((n) => n.fences.size > 0);
        const target = busy ?? [...this.nodes.values()].filter((n) => n.status === 'up').sort((a, b) => (a.name < b.name ? -1 : 1))[0];
        if (!target) return;
        target.crash(busy ? 'crashed while running a fence hook (fault)' : 'crashed: the designated fencer (fault)');
        this.restartLater(target, f.restartAfter);
        return;
      }
      case 'crash':
        if (node!.status === 'never' || node!.status === 'down') return;
        node!.crash('crashed (fault)');
        if (f.restartAfter !== null) this.restartLater(node!, f.restartAfter);
        return;
      case 'kill-monitor':
        if (node!.status !== 'up' || node!.monitorFrozen) return;
        node!.killMonitor();
        this.restartLater(node!, f.restartAfter);
        return;
      case 'leave':
        if (node!.status !== 'up' || node!.monitorFrozen || !node!.monitor) return;
        this.trace(f.node, 'SIGTERM');
        node!.monitor.leave();
        this.restartLater(node!, f.restartAfter);
        return;
      case 'pause':
        node!.freeze(!f.watchdog, f.dur);
        this.sched.after(f.dur, () => this.disrupted());
        return;
      case 'partition': {
        const st = this.store.state(f.node);
        if (st.partition) return;
        st.partition = f.mode;
        this.trace(f.node, `partitioned from the store (${f.mode})`);
        this.sched.after(f.dur, () => {
          this.trace(f.node, 'partition healed');
          this.store.heal(f.node);
          this.disrupted();
        });
        return;
      }
      case 'slow': {
        const t = this.token(`slow ${f.node}`);
        this.store.state(f.node).slow = f.latency;
        this.trace(f.node, `store slow: +${f.latency[0].toFixed(0)}–${f.latency[1].toFixed(0)} ms per op`);
        this.sched.after(f.dur, () => {
          if (this.faultTokens.get(`slow ${f.node}`) !== t) return;
          this.store.state(f.node).slow = null;
          this.disrupted();
        });
        return;
      }
      case 'reads': {
        const t = this.token('reads');
        Object.assign(this.store.faults, { torn: f.torn, missing: f.missing, reorder: f.reorder });
        this.trace('----', `read faults: torn ${f.torn}, missing ${f.missing}, reordered ${f.reorder}`);
        this.sched.after(f.dur, () => {
          if (this.faultTokens.get('reads') !== t) return;
          Object.assign(this.store.faults, { torn: 0, missing: 0, reorder: 0 });
          this.disrupted();
        });
        return;
      }
      case 'fence-faulty': {
        const t = this.token('fence');
        this.fenceFaulty = { failure: f.failure, timeout: f.timeout, slow: f.slow };
        this.sched.after(f.dur, () => {
          if (this.faultTokens.get('fence') !== t) return;
          this.fenceFaulty = null;
          this.disrupted();
        });
        return;
      }
      case 'hactl':
        this.trace('adm', `hactl${f.valid ? '' : ' (bad edit)'}: ${f.text.trim().split('\n').join(' | ')}`);
        this.store.put('hactl', f.text);
        if (!f.valid) this.stats.badEdits++;
        return;
      case 'cltab':
        this.trace('adm', f.groups ? `cltab: groups ${f.groups.join(',') || '(none)'}` : 'cltab: a bad edit');
        this.store.put('cltab', f.text);
        this.stats.cltabEdits++;
        if ([...this.nodes.keys()].some((n) => this.store.state(n).partition !== null)) this.stats.cltabEditsPartitioned++;
        if (!f.groups) this.stats.badEdits++;
        return;
      case 'halt': {
        this.trace('adm', 'peerha halt');
        const t = this.token('halt');
        this.store.put('halt', 'halted by the simulator\n');
        this.halted = true;
        this.stats.halts++;
        if (f.dur === null) return;
        this.sched.after(f.dur, () => {
          if (this.faultTokens.get('halt') !== t) return;
          this.trace('adm', 'peerha halt --undo');
          this.store.put('halt', null);
          this.halted = false;
          this.disrupted();
        });
        return;
      }
      case 'full': {
        const t = this.token('full');
        this.store.full = true;
        this.stats.fullDisks++;
        this.trace('----', 'the shared filesystem is full');
        this.sched.after(f.dur, () => {
          if (this.faultTokens.get('full') !== t) return;
          this.store.full = false;
          this.trace('----', 'space on the shared filesystem again');
          this.disrupted();
        });
        return;
      }
      case 'clock-step':
        node!.wallStepMs += f.stepMs;
        this.stats.clockSteps++;
        this.trace(f.node, `wall clock steps ${f.stepMs > 0 ? '+' : ''}${f.stepMs} ms`);
        return;
      case 'symlink': {
        const t = this.token(`symlink ${f.file}`);
        this.store.links.add(f.file);
        this.stats.symlinks++;
        this.trace('adm', `DIR/${f.file} replaced by a symlink`);
        this.sched.after(f.dur, () => {
          if (this.faultTokens.get(`symlink ${f.file}`) !== t) return;
          this.store.links.delete(f.file);
          this.trace('adm', `DIR/${f.file} a regular file again`);
          this.disrupted();
        });
        return;
      }
      case 'view': {
        // One token per direction: a later fault on the same reader and peer takes over from this one.
        const dirs: Array<[string, string, 'lost' | 'stuck']> = f.mode === 'cut' ? [[f.node, f.peer, 'lost'], [f.peer, f.node, 'lost']] : [[f.node, f.peer, f.mode]];
        const tokens = dirs.map(([reader, peer, mode]) => {
          this.store.setView(reader, peer, mode);
          return this.token(`view ${reader} ${peer}`);
        });
        this.viewFaultsUntil = Math.max(this.viewFaultsUntil, this.sched.now + f.dur);
        this.stats[f.mode === 'lost' ? 'viewsLost' : f.mode === 'stuck' ? 'viewsStuck' : 'viewsCut']++;
        this.trace(f.node, f.mode === 'lost' ? `cannot read nodes/${f.peer}` : f.mode === 'stuck' ? `sees nodes/${f.peer} frozen` : `and ${f.peer} cannot read each other`);
        this.sched.after(f.dur, () => {
          dirs.forEach(([reader, peer], k) => {
            if (this.faultTokens.get(`view ${reader} ${peer}`) !== tokens[k]) return;
            this.store.setView(reader, peer, null);
            this.trace(reader, `reads nodes/${peer} again`);
          });
          this.disrupted();
        });
        return;
      }
      case 'io-error': {
        const t = this.token(`io ${f.node}`);
        this.store.state(f.node).ioError = f.p;
        this.trace(f.node, `store batches fail with p=${f.p}`);
        this.sched.after(f.dur, () => {
          if (this.faultTokens.get(`io ${f.node}`) !== t) return;
          this.store.state(f.node).ioError = 0;
          this.disrupted();
        });
        return;
      }
    }
  }

  disrupted(): void {
    this.lastDisruption = Math.max(this.lastDisruption, this.sched.now);
    if (this.healed) this.armDeadline();
  }

  // ---------------------------------------------------------------------------- progress

  private minRate(): number {
    return Math.min(...[...this.nodes.values()].map((n) => n.clock.rate));
  }

  /**
   * The progress bound, from the last disruption: detection (timeout), a restarted monitor's
   * clean-up of its previous run (stop_timeout), duplicate-id wait and settle time, a failed test's cooldown, a pending fence retry, 40 cycles of
   * planning (random draws, collisions, backoff), the plan window, test and setup time, two stop
   * times (a conflict loser, a self-fence), and two probe rounds (plan window + test + 3 cycles) per
   * node whose test fails — all on the slowest clock.
   */
  progressBound(): number {
    const scenario = this.scenario;
    const c = scenario.cycleMs;
    const lag = scenario.visibilityLagMs;
    let fenceWait = 0;
    if (scenario.fence.methods.length) {
      for (const n of this.nodes.values()) fenceWait = Math.max(fenceWait, n.monitor?.fenceWaitMs() ?? 0);
      fenceWait += scenario.fence.delayBaseMs + scenario.fence.delayMaxMs + scenario.fence.priorityDelayMs + scenario.fence.methods.length * scenario.fence.timeoutMs + 300;
      // An operator answers a manual method within 4 timeouts; it is polled every cycle.
      if (scenario.fence.methods.some((m) => m.kind === 'manual')) fenceWait += 4 * scenario.timeoutMs + 2 * c;
    }
    const maxTest = Math.max(0, ...scenario.groups.map((g) => g.testMs[1]));
    const maxSetup = Math.max(0, ...scenario.groups.map((g) => g.setupMs[1]));
    // Eligibility is only found out by testing: one probe round per node whose test fails.
    const failing = Math.max(0, ...scenario.groups.map((g) => [...g.pass.values()].filter((ok) => !ok).length));
    const probes = 2 * failing * (2 * c + 2 * lag + maxTest + 3 * c);
    // + 1 s: systemd restarts a monitor that exited for a halt or a refusal
    // + stop_timeout: a restarted monitor first runs the stop entries its previous run recorded
    const local = scenario.timeoutMs + fenceWait + 1000 + scenario.stopTimeoutMs + (2 * c + lag + 200) + (2 * c + lag) + scenario.failCooldownCycles * c + 40 * c + (2 * c + 2 * lag) + maxTest + maxSetup + 2 * scenario.timings.killAfterMs + 4 * lag + probes;
    return local / this.minRate();
  }

  private armDeadline(): void {
    this.boundMs = this.progressBound();
    this.deadline = this.lastDisruption + this.boundMs;
    this.convergedSince = null;
  }

  startProgress(): void {
    this.healed = true;
    this.disrupted();
    const tick = (): void => {
      if (this.done || this.violation) return;
      this.progressTick();
      this.sched.after(this.scenario.cycleMs / 2, tick);
    };
    this.sched.after(this.scenario.cycleMs / 2, tick);
  }

  private liveMonitors(): SimMonitor[] {
    const out: SimMonitor[] = [];
    for (const n of this.nodes.values()) if (n.status === 'up' && n.monitor && n.monitor.running && !n.monitor.leaving) out.push(n.monitor);
    return out;
  }

  private quorumExpected(): boolean {
    const q = this.scenario.quorum;
    const live = this.liveMonitors();
    if (q.policy === 'none' && !q.waitForAll) return true;
    if (q.policy === 'majority' && !q.waitForAll) return live.length * 2 > (q.expected ?? this.nodes.size);
    return live.length > 0 && live.every((m) => m.lastQuorumOk === true);
  }

  /** While halted: no monitor cycles and nothing runs. */
  private unhalted(): string | null {
    for (const n of this.nodes.values()) if (n.status === 'up' && n.monitor?.running) return `the cluster is halted, but ${n.name}'s monitor still cycles`;
    for (const g of this.groups.values()) {
      const owners = this.ownersOf(g.name);
      if (owners.size > 0) return `the cluster is halted, but ${g.name} still runs on ${[...owners.keys()].join(',')}`;
      const holders = this.holdersOf(g.name);
      if (holders.size > 0) return `the cluster is halted, but ${g.name}'s resource is still held on ${[...holders.keys()].join(',')}`;
    }
    return null;
  }

  /** Why the cluster is not (yet) where it must end up, or null when it is. */
  private unconverged(): string | null {
    if (this.halted) return this.unhalted();
    const live = [...this.nodes.values()].filter((n) => n.status === 'up' && n.monitor?.running && !n.monitor.leaving);
    const inst = new Map(live.map((n) => [n.name, n.monitor!.localInstances()]));
    const config = this.effectiveConfig();
    for (const g of this.groups.values()) {
      const owners = this.ownersOf(g.name);
      const want = config.wants.get(g.name);
      const wanted = !!want && want.level !== 'stop' && config.groups.has(g.name);
      const eligible = wanted ? live.filter((n) => (!want.nodes || want.nodes.includes(n.name)) && g.pass.get(n.name)) : [];
      const holders = this.holdersOf(g.name);
      if (eligible.length === 0) {
        const why = wanted ? 'wanted but has no eligible node' : config.groups.has(g.name) ? 'not wanted' : 'not in cltab';
        if (owners.size > 0) return `${g.name} is ${why} and still runs on ${[...owners.keys()].join(',')}`;
        if (holders.size > 0) return `${g.name} is ${why} and its resource is still held on ${[...holders.keys()].join(',')}`;
        continue;
      }
      const running = eligible.filter((n) => {
        const i = inst.get(n.name)?.get(g.name);
        return i?.level === want!.level && i.state === 'DONE' && [...n.procs].some((p) => p.alive && p.group === g.name && p.kind === 'svc');
      });
      if (running.length !== 1 || owners.size !== 1) {
        const where = live.map((n) => `${n.name}:${inst.get(n.name)?.get(g.name) ? `${inst.get(n.name)!.get(g.name)!.level}/${inst.get(n.name)!.get(g.name)!.state}` : '-'}`).join(' ');
        return `${g.name} (wanted ${want!.level}, eligible ${eligible.map((n) => n.name).join(',')}) runs on ${running.length} node(s); resource processes on ${[...owners.keys()].join(',') || 'none'}; engines: ${where}`;
      }
      const stray = [...holders.keys()].filter((n) => n !== running[0]!.name);
      if (stray.length > 0) return `${g.name} runs on ${running[0]!.name}, but its resource is also held on ${stray.join(',')}`;
    }
    return null;
  }

  private progressTick(): void {
    const now = this.sched.now;
    const scenario = this.scenario;
    const settleAfter = (scenario.timeoutMs + 4 * scenario.cycleMs) / this.minRate();
    const stable = (scenario.timeoutMs + 4 * scenario.cycleMs) / this.minRate();
    if (now < this.lastDisruption + settleAfter) return;
    const mode = this.halted ? 'halted' : this.quorumExpected() ? 'progress' : 'no quorum';
    this.progressMode = mode;
    const why = mode === 'no quorum' ? null : this.unconverged();
    if (why === null) {
      if (this.convergedSince === null) this.convergedSince = now;
      if (now - this.convergedSince >= stable) {
        this.convergeMs = mode === 'progress' ? this.convergedSince - this.lastDisruption : null;
        this.done = true;
      }
      return;
    }
    this.convergedSince = null;
    if (now >= this.deadline) this.fail('progress', `${(now - this.lastDisruption).toFixed(0)} ms after the last fault healed (bound ${this.boundMs.toFixed(0)} ms): ${why}`);
  }
}
