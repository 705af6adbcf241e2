// One simulated `peerha monitor`: the control flow of src/monitor/monitor.ts (start, cycle, publish,
// fences, leave) step for step, with every decision taken by the real pure functions (decide,
// quorum, observe/liveness, fenceTargets, and the view pieces of src/monitor/view.ts, through
// SimLogic) and the real group engine (src/init/engine.ts) driving scripted processes. Each `await`
// of the real loop is a store operation here whose completion is an event in virtual time; a
// frozen monitor gets its events only when it thaws.

import { formatClstat, parseClstat, type FencedLine } from '../config/clstat.js';
import { parseHactl, type Hactl } from '../config/hactl.js';
import type { LivenessView, PeerMemory, PeerObservation } from '../cluster/liveness.js';
import { FRESH_QUORUM, type QuorumMemory } from '../cluster/quorum.js';
import { Engine, type Clock } from '../init/engine.js';
import type { ProcessHandle, Runner } from '../init/runner.js';
import { EMPTY_MEMORY, isActive, type DecideMemory, type Instance, type NodeView } from '../monitor/decide.js';
import { fenceDelayMs, retryDelayMs, type FenceIncident } from '../monitor/fencing.js';
import { absorbPeerRead, dueTimes, EVENT_CYCLE_GAP_MS, MAX_EVENT_CYCLES, fencePeers, freshHandovers, minCycleGapMs, nextCycleDelayMs, testSettled, handoverTtlMs, liveCount, nodeViews, readComplete, readPeerClstat, successors, type FencedBy, type HandoverRecord, type PeerRead } from '../monitor/view.js';
import type { Version } from './store.js';
import type { SimNode, World } from './world.js';

const UNREAD: PeerRead = readPeerClstat(null);
const NOOP_LOGGER = { info: (): void => undefined, warn: (): void => undefined, error: (): void => undefined };

export interface Handle {
  cancelled: boolean;
}

interface PublishRequest {
  readonly left: boolean;
  readonly heirs: Array<{ group: string; node: string }>;
  readonly done?: () => void;
}

export class SimMonitor {
  readonly inc: number;
  readonly engine: Engine;
  private peers = new Map<string, PeerMemory>();
  readonly lastGroups = new Map<string, Map<string, Instance>>();
  readonly handovers = new Map<string, HandoverRecord>();
  private readonly startedAt: number;
  private lastView: Map<string, NodeView> = new Map();
  private decideMemory: DecideMemory = EMPTY_MEMORY;
  private quorumMemory: QuorumMemory = FRESH_QUORUM;
  readonly incidents = new Map<string, FenceIncident>();
  /** Nodes this monitor fenced (published as `# fenced` lines), peers' claims, and the result. */
  private readonly fenced = new Map<string, FencedLine>();
  readonly fenceClaims = new Map<string, readonly FencedLine[]>();
  private fencedNow = new Map<string, FencedBy>();
  private lastLive: ReadonlyMap<string, LivenessView> = new Map();
  private hactl: Hactl | null = null;
  private hactlText: string | null = null;
  private seq = 0;
  private lastCycleEnd: number;
  private lastPublishOk: number;
  lastPet: number;
  stopped = false;
  leaving = false;
  private finishing = false;
  private heirs: Array<{ group: string; node: string }> = [];
  private leaveCap: Handle | null = null;
  private readonly pubQueue: PublishRequest[] = [];
  private pubBusy = false;
  private cycleTimer: Handle | null = null;
  private timerAt = 0;
  private inCycle = false;
  private cycleAgain = false;
  private eventCycles = 0;
  /** Started cycling (past the start-up checks). */
  running = false;
  /** This monitor's last quorum verdict (null before its first cycle). */
  lastQuorumOk: boolean | null = null;
  private lastTraced = new Map<string, string>();

  constructor(
    private readonly world: World,
    private readonly node: SimNode,
  ) {
    this.inc = node.inc;
    const now = node.local();
    this.startedAt = now;
    this.lastCycleEnd = now;
    this.lastPublishOk = now;
    this.lastPet = now;
    const clock: Clock = {
      now: () => node.local(),
      setTimer: (ms, fn) => node.post(ms, fn),
      clearTimer: (h) => {
        (h as Handle).cancelled = true;
      },
    };
    const L = world.logic;
    const guarded: Runner = {
      spawn: (req, cb): ProcessHandle => {
        if (L.spawnRefused(node.local(), this.lastPet, world.s.timeoutMs, this.stopped)) {
          node.post(0, () => {
            cb.onExit(126, null);
            cb.onGone();
          });
          return { pgid: 0, signal: () => undefined, sweep: () => undefined };
        }
        return world.spawn(node, this.inc, req, cb);
      },
    };
    this.engine = new Engine({ runner: guarded, clock, random: () => node.rng.next(), timings: world.s.timings, logger: NOOP_LOGGER, onChange: () => this.onEngineChange(), env: {} });
    this.engine.setConfig(world.cltab);
  }

  private get L() {
    return this.world.logic;
  }

  private get me(): string {
    return this.node.name;
  }

  /** Run `fn` as this monitor's continuation of a store operation (dropped if it died, held while frozen). */
  private cont(fn: () => void): () => void {
    return () => this.node.deliver(this.inc, fn);
  }

  // ---------------------------------------------------------------------------- start

  /** start(): kill what a previous run left, create our folder, refuse a duplicate id, start the watchdog. */
  start(): void {
    const w = this.world;
    this.node.killAll('leftovers of a previous run');
    w.store.op(this.me, (ok) =>
      this.cont(() => {
        if (!ok) return this.node.monitorExited(1, 'cannot create its folder');
        w.store.mkdir(this.me);
        w.store.op(this.me, (ok1) =>
          this.cont(() => {
            const first = ok1 ? w.store.read(this.me, `${this.me}/clstat`, true) : null;
            const h1 = first ? parseClstat(first.text).header : null;
            if (!h1 || h1.left) return this.begin();
            this.node.post(2 * w.s.cycleMs + w.s.visibilityLagMs + 200, () =>
              w.store.op(this.me, (ok2) =>
                this.cont(() => {
                  const again = ok2 ? w.store.read(this.me, `${this.me}/clstat`, true) : null;
                  const h2 = again ? parseClstat(again.text).header : null;
                  if (h2 && h2.seq !== h1.seq && !h2.left) return this.node.monitorExited(1, 'duplicate node id (its clstat changed)');
                  this.begin();
                })(),
              ),
            );
          })(),
        );
      })(),
    );
  }

  private begin(): void {
    this.running = true;
    this.lastCycleEnd = this.lastPublishOk = this.node.local(); // as Monitor.start: the checks are no freeze
    if (this.world.s.selfFence) this.node.watchdogStart();
    this.pet();
    this.world.trace(this.me, 'monitor starting');
    this.schedule(0);
  }

  private pet(): void {
    this.lastPet = this.node.local();
    this.node.watchdogPet();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.cycleTimer) this.cycleTimer.cancelled = true;
    this.timerAt = this.node.local() + ms;
    this.cycleTimer = this.node.post(ms, () => {
      this.cycleTimer = null;
      this.inCycle = true;
      this.cycleAgain = false;
      this.cycle();
    });
  }

  /** As Monitor.runCycle: the next cycle after the period, or as soon as something falls due. */
  private cycleDone(): void {
    const s = this.world.s;
    this.inCycle = false;
    const gap = minCycleGapMs(s.cycleMs);
    const again = this.cycleAgain && this.eventCycles < MAX_EVENT_CYCLES;
    this.eventCycles = again ? this.eventCycles + 1 : 0;
    if (again) this.schedule(EVENT_CYCLE_GAP_MS);
    else this.schedule(nextCycleDelayMs(this.node.local(), s.cycleMs * (0.9 + 0.2 * this.node.rng.next()), gap, dueTimes(this.peers, s.timeoutMs, this.decideMemory, this.L.decideConfig(s))));
  }

  /** As Monitor.cycleSoon: a local test finished. */
  private cycleSoon(): void {
    if (this.stopped || !this.running) return;
    if (this.inCycle) {
      this.cycleAgain = true;
      return;
    }
    const now = this.node.local();
    const wait = Math.max(0, this.lastCycleEnd + EVENT_CYCLE_GAP_MS - now);
    if (this.cycleTimer && now + wait < this.timerAt) this.schedule(wait);
  }

  // ---------------------------------------------------------------------------- cycle

  private cycle(): void {
    const w = this.world;
    const s = w.s;
    const now = this.node.local();
    const fence = this.L.selfFenceState({ now, lastCycleEnd: this.lastCycleEnd, lastPet: this.lastPet, lastPublishOk: this.lastPublishOk, timeoutMs: s.timeoutMs });
    const selfFence = fence.selfFence;
    if (selfFence) w.trace(this.me, fence.frozen ? 'was frozen: self-fencing (stop local groups, rejoin)' : 'cannot publish clstat: self-fencing');
    // readHalt + listNodes
    w.store.op(this.me, (ok0) =>
      this.cont(() => {
        const names = ok0 ? w.store.listNodes() : [];
        // every peer's clstat, in parallel
        w.store.op(this.me, (ok1) =>
          this.cont(() => {
            const seen = new Map<string, PeerObservation>();
            for (const n of names) {
              if (n === this.me) continue;
              const read = ok1 ? w.store.read(this.me, `${n}/clstat`, true) : null;
              const r = read ? this.parse(read.text, read.version) : UNREAD;
              seen.set(n, r.obs);
              absorbPeerRead(this, n, r, now);
            }
            this.peers = this.L.observe(this.peers, seen, now);
            const listed = new Set(names);
            for (const n of this.peers.keys()) if (!listed.has(n) && this.peers.get(n)?.seq === null) this.peers.delete(n);
            const live = this.L.liveness(this.peers, now, s.timeoutMs);
            this.lastLive = live;
            for (const n of this.fenceClaims.keys()) if (!this.peers.has(n)) this.fenceClaims.delete(n);
            const seqOf = (n: string): number | null => this.peers.get(n)?.seq ?? null;
            for (const [n, f] of this.fenced) if (seqOf(n) !== f.seq) this.fenced.delete(n);
            this.fencedNow = this.L.fencedPeers(this.me, [...this.fenced.values()], this.fenceClaims, seqOf);
            // replicate: the hactl (cltab is fixed in the simulator)
            w.store.op(this.me, (ok2) => this.cont(() => this.decideAndPublish(now, selfFence, live, seen, ok2))());
          })(),
        );
      })(),
    );
  }

  private parse(text: string, version: Version | null): PeerRead {
    if (!version) return readPeerClstat(text);
    if (!version.cache) version.cache = readPeerClstat(text);
    return version.cache as PeerRead;
  }

  private decideAndPublish(now: number, selfFence: boolean, live: Map<string, LivenessView>, seen: Map<string, PeerObservation>, ok: boolean): void {
    const w = this.world;
    const s = w.s;
    const L = this.L;
    const hactlRead = ok ? w.store.read(this.me, 'hactl', false) : null;
    if (hactlRead && hactlRead.text !== this.hactlText) {
      const r = parseHactl(hactlRead.text, 'DIR/hactl');
      if (r.ok) {
        this.hactl = r.hactl;
        this.hactlText = hactlRead.text;
      }
    }
    const mine = this.localInstances();
    const isFenced = (n: string): boolean => this.fencedNow.has(n);
    const nodes = nodeViews(this.me, mine, live, this.lastGroups, isFenced, s.selfFence, { isReleased: L.isReleased });
    const q = L.quorum(liveCount(live, isFenced), s.quorum, this.quorumMemory);
    this.quorumMemory = q.memory;
    if (q.ok !== this.lastQuorumOk) w.trace(this.me, `quorum ${q.ok ? 'ok' : 'LOST'}: ${q.reason}`);
    this.lastQuorumOk = q.ok;
    const effective = q.ok && !selfFence && !this.leaving;
    const decision = L.decide(
      {
        me: this.me,
        nodes,
        wants: this.hactl?.wants ?? new Map(),
        cltabGroups: w.cltabGroups,
        configVersion: `cltab:${this.hactlText ?? ''}`,
        quorum: effective,
        memory: this.decideMemory,
        settling: L.isSettling(now, this.startedAt, s.cycleMs, s.visibilityLagMs),
        handovers: this.freshHandovers(now),
        complete: readComplete(live, seen, isFenced),
      },
      L.decideConfig(s),
      now,
      () => this.node.rng.next(),
    );
    this.decideMemory = decision.memory;
    this.lastView = nodes;
    w.quorumVerdict(this.node, effective, q.ok ? (selfFence ? 'self-fencing' : 'leaving') : `no quorum (${q.reason})`);
    if (!this.leaving) {
      for (const a of decision.actions) {
        w.trace(this.me, `decide: ${a.group} → ${a.level} (${a.reason})`);
        if (this.engine.tell(a.group, a.level).ok && a.level === 'plan') this.cycleAgain = true;
      }
    }
    if (!this.leaving && !selfFence) this.runFences(live, nodes, now);
    this.publish(false, [], () =>
      // hastat
      w.store.op(this.me, () =>
        this.cont(() => {
          this.lastCycleEnd = this.node.local();
          const petting = L.petAfterCycle({ selfFence, cycleEnd: this.lastCycleEnd, now: this.node.local(), lastPet: this.lastPet, lastPublishOk: this.lastPublishOk, timeoutMs: s.timeoutMs });
          if (petting === 'frozen-during-cycle') w.trace(this.me, 'frozen during a cycle: not petting the watchdog');
          if (petting === 'pet') this.pet();
          this.cycleDone();
        })(),
      ),
    );
  }

  private freshHandovers(now: number): Map<string, string> {
    const s = this.world.s;
    const { map, expired } = freshHandovers(this.handovers, now, handoverTtlMs(s.timeoutMs, s.cycleMs, s.visibilityLagMs));
    for (const n of expired) this.handovers.delete(n);
    return map;
  }

  localInstances(): Map<string, Instance> {
    const m = new Map<string, Instance>();
    for (const g of this.engine.status()) if (g.level !== null) m.set(g.group, { level: g.level, state: g.state });
    return m;
  }

  // ---------------------------------------------------------------------------- publish

  private onEngineChange(): void {
    if (testSettled(this.localInstances())) this.cycleSoon();
    if (this.world.tracing) {
      for (const [g, i] of this.localInstances()) {
        const line = `${i.level} ${i.state}`;
        if (this.lastTraced.get(g) !== line) this.world.trace(this.me, `engine: ${g} ${line}`);
        this.lastTraced.set(g, line);
      }
    }
    if (this.leaving && !this.finishing && this.halted()) this.node.post(0, () => this.finishLeave());
    this.publishSoon();
  }

  private publishSoon(): void {
    if (this.stopped) return;
    this.publish(false, []);
  }

  /** Serialized clstat writes; each is formatted when its turn comes (as the real promise chain does). */
  private publish(left: boolean, heirs: Array<{ group: string; node: string }>, done?: () => void): void {
    this.pubQueue.push({ left, heirs, ...(done ? { done } : {}) });
    if (!this.pubBusy) {
      this.pubBusy = true;
      this.node.post(0, () => this.nextPublish());
    }
  }

  private nextPublish(): void {
    const req = this.pubQueue.shift();
    if (!req) {
      this.pubBusy = false;
      return;
    }
    const w = this.world;
    const s = w.s;
    const fenced = this.L.publishFenced(req.left, s.selfFence, this.node.local(), this.lastPet, s.timeoutMs);
    if (fenced) this.node.killAll('self-fence: killing recorded process groups before publishing');
    const lines = req.left || fenced ? [] : [...this.localInstances()].map(([group, i]) => ({ group, level: i.level, state: i.state }));
    const text = formatClstat({
      header: { node: this.me, pid: this.inc, seq: ++this.seq, time: new Date(w.sched.now + this.node.clock.wallOffsetMs).toISOString(), left: req.left },
      groups: lines,
      handovers: req.left ? req.heirs : [],
      fenced: [...this.fenced.values()],
    });
    const key = `${this.me}/clstat`;
    w.store.op(this.me, (ok) => {
      if (ok) w.store.put(key, text);
      this.cont(() => {
        if (ok) this.lastPublishOk = this.node.local();
        req.done?.();
        this.nextPublish();
      })();
    });
  }

  // ---------------------------------------------------------------------------- fences

  /** As FenceIncidents.tick/run in the monitor: race delays before a first attempt, capped backoff after a failure. */
  private runFences(live: Map<string, LivenessView>, nodes: ReadonlyMap<string, NodeView>, now: number): void {
    const w = this.world;
    const f = w.s.fence;
    if (!f.command) return;
    const peers = fencePeers(this.me, this.seq, live, (n) => this.fencedNow.has(n));
    const { targets } = this.L.fenceTargets(this.me, peers, this.incidents, now);
    const load = (n: string): number => [...(nodes.get(n)?.groups.values() ?? [])].filter(isActive).length;
    for (const target of targets) {
      const seq = live.get(target)?.seq ?? null;
      const prev = this.incidents.get(target);
      const attempts = prev && prev.seq === seq ? prev.attempts + 1 : 1;
      this.incidents.set(target, { seq, attempts, nextTry: Number.POSITIVE_INFINITY, done: false });
      const delay = attempts === 1 ? fenceDelayMs(f, this.node.rng.next(), load(this.me), load(target)) : 0;
      w.trace(this.me, `STOMITH: fencing ${target} (attempt ${attempts}, after ${delay} ms)`);
      this.node.post(delay, () => {
        const v = this.lastLive.get(target);
        if (v?.state !== 'stale' || v.seq !== seq || this.fencedNow.has(target)) {
          this.incidents.delete(target);
          return w.trace(this.me, `STOMITH: ${target} heartbeats again; not fencing it`);
        }
        w.runFence(this.node, target, (result) =>
          this.cont(() => {
            const ok = result === 'success';
            this.incidents.set(target, { seq, attempts, nextTry: this.node.local() + retryDelayMs(attempts, w.s.cycleMs, f.retryMaxMs), done: ok });
            if (ok) this.fenced.set(target, { node: target, seq, time: new Date(w.sched.now + this.node.clock.wallOffsetMs).toISOString(), method: 'command' });
            w.trace(this.me, `STOMITH ${target}: ${result}`);
          })(),
        );
      });
    }
  }

  // ---------------------------------------------------------------------------- leave

  private halted(): boolean {
    return this.engine.status().every((g) => g.procs.every((p) => p.state === 'CONFIGURED')) && !this.node.hasLiveProcs();
  }

  /** SIGTERM: stop local groups (capped), publish the left marker with heirs, exit. */
  leave(): void {
    if (this.leaving) return;
    this.leaving = true;
    this.heirs = successors(this.me, this.lastView, this.localInstances(), this.hactl?.wants ?? new Map());
    this.world.trace(this.me, `leaving${this.heirs.length ? `; heirs ${this.heirs.map((h) => `${h.group}→${h.node}`).join(' ')}` : ''}`);
    void this.engine.haltAll();
    const t = this.engine.timings;
    this.leaveCap = this.node.post(t.killAfterMs + 3 * t.killRepeatMs, () => this.finishLeave());
    if (this.halted()) this.node.post(0, () => this.finishLeave());
  }

  private finishLeave(): void {
    if (this.finishing) return;
    this.finishing = true;
    if (this.leaveCap) this.leaveCap.cancelled = true;
    this.stopped = true;
    if (this.cycleTimer) this.cycleTimer.cancelled = true;
    this.publish(true, this.heirs, () => {
      this.node.watchdogBye();
      this.world.trace(this.me, 'left the cluster');
      this.node.monitorExited(0, 'left');
    });
  }

  /** Incidents still waiting: the longest time until a fence will be tried again (local ms). */
  fenceWaitMs(): number {
    const now = this.node.local();
    let max = 0;
    for (const inc of this.incidents.values()) {
      if (inc.done) continue;
      max = Math.max(max, Number.isFinite(inc.nextTry) ? inc.nextTry - now : this.world.s.fence.timeoutMs);
    }
    return max;
  }
}
