// The simulated cluster: nodes (machine, monitor, watchdog, processes), the shared store, the fence
// hook, the fault schedule, and the invariants checked as the history unfolds.
//
// Ground truth lives here, not in any monitor: which processes are actually alive on which node.
// Invariants:
//   1. never two owners — a group's resource processes (its setup and service entries) alive on two
//      nodes at once, checked whenever one starts or a frozen node thaws;
//   2. progress — once faults have healed and quorum holds, every wanted group in cltab with an
//      eligible node runs on exactly one node (and every other group nowhere) within a stated
//      bound; while DIR/halt stands, nothing runs and no monitor cycles;
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
import type { FenceOutcome } from '../monitor/events.js';
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
}

export interface Violation {
  readonly invariant: 'never two owners' | 'progress' | 'quorum-less nodes run nothing';
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
  private wd = { active: false, lastPet: 0, token: 0 };
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

  /** SIGKILL every process group of this node (watchdog, self-fence, leftovers at start). */
  killAll(why: string): void {
    let n = 0;
    for (const p of [...this.procs]) {
      if (!p.alive) continue;
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

  watchdogStart(limit: number): void {
    this.wd.active = true;
    this.wd.lastPet = this.local();
    const token = ++this.wd.token;
    const tick = Math.max(20, Math.floor(limit / 4));
    const loop = (): void => {
      if (!this.wd.active || this.wd.token !== token) return;
      if (this.local() - this.wd.lastPet > limit) this.killAll('watchdog: monitor silent');
      this.postNode(tick / this.clock.rate, loop);
    };
    this.postNode(tick / this.clock.rate, loop);
  }

  watchdogPet(): void {
    if (this.wd.active) this.wd.lastPet = this.local();
  }

  watchdogBye(): void {
    this.wd.active = false;
    this.wd.token++;
  }

  /** The monitor died: the watchdog sees the IPC channel close and kills every group. */
  private watchdogDisconnect(): void {
    if (!this.wd.active) return;
    this.watchdogBye();
    this.killAll('watchdog: monitor gone');
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
    for (const p of [...this.procs]) if (p.alive) this.world.kill(p, null);
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
    manualConfirms: 0, agentFences: 0, commandFences: 0, halts: 0, haltExits: 0, cltabEdits: 0, cltabEditsPartitioned: 0, badEdits: 0, failedBatches: 0, cycleRetries: 0,
    viewsLost: 0, viewsStuck: 0, viewsCut: 0, pillOverlaps: 0, fullDisks: 0, clockSteps: 0, symlinks: 0,
  };
  /** When the last one-sided view fault ends (double runs within the poison-pill bound are allowed until then). */
  private viewFaultsUntil = Number.NEGATIVE_INFINITY;
  private readonly pillEpisodes = new Set<string>();

  constructor(
    readonly scenario: Scenario,
    readonly logic: Logic,
    readonly tracing: boolean,
    /** Starts a monitor process on a node (the simulator's driver of step()). */
    readonly newMonitor: (world: World, node: SimNode) => SimMonitor,
  ) {
    this.rng = new Rng(scenario.seed, 7);
    this.store = new SimStore(this.sched, new Rng(scenario.seed, 8), scenario.storeLagMs, scenario.storeLatencyMs);
    this.store.onRead = (reader, path) => this.watchConfirmations(reader, path);
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
    const kind = tag.slice(group.length + 1) as ProcKind;
    const spec = this.groups.get(group)!;
    const p: SimProc = {
      id: this.nextPid++,
      node,
      inc,
      group,
      kind,
      level: env.PEERHA_LEVEL ?? '',
      owner: kind === 'setup' || kind === 'svc',
      alive: true,
      since: this.sched.now,
      cb,
      death: null,
      deathAt: Number.POSITIVE_INFINITY,
      ignoreInt: node.rng.chance(spec.ignoreInt),
      ignoreTerm: node.rng.chance(spec.ignoreTerm),
    };
    node.procs.add(p);
    this.alive.get(group)!.add(p);
    this.stats.spawns++;
    this.trace(node.name, `spawn ${tag} (pid ${p.id}) at level ${p.level}`);
    const rate = node.clock.rate;
    if (kind === 'test') this.exitAfter(p, node.rng.uniform(spec.testMs[0], spec.testMs[1]) / rate, spec.pass.get(node.name) ? 0 : 1, null);
    else if (kind === 'setup') this.exitAfter(p, node.rng.uniform(spec.setupMs[0], spec.setupMs[1]) / rate, 0, null);
    else if (kind === 'clean') this.exitAfter(p, node.rng.uniform(0, this.scenario.cycleMs / 2) / rate, 0, null);
    this.checkSpawn(p);
    return {
      pgid: p.id,
      signal: (sig: StopSignal) => this.signal(p, sig),
      sweep: () => undefined,
    };
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
  }

  private die(p: SimProc, code: number | null, signal: string | null): void {
    if (!p.alive) return;
    this.bury(p);
    this.trace(p.node.name, `exit ${p.group}-${p.kind} (pid ${p.id}) ${signal ?? `code ${code}`}`);
    const node = p.node;
    // The engine hears of it when its monitor runs (only the monitor incarnation that started it).
    if (node.inc === p.inc && node.monitor) {
      node.deliver(p.inc, () => {
        p.cb.onExit(code, signal);
        p.cb.onGone();
      });
    }
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
    const mismatch = f && agent ? f.failure / 2 : 0;
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
   * duplicate-id wait and settle time, a failed test's cooldown, a pending fence retry, 40 cycles of
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
    const local = scenario.timeoutMs + fenceWait + 1000 + (2 * c + lag + 200) + (2 * c + lag) + scenario.failCooldownCycles * c + 40 * c + (2 * c + 2 * lag) + maxTest + maxSetup + 2 * scenario.timings.killAfterMs + 4 * lag + probes;
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
      if (eligible.length === 0) {
        if (owners.size > 0) return `${g.name} is ${wanted ? 'wanted but has no eligible node' : config.groups.has(g.name) ? 'not wanted' : 'not in cltab'} and still runs on ${[...owners.keys()].join(',')}`;
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
