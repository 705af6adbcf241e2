// The simulated cluster: nodes (machine, monitor, watchdog, processes), the shared store, the fence
// hook, the fault schedule, and the invariants checked as the history unfolds.
//
// Ground truth lives here, not in any monitor: which processes are actually alive on which node.
// Invariants:
//   1. never two owners — a group's resource processes (its setup and service entries) alive on two
//      nodes at once, checked whenever one starts or a frozen node thaws;
//   2. progress — once faults have healed and quorum holds, every wanted group with an eligible
//      node runs on exactly one node (and every unwanted group nowhere) within a stated bound;
//   3. quorum-less nodes run nothing — a monitor that decided without quorum (or while
//      self-fencing or leaving) has no group process left (stop-level cleanup aside) after
//      killAfter + one cycle.

import { parseCltab, type Cltab } from '../config/cltab.js';
import { parseHactl, type HactlWant } from '../config/hactl.js';
import type { SpawnCallbacks, ProcessHandle, SpawnRequest } from '../init/runner.js';
import type { StopSignal } from '../init/machines.js';
import type { SimLogic } from './logic.js';
import { SimMonitor, type Handle } from './monitor.js';
import { Rng } from './rng.js';
import type { Fault, GroupSpec, NodeClockSpec, Scenario } from './scenario.js';
import { Scheduler, type SimEvent } from './scheduler.js';
import { SimStore } from './store.js';

export type ProcKind = 'test' | 'setup' | 'svc' | 'clean';

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
    this.rng = new Rng(world.s.seed, 100 + Number(name.slice(1)));
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

  watchdogStart(): void {
    this.wd.active = true;
    this.wd.lastPet = this.local();
    const token = ++this.wd.token;
    const limit = Math.floor(this.world.s.timeoutMs / 2);
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
    this.monitor = new SimMonitor(this.world, this);
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

  /** The monitor process exited by itself (start-up refusal: systemd restarts it; or it left). */
  monitorExited(code: number, why: string): void {
    this.world.trace(this.name, `monitor exits ${code}: ${why}`);
    this.endMonitor(code === 0 ? 'left' : 'monitor-down');
    if (code !== 0) {
      this.world.sched.after(1000, () => {
        if (this.status !== 'monitor-down') return;
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
  readonly cltab: Cltab;
  readonly cltabGroups: ReadonlySet<string>;
  readonly groups = new Map<string, GroupSpec>();
  wants: ReadonlyMap<string, HactlWant>;
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
  progressMode: 'progress' | 'no quorum' | null = null;
  deadline = Number.POSITIVE_INFINITY;
  boundMs = 0;
  readonly stats = { spawns: 0, fences: 0, fenceEffects: 0, watchdogKills: 0, selfFenceKills: 0, fencerDied: 0, fenceFailed: 0, fenceTimedOut: 0, fenceSlow: 0 };

  constructor(
    readonly s: Scenario,
    readonly logic: SimLogic,
    readonly tracing: boolean,
  ) {
    this.rng = new Rng(s.seed, 7);
    this.store = new SimStore(this.sched, new Rng(s.seed, 8), s.storeLagMs, s.storeLatencyMs);
    const text = s.groups
      .flatMap((g) => [
        ...(g.hasTest ? [`${g.name}:${g.name}-test:test,:test:sim-test`] : []),
        ...(g.hasSetup ? [`${g.name}:${g.name}-setup:start,:wait:sim-setup`] : []),
        `${g.name}:${g.name}-svc:start,:respawn:sim-svc`,
        `${g.name}:${g.name}-clean:stop,:wait:sim-clean`,
      ])
      .join('\n');
    const r = parseCltab(text + '\n', 'DIR/cltab');
    if (!r.ok) throw new Error(`simulator cltab: ${r.errors.map((e) => e.message).join('; ')}`);
    this.cltab = r.cltab;
    this.cltabGroups = new Set(r.cltab.groups);
    for (const g of s.groups) {
      this.groups.set(g.name, g);
      this.alive.set(g.name, new Set());
    }
    this.wants = this.parseWants(s.hactl);
    this.store.put('hactl', s.hactl);
    for (const n of s.nodes) this.nodes.set(n, new SimNode(this, n, s.clocks.get(n)!));
  }

  private parseWants(text: string): ReadonlyMap<string, HactlWant> {
    const r = parseHactl(text, 'DIR/hactl');
    if (!r.ok) throw new Error('simulator hactl does not parse');
    return r.hactl.wants;
  }

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
    else if (kind === 'clean') this.exitAfter(p, node.rng.uniform(0, this.s.cycleMs / 2) / rate, 0, null);
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
    this.fail('never two owners', `group ${group} has resource processes alive on ${owners.size} nodes: ${who.join('; ')}`);
  }

  checkOwnersOn(node: SimNode): void {
    const groups = new Set([...node.procs].filter((p) => p.alive && p.owner).map((p) => p.group));
    for (const g of groups) this.checkOwners(g);
  }

  private quorumBound(node: SimNode): number {
    return (this.s.timings.killAfterMs + this.s.cycleMs) / node.clock.rate;
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

  runFence(fencer: SimNode, target: string, done: (result: 'success' | 'failure' | 'timeout') => void): void {
    this.stats.fences++;
    const f = this.fenceFaulty;
    const r = this.rng;
    const outcome = f ? r.weighted([[f.failure, 'failure'], [f.timeout, 'timeout'], [f.slow, 'slow'], [Math.max(0, 1 - f.failure - f.timeout - f.slow), 'success']] as const) : 'success';
    if (outcome === 'failure') this.stats.fenceFailed++;
    else if (outcome === 'timeout') this.stats.fenceTimedOut++;
    else if (outcome === 'slow') this.stats.fenceSlow++;
    const T = this.s.fence.timeoutMs;
    const dur = outcome === 'timeout' ? T : outcome === 'slow' ? r.uniform(0.5 * T, 0.95 * T) : r.uniform(20, 300);
    const fence: Fence = { target, done: false };
    fencer.fences.add(fence);
    this.trace(fencer.name, `fence hook for ${target} starts (${outcome}, ${dur.toFixed(0)} ms)`);
    this.sched.after(dur, () => {
      if (fence.done) return;
      fence.done = true;
      fencer.fences.delete(fence);
      if (outcome === 'success' || outcome === 'slow') this.powerOff(target, `fenced by ${fencer.name}`);
      done(outcome === 'timeout' ? 'timeout' : outcome === 'failure' ? 'failure' : 'success');
    });
  }

  powerOff(target: string, why: string): void {
    const node = this.nodes.get(target);
    if (!node || node.status === 'down' || node.status === 'never') return;
    this.stats.fenceEffects++;
    node.crash(why);
    this.disrupted();
    if (this.rng.chance(this.s.rebootAfterFence)) {
      this.sched.after(this.rng.uniform(this.s.timeoutMs, 3 * this.s.timeoutMs), () => {
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
        if (node.monitor?.leaving) this.sched.after(this.s.cycleMs, attempt);
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
        this.trace('adm', `hactl: ${f.text.trim().split('\n').join(' | ')}`);
        this.store.put('hactl', f.text);
        this.wants = this.parseWants(f.text);
        return;
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
    const s = this.s;
    const c = s.cycleMs;
    const lag = s.visibilityLagMs;
    let fenceWait = 0;
    if (s.fence.command) {
      for (const n of this.nodes.values()) fenceWait = Math.max(fenceWait, n.monitor?.fenceWaitMs() ?? 0);
      fenceWait += s.fence.delayBaseMs + s.fence.delayMaxMs + s.fence.priorityDelayMs + s.fence.timeoutMs + 300;
    }
    const maxTest = Math.max(0, ...s.groups.map((g) => g.testMs[1]));
    const maxSetup = Math.max(0, ...s.groups.map((g) => g.setupMs[1]));
    // Eligibility is only found out by testing: one probe round per node whose test fails.
    const failing = Math.max(0, ...s.groups.map((g) => [...g.pass.values()].filter((ok) => !ok).length));
    const probes = 2 * failing * (2 * c + 2 * lag + maxTest + 3 * c);
    const local = s.timeoutMs + fenceWait + (2 * c + lag + 200) + (2 * c + lag) + s.failCooldownCycles * c + 40 * c + (2 * c + 2 * lag) + maxTest + maxSetup + 2 * s.timings.killAfterMs + 4 * lag + probes;
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
      this.sched.after(this.s.cycleMs / 2, tick);
    };
    this.sched.after(this.s.cycleMs / 2, tick);
  }

  private liveMonitors(): SimMonitor[] {
    const out: SimMonitor[] = [];
    for (const n of this.nodes.values()) if (n.status === 'up' && n.monitor && n.monitor.running && !n.monitor.leaving) out.push(n.monitor);
    return out;
  }

  private quorumExpected(): boolean {
    const q = this.s.quorum;
    const live = this.liveMonitors();
    if (q.policy === 'none' && !q.waitForAll) return true;
    if (q.policy === 'majority' && !q.waitForAll) return live.length * 2 > (q.expected ?? this.nodes.size);
    return live.length > 0 && live.every((m) => m.lastQuorumOk === true);
  }

  /** Why the cluster is not (yet) where it must end up, or null when it is. */
  private unconverged(): string | null {
    const live = [...this.nodes.values()].filter((n) => n.status === 'up' && n.monitor?.running && !n.monitor.leaving);
    const inst = new Map(live.map((n) => [n.name, n.monitor!.localInstances()]));
    for (const g of this.groups.values()) {
      const owners = this.ownersOf(g.name);
      const want = this.wants.get(g.name);
      const wanted = !!want && want.level !== 'stop';
      const eligible = wanted ? live.filter((n) => (!want.nodes || want.nodes.includes(n.name)) && g.pass.get(n.name)) : [];
      if (eligible.length === 0) {
        if (owners.size > 0) return `${g.name} is ${wanted ? 'wanted but has no eligible node' : 'not wanted'} and still runs on ${[...owners.keys()].join(',')}`;
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
    const s = this.s;
    const settleAfter = (s.timeoutMs + 4 * s.cycleMs) / this.minRate();
    const stable = (s.timeoutMs + 4 * s.cycleMs) / this.minRate();
    if (now < this.lastDisruption + settleAfter) return;
    const expected = this.quorumExpected();
    this.progressMode = expected ? 'progress' : 'no quorum';
    const why = expected ? this.unconverged() : null;
    if (why === null) {
      if (this.convergedSince === null) this.convergedSince = now;
      if (now - this.convergedSince >= stable) {
        this.convergeMs = expected ? this.convergedSince - this.lastDisruption : null;
        this.done = true;
      }
      return;
    }
    this.convergedSince = null;
    if (now >= this.deadline) this.fail('progress', `${(now - this.lastDisruption).toFixed(0)} ms after the last fault healed (bound ${this.boundMs.toFixed(0)} ms): ${why}`);
  }
}
