// `peerha monitor`: one cycle = scan → observe → replicate → view → quorum → decide → apply →
// publish → pet the watchdog. All decisions come from pure functions (liveness, quorum,
// decide, fenceTargets); this file only gathers inputs and carries out outputs.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatClstat, parseClstat, type ClstatLine, type FencedLine } from '../config/clstat.js';
import { formatError, parseCltab, type Cltab } from '../config/cltab.js';
import { parseHactl, type Hactl } from '../config/hactl.js';
import { liveness, observe, type LivenessView, type PeerMemory, type PeerObservation } from '../cluster/liveness.js';
import { FRESH_QUORUM, quorum, type QuorumConfig, type QuorumMemory, type QuorumResult } from '../cluster/quorum.js';
import { contentHash, pickNewest, type Judged } from '../cluster/replicate.js';
import { FsStore, signatureOf, type FileRead, type FileSignature } from '../cluster/store.js';
import type { Logger } from '../io/log.js';
import { Engine } from '../init/engine.js';
import type { Timings } from '../init/machines.js';
import { killGroups, PgidRecord } from '../init/pgid-record.js';
import { RealRunner, type Runner } from '../init/runner.js';
import { decide, EMPTY_MEMORY, isActive, type DecideMemory, type Instance, type NodeView } from './decide.js';
import type { FenceRecord } from '../fence/fencer.js';
import { FenceIncidents } from './fence-incidents.js';
import type { MonitorConfig } from './config.js';
import {
  absorbPeerRead,
  decideConfig,
  dueTimes,
  fencedPeers,
  fencePeers,
  freshHandovers,
  handoverTtlMs,
  isSettling,
  liveCount as countLive,
  EVENT_CYCLE_GAP_MS,
  MAX_EVENT_CYCLES,
  minCycleGapMs,
  nextCycleDelayMs,
  nodeViews,
  petAfterCycle,
  planWindowMs,
  publishFenced,
  readComplete,
  readPeerClstat,
  selfFenceState,
  spawnRefused,
  successors,
  testSettled,
  type FencedBy,
  type HandoverRecord,
} from './view.js';

export interface MonitorSettings extends Omit<MonitorConfig, 'logLevel' | 'configFile' | 'quorum'> {
  readonly quorum: QuorumConfig;
  readonly timings?: Partial<Timings>;
  /** Wall-clock offset for skew tests; liveness never uses the wall clock. */
  readonly clockOffsetMs?: number;
}

export const HASTAT_VERSION = 1;

export interface HastatGroup {
  want: string | null;
  nodes?: readonly string[] | null;
  instances: Record<string, { level: string; state: string }>;
  notes?: string[];
  /** Times this node saw the group move from one running node to another. */
  failovers?: number;
  /** Only for a group this node runs: its entries and recent transitions here. */
  local?: {
    entries: Array<{ tag: string; mode: string; state: string; note: string | null }>;
    transitions: ReadonlyArray<{ at: string; level: string | null; state: string }>;
  };
}

/** The last fence of a node as a hastat shows it: this node's own attempt, or a fencer's `# fenced` line. */
export type HastatFence = Pick<FenceRecord, 'time' | 'fencer' | 'node' | 'result'> & Partial<Pick<FenceRecord, 'method' | 'action' | 'incident' | 'durationMs' | 'detail'>>;

export interface Hastat {
  version: number;
  node: string;
  time: string;
  quorum: { ok: boolean; live: number; expected: number | null; policy: string; reason: string };
  detection: string;
  nodes: Record<string, { state: string; seq: number | null; lastChange: string | null; fencedBy?: string; lastFence?: HastatFence }>;
  groups: Record<string, HastatGroup>;
  errors: string[];
}

interface Replica {
  winner: Judged | null;
  errors: string[];
}

const wall = (offset: number): Date => new Date(Date.now() + offset);

/** The self-fence watchdog (bin/peerha-watchdog): `pet` lines on its stdin, `bye` to let it go. */
const WATCHDOG = fileURLToPath(new URL('../../bin/peerha-watchdog', import.meta.url));

function tellWatchdog(wd: ChildProcess | null, line: 'pet' | 'bye'): void {
  if (wd?.stdin && !wd.stdin.destroyed) wd.stdin.write(`${line}\n`);
}

/** Per-cycle read cache for files that rarely change (cltab/hactl): re-read only on stat change. */
class Replicas {
  private readonly cache = new Map<string, { mtimeMs: number; judged: Judged }>();
  /** Per source: the signature of the copy last read, since when it has been seen, and its verdict. */
  private readonly seen = new Map<string, { sig: FileSignature; since: number; judged: Judged | null }>();

  /**
   * The verdict on an unchanged copy, without reading it again: only once its signature has stood
   * for `settleMs` (a stat of a copy replaced within the mtime's granularity, one second over SFTP,
   * with the same size and inode number, would look unchanged: read in full until then).
   */
  unchanged(source: string, sig: FileSignature | null, now: number, settleMs: number): Judged | null | undefined {
    const s = this.seen.get(source);
    if (!sig || !s || s.sig.mtimeMs !== sig.mtimeMs || s.sig.size !== sig.size || s.sig.ino !== sig.ino) {
      this.seen.set(source, { sig: sig ?? { mtimeMs: -1, size: -1, ino: -1 }, since: now, judged: null });
      return undefined;
    }
    if (now - s.since < settleMs || !s.judged) return undefined;
    return s.judged;
  }

  remember(source: string, judged: Judged | null): void {
    const s = this.seen.get(source);
    if (s) s.judged = judged;
  }

  judge(source: string, read: FileRead | null, parse: (text: string, file: string) => string[]): Judged | null {
    if (!read) {
      this.cache.delete(source);
      return null;
    }
    const hit = this.cache.get(source);
    const hash = contentHash(read.text);
    if (hit && hit.judged.hash === hash && hit.mtimeMs === read.mtimeMs) return hit.judged;
    const judged: Judged = { source, text: read.text, mtimeMs: read.mtimeMs, hash, errors: parse(read.text, source) };
    this.cache.set(source, { mtimeMs: read.mtimeMs, judged });
    return judged;
  }
}

export class Monitor {
  private readonly store: FsStore;
  private readonly engine: Engine;
  private readonly record: PgidRecord;
  private readonly replicas = new Replicas();
  private peers = new Map<string, PeerMemory>();
  readonly lastGroups = new Map<string, Map<string, Instance>>();
  /** Handovers published by nodes that left: node → (group → heir), and when we first saw them. */
  readonly handovers = new Map<string, HandoverRecord>();
  private startedAt = performance.now();
  private lastView: Map<string, NodeView> = new Map();
  private fenceLines: string[] | null = null;
  private fenceLogWrites: Promise<void> = Promise.resolve();
  /** Group → the node last seen running it settled, and how often that changed. */
  private owners = new Map<string, { node: string; failovers: number }>();
  /** Called once the monitor left on its own (cluster halt), so the process can exit. */
  onLeft: (() => void) | null = null;
  private decideMemory: DecideMemory = EMPTY_MEMORY;
  private quorumMemory: QuorumMemory = FRESH_QUORUM;
  private readonly fencing: FenceIncidents;
  /** Peer → the nodes its clstat says it fenced. */
  readonly fenceClaims = new Map<string, readonly FencedLine[]>();
  /** The peers that count as fenced this cycle (fencedPeers). */
  private fencedNow = new Map<string, FencedBy>();
  /** Liveness as of the last cycle. */
  private lastLive: ReadonlyMap<string, LivenessView> = new Map();
  private cltab: Cltab | null = null;
  private cltabHash = '';
  private hactl: Hactl | null = null;
  private hactlHash = '';
  private seq = 0;
  private lastCycleEnd = performance.now();
  private lastPublishOk = performance.now();
  private lastPet = performance.now();
  private refusedSpawn = false;
  private watchdog: ChildProcess | null = null;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  private inCycle = false;
  private cycleAgain = false;
  private eventCycles = 0;
  private started = false;
  private leaving: Promise<void> | null = null;
  private stopped = false;
  private publishing: Promise<void> = Promise.resolve();
  private loggedNotes = new Map<string, string>();
  private lastErrors = '';
  lastHastat: Hastat | null = null;

  constructor(
    private s: MonitorSettings,
    private readonly log: Logger,
    runner?: Runner,
  ) {
    this.store = new FsStore(s.root, s.node);
    this.record = new PgidRecord(join(s.stateDir, `${s.node}.pgids`));
    const real =
      runner ??
      new RealRunner({
        onGroupsChanged: (live) => {
          try {
            this.record.save(live);
          } catch (e) {
            log.error({ err: String(e) }, 'cannot write the process-group record');
          }
        },
      });
    // Never start anything while the watchdog may be about to (or did) self-fence us.
    const guarded: Runner = {
      spawn: (req, cb) => {
        if (spawnRefused(performance.now(), this.lastPet, this.s.timeoutMs, this.stopped)) {
          if (!this.refusedSpawn) log.warn({ command: req.command }, 'not starting processes: this node is self-fencing');
          this.refusedSpawn = true;
          setImmediate(() => {
            cb.onExit(126, null);
            cb.onGone();
          });
          return { pgid: 0, signal: () => undefined, sweep: () => undefined };
        }
        return real.spawn(req, cb);
      },
    };
    this.engine = new Engine({ runner: guarded, logger: log, timings: s.timings, onChange: () => {
        this.publishSoon();
        if (testSettled(this.localInstances())) this.cycleSoon();
      },
    });
    this.fencing = new FenceIncidents({
      me: s.node,
      cycleMs: () => this.s.cycleMs,
      config: () => this.s.fence,
      wallNow: () => wall(this.s.clockOffsetMs ?? 0),
      random: Math.random,
      confirmedAt: (node) => this.confirmedAt(node),
      record: (rec) => void this.appendFenceLog(rec),
      stillStale: (node, seq) => {
        const v = this.lastLive.get(node);
        return v?.state === 'stale' && v.seq === seq && !this.fencedNow.has(node);
      },
      log,
    });
  }

  /** `peerha fence confirm NODE` writes DIR/fence-confirm/NODE: when the operator confirmed (wall ms). */
  private async confirmedAt(node: string): Promise<number | null> {
    const r = await this.store.readRootFile(join('fence-confirm', node));
    try {
      const t = Date.parse((JSON.parse(r?.text ?? '') as { time?: string }).time ?? '');
      return Number.isFinite(t) ? t : null;
    } catch {
      return null; // missing or torn: not confirmed (yet)
    }
  }

  /** A peer's fence state for hastat: who fenced it, and the last fence attempt known here. */
  private fenceStatus(n: string): { fencedBy?: string; lastFence?: HastatFence } {
    const by = this.fencedNow.get(n);
    const own = this.fencing.lastFence(n);
    const claimed: HastatFence | undefined = by ? { time: by.line.time, fencer: by.by, node: n, result: 'success', method: by.line.method } : undefined;
    const last = own && (!claimed || own.time >= claimed.time) ? own : claimed;
    return { ...(by ? { fencedBy: by.by } : {}), ...(last ? { lastFence: last } : {}) };
  }

  private ownFile(name: string): string {
    return join(this.store.nodeDir(this.s.node), name);
  }

  /** Start-up: lock, clean up a previous run, refuse duplicate node names, start the watchdog. */
  async start(): Promise<number> {
    mkdirSync(this.s.stateDir, { recursive: true });
    const lock = join(this.s.stateDir, `${this.s.node}.pid`);
    if (!this.takePidLock(lock)) {
      process.stderr.write(`peerha monitor: another monitor for node ${this.s.node} runs on this machine (${lock})\n`);
      return 1;
    }
    const leftovers = this.record.leftovers();
    if (leftovers.length > 0) {
      this.log.warn({ pgids: leftovers }, 'stopping process groups left behind by a previous run');
      const survivors = await killGroups(leftovers, 1000);
      if (survivors.length) this.log.error({ pgids: survivors }, 'process groups of a previous run survive SIGKILL');
    }
    this.record.remove();
    try {
      await this.store.ensureOwnDir();
    } catch (e) {
      process.stderr.write(`peerha monitor: cannot create ${this.store.nodeDir(this.s.node)}: ${String(e)}\n`);
      return 1;
    }
    if (await this.someoneElseIsMe()) {
      process.stderr.write(`peerha monitor: node name ${this.s.node} is already heartbeating in ${this.s.root} (duplicate node id)\n`);
      rmSync(lock, { force: true });
      return 1;
    }
    const halt = await this.readHalt();
    if (halt) {
      // The cluster was dissolved (`peerha halt`): do not join until the halt file is removed.
      this.log.warn({ halt }, `cluster halted (${join(this.s.root, 'halt')}); waiting for it to be removed before joining`);
      while (await this.readHalt()) {
        if (this.stopped) return 0;
        await new Promise((r) => setTimeout(r, this.s.cycleMs));
      }
      this.startedAt = performance.now();
    }
    // The start-up checks (the duplicate-id wait is 2 cycles + lag) are no freeze: time from here.
    this.lastCycleEnd = this.lastPublishOk = this.lastPet = performance.now();
    this.startWatchdog();
    this.log.info({ node: this.s.node, root: this.s.root, cycleMs: this.s.cycleMs, timeoutMs: this.s.timeoutMs, quorum: this.s.quorum }, 'peerha monitor starting');
    this.started = true;
    this.schedule(0);
    return 0;
  }

  private takePidLock(path: string): boolean {
    for (let i = 0; i < 2; i++) {
      try {
        const fd = openSync(path, 'wx', 0o600);
        writeFileSync(fd, `${process.pid}\n`);
        closeSync(fd);
        return true;
      } catch {
        const pid = Number(readFileSync(path, 'utf8').trim());
        let alive = false;
        try {
          if (pid > 0 && pid !== process.pid) {
            process.kill(pid, 0);
            alive = readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('monitor');
          }
        } catch {
          alive = false;
        }
        if (alive) return false;
        rmSync(path, { force: true });
      }
    }
    return false;
  }

  private async someoneElseIsMe(): Promise<boolean> {
    const first = await this.store.readNodeFile(this.s.node, 'clstat');
    if (!first) return false;
    const h1 = parseClstat(first.text).header;
    if (!h1 || h1.left) return false;
    const waitMs = 2 * this.s.cycleMs + this.s.visibilityLagMs + 200;
    await new Promise((r) => setTimeout(r, waitMs));
    const again = await this.store.readNodeFile(this.s.node, 'clstat');
    const h2 = again ? parseClstat(again.text).header : null;
    return !!h2 && h2.seq !== h1.seq && !h2.left;
  }

  private startWatchdog(): void {
    if (!this.s.selfFence) return;
    const wd = spawn(WATCHDOG, [this.record.path, String(Math.floor(this.s.timeoutMs / 2))], { stdio: ['pipe', 'inherit', 'inherit'] });
    wd.stdin?.on('error', () => undefined); // EPIPE once it is gone: the exit handler restarts it
    wd.on('exit', (code, signal) => {
      if (this.watchdog !== wd) return;
      this.watchdog = null;
      if (!this.stopped) {
        this.log.error({ code, signal }, 'watchdog exited; restarting it');
        this.startWatchdog();
      }
    });
    wd.on('error', () => undefined);
    this.watchdog = wd;
    this.pet();
  }

  private pet(): void {
    this.lastPet = performance.now();
    this.refusedSpawn = false;
    tellWatchdog(this.watchdog, 'pet');
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = performance.now() + ms;
    this.timer = setTimeout(() => void this.runCycle(), ms);
  }

  /** One cycle, then the next: after the period (with jitter), or as soon as something falls due. */
  private async runCycle(): Promise<void> {
    this.timer = null;
    this.inCycle = true;
    this.cycleAgain = false;
    let failed = false;
    try {
      await this.cycle();
    } catch (e) {
      failed = true;
      this.log.error({ err: String(e) }, 'cycle failed; retrying next cycle');
    }
    this.inCycle = false;
    const gap = minCycleGapMs(this.s.cycleMs);
    const again = this.cycleAgain && this.eventCycles < MAX_EVENT_CYCLES;
    this.eventCycles = again ? this.eventCycles + 1 : 0;
    if (failed) this.schedule(this.s.cycleMs);
    else if (again) this.schedule(EVENT_CYCLE_GAP_MS);
    else this.schedule(nextCycleDelayMs(performance.now(), this.s.cycleMs * (0.9 + 0.2 * Math.random()), gap, dueTimes(this.peers, this.s.timeoutMs, this.decideMemory, decideConfig(this.s))));
  }

  /** A local test finished: decide on it now rather than a cycle later. */
  private cycleSoon(): void {
    if (this.stopped || !this.started) return;
    if (this.inCycle) {
      this.cycleAgain = true;
      return;
    }
    const wait = Math.max(0, this.lastCycleEnd + EVENT_CYCLE_GAP_MS - performance.now());
    if (this.timer && performance.now() + wait < this.timerAt) this.schedule(wait);
  }

  /** One monitor cycle. */
  /** The cluster-wide halt request (`DIR/halt`), if any. */
  private async readHalt(): Promise<string | null> {
    const r = await this.store.readRootFile('halt');
    return r ? r.text.trim() || 'halt' : null;
  }

  async cycle(): Promise<void> {
    const halt = await this.readHalt();
    if (halt && !this.leaving) {
      this.log.warn({ halt }, 'cluster halt requested: stopping local groups and leaving');
      void this.leave('halt', false).then(() => this.onLeft?.());
      return;
    }
    const now = performance.now();
    const frozenMs = now - this.lastCycleEnd;
    // Also a freeze that hit the previous cycle after it began: that cycle did not pet (below),
    // so the watchdog may have fired; what the engine believes runs may be dead.
    const fence = selfFenceState({ now, lastCycleEnd: this.lastCycleEnd, lastPet: this.lastPet, lastPublishOk: this.lastPublishOk, timeoutMs: this.s.timeoutMs });
    const selfFence = fence.selfFence;
    if (fence.frozen) {
      this.log.warn({ frozenMs: Math.round(Math.max(frozenMs, now - this.lastPet)) }, 'this monitor was frozen: stopping local groups and rejoining');
    }

    // scan + observe
    const names = await this.store.listNodes();
    const seen = new Map<string, PeerObservation>();
    await Promise.all(
      names
        .filter((n) => n !== this.s.node)
        .map(async (n) => {
          const read = await this.store.readNodeFile(n, 'clstat');
          const r = readPeerClstat(read ? read.text : null);
          seen.set(n, r.obs);
          absorbPeerRead(this, n, r, now);
        }),
    );
    this.peers = observe(this.peers, seen, now);
    for (const n of this.peers.keys()) if (!names.includes(n) && this.peers.get(n)?.seq === null) this.peers.delete(n);
    const live = liveness(this.peers, now, this.s.timeoutMs);
    this.lastLive = live;
    for (const n of this.fenceClaims.keys()) if (!this.peers.has(n)) this.fenceClaims.delete(n);
    const seqOf = (n: string): number | null => this.peers.get(n)?.seq ?? null;
    this.fencing.forgetRestarted(seqOf);
    this.fencedNow = fencedPeers(this.s.node, this.fencing.fencedLines(), this.fenceClaims, seqOf);

    // replicate
    const cltabR = await this.replicate('cltab', names, (t, f) => {
      const r = parseCltab(t, f);
      return r.ok ? [] : r.errors.map(formatError);
    });
    const hactlR = await this.replicate('hactl', names, (t, f) => {
      const r = parseHactl(t, f);
      return r.ok ? [] : r.errors.map(formatError);
    });
    if (cltabR.winner && cltabR.winner.hash !== this.cltabHash) {
      const r = parseCltab(cltabR.winner.text, cltabR.winner.source);
      if (r.ok) {
        this.cltab = r.cltab;
        this.cltabHash = cltabR.winner.hash;
        this.engine.setConfig(r.cltab);
        this.log.info({ source: cltabR.winner.source, groups: r.cltab.groups }, 'cltab loaded');
      }
    }
    if (hactlR.winner && hactlR.winner.hash !== this.hactlHash) {
      const r = parseHactl(hactlR.winner.text, hactlR.winner.source);
      if (r.ok) {
        this.hactl = r.hactl;
        this.hactlHash = hactlR.winner.hash;
        this.log.info({ source: hactlR.winner.source, wants: [...r.hactl.wants.values()].map((w) => `${w.group} ${w.level}`) }, 'hactl loaded');
      }
    }

    // view
    const mine = this.localInstances();
    const isFenced = (n: string): boolean => this.fencedNow.has(n);
    const nodes = nodeViews(this.s.node, mine, live, this.lastGroups, isFenced, this.s.selfFence);
    const liveCount = countLive(live, isFenced);
    const q = quorum(liveCount, this.s.quorum, this.quorumMemory);
    if (q.ok !== (this.lastHastat?.quorum.ok ?? true) || !this.lastHastat) this.log[q.ok ? 'info' : 'warn']({ live: liveCount, reason: q.reason }, q.ok ? 'quorum' : 'quorum lost: stopping local groups');
    this.quorumMemory = q.memory;

    // decide + apply
    const decision = decide(
      {
        me: this.s.node,
        nodes,
        wants: this.hactl?.wants ?? new Map(),
        cltabGroups: new Set(this.cltab?.groups ?? []),
        configVersion: `${this.cltabHash}:${this.hactlHash}`,
        quorum: q.ok && !selfFence && !this.leaving,
        memory: this.decideMemory,
        settling: isSettling(now, this.startedAt, this.s.cycleMs, this.s.visibilityLagMs),
        handovers: this.freshHandovers(now),
        complete: readComplete(live, seen, isFenced),
      },
      decideConfig(this.s),
      now,
      Math.random,
    );
    this.decideMemory = decision.memory;
    this.lastView = nodes;
    if (!this.leaving) {
      for (const a of decision.actions) {
        const r = this.engine.tell(a.group, a.level);
        // A new plan's window starts at the next cycle (after this one published it): run it at once.
        if (r.ok && a.level === 'plan') this.cycleAgain = true;
        this.log[r.ok ? 'info' : 'warn']({ group: a.group, level: a.level, reason: a.reason, result: r.message }, `decide: ${a.group} → ${a.level}`);
      }
    }
    for (const n of decision.notes) {
      if (this.loggedNotes.get(n.group) !== n.note) this.log.debug({ group: n.group, note: n.note }, 'decide: no action');
      this.loggedNotes.set(n.group, n.note);
    }

    if (!this.leaving && !selfFence) {
      const load = (n: string): number => [...(nodes.get(n)?.groups.values() ?? [])].filter(isActive).length;
      this.fencing.tick(fencePeers(this.s.node, this.seq, live, isFenced), now, load);
    }

    // publish
    const errors = [...cltabR.errors, ...hactlR.errors, ...decision.errors];
    if (errors.join('\n') !== this.lastErrors) {
      if (errors.length) this.log.error({ errors }, 'configuration problems');
      this.lastErrors = errors.join('\n');
    }
    this.lastHastat = this.buildHastat(q, live, nodes, errors, decision.notes);
    await this.publish();
    try {
      await this.store.writeOwn('hastat', JSON.stringify(this.lastHastat, null, 1) + '\n');
    } catch (e) {
      this.log.warn({ err: String(e) }, 'cannot write hastat');
    }
    this.lastCycleEnd = performance.now();
    // Frozen (or stalled) after this cycle began: its view and decisions predate the gap, and the
    // watchdog may already have killed our groups. Petting now would hide the freeze from the next
    // cycle, which would then keep claiming (and respawn) groups a peer has taken over.
    const petting = petAfterCycle({ selfFence, cycleEnd: this.lastCycleEnd, now: performance.now(), lastPet: this.lastPet, lastPublishOk: this.lastPublishOk, timeoutMs: this.s.timeoutMs });
    if (petting === 'frozen-during-cycle') {
      this.log.warn({ sincePetMs: Math.round(this.lastCycleEnd - this.lastPet) }, 'frozen during a cycle: not petting the watchdog; the next cycle self-fences');
      return;
    }
    if (petting === 'pet') {
      this.pet();
      this.notifyReady();
    }
  }

  private readySent = false;

  /** Under systemd (Type=notify, NotifyAccess=all): ready once the first cycle published. */
  private notifyReady(): void {
    if (this.readySent || !process.env.NOTIFY_SOCKET) return;
    this.readySent = true;
    const child = spawn('systemd-notify', ['--ready', `--status=peerha monitor ${this.s.node} joined ${this.s.root}`, `--pid=${process.pid}`], { stdio: 'ignore' });
    child.on('error', (e) => this.log.warn({ err: String(e) }, 'systemd-notify failed; is systemd installed?'));
  }

  /** Handovers from nodes that left recently enough that the heir can still act on them. */
  private freshHandovers(now: number): Map<string, string> {
    const { map, expired } = freshHandovers(this.handovers, now, handoverTtlMs(this.s.timeoutMs, this.s.cycleMs, this.s.visibilityLagMs));
    for (const n of expired) this.handovers.delete(n);
    return map;
  }

  /**
   * For an orderly leave: who should take over each local group — the first live allowed node in
   * hactl order, else the least loaded live node, then the lowest name.
   */
  private successors(): Array<{ group: string; node: string }> {
    return successors(this.s.node, this.lastView, this.localInstances(), this.hactl?.wants ?? new Map());
  }

  private async replicate(file: 'cltab' | 'hactl', names: string[], parse: (text: string, file: string) => string[]): Promise<Replica> {
    // Every copy is stat'ed each cycle; only a changed (or recently changed) one is read again.
    const now = performance.now();
    const settleMs = 2000 + this.s.visibilityLagMs;
    const copy = async (path: string, read: () => Promise<FileRead | null>): Promise<Judged | null> => {
      const kept = this.replicas.unchanged(path, await signatureOf(path), now, settleMs);
      if (kept !== undefined) return kept;
      const j = this.replicas.judge(path, await read(), parse);
      this.replicas.remember(path, j);
      return j;
    };
    const reads = [copy(join(this.s.root, file), () => this.store.readRootFile(file, true))];
    for (const n of names) reads.push(copy(join(this.store.nodeDir(n), file), () => this.store.readNodeFile(n, file, true)));
    const judged = (await Promise.all(reads)).filter((j): j is Judged => j !== null);
    const winner = pickNewest(judged);
    const errors = judged.flatMap((j) => j.errors);
    const mineNow = judged.find((j) => j.source === this.ownFile(file));
    if (winner && (!mineNow || mineNow.hash !== winner.hash)) {
      try {
        await this.store.writeOwn(file, winner.text, winner.mtimeMs);
        this.log.info({ file, from: winner.source }, 'replicated');
      } catch (e) {
        this.log.warn({ file, err: String(e) }, 'replication failed; retrying next cycle');
      }
    }
    return { winner, errors };
  }

  private localInstances(): Map<string, Instance> {
    const m = new Map<string, Instance>();
    for (const g of this.engine.status()) if (g.level !== null) m.set(g.group, { level: g.level, state: g.state });
    return m;
  }

  private clstatLines(): ClstatLine[] {
    return [...this.localInstances()].map(([group, i]) => ({ group, level: i.level, state: i.state }));
  }

  private publishSoon(): void {
    if (this.stopped) return;
    void this.publish();
  }

  /** Write clstat (serialized). Tracks the last success for the publish-failure self-fence. */
  private publish(left = false, handovers: Array<{ group: string; node: string }> = []): Promise<void> {
    this.publishing = this.publishing.then(async () => {
      // Self-fenced (the watchdog may have fired; e.g. just thawed from SIGSTOP): the engine's view
      // is stale, and peers may already run our groups. Make sure they are dead, as the watchdog
      // would, and do not claim them: a fresh seq with old claims would beat a peer's healthy
      // instance in conflict resolution.
      const fenced = publishFenced(left, this.s.selfFence, performance.now(), this.lastPet, this.s.timeoutMs);
      if (fenced) this.killRecordedGroups();
      const text = formatClstat({
        header: { node: this.s.node, pid: process.pid, seq: ++this.seq, time: wall(this.s.clockOffsetMs ?? 0).toISOString(), left },
        groups: left || fenced ? [] : this.clstatLines(),
        notes: this.engine.status().flatMap((g) => g.notes.map((text) => ({ group: g.group, text }))),
        handovers: left ? handovers : [],
        fenced: this.fencing.fencedLines(),
      });
      try {
        await this.store.writeOwn('clstat', text);
        this.lastPublishOk = performance.now();
      } catch (e) {
        this.log.error({ err: String(e) }, 'cannot publish clstat');
      }
    });
    return this.publishing;
  }

  /** SIGKILL every process group the engine recorded (what the watchdog does when it fires). */
  private killRecordedGroups(): void {
    const pgids = this.record.leftovers();
    for (const pgid of pgids) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (pgids.length > 0) this.log.warn({ pgids }, 'self-fence: killed local group processes');
  }

  /**
   * fence.log lives in this node's folder (one writer per shared file; `peerha fence history`
   * merges them), JSON lines, the last 1000 kept in memory after one read; appends serialized.
   */
  private appendFenceLog(rec: FenceRecord): Promise<void> {
    this.fenceLogWrites = this.fenceLogWrites.then(async () => {
      if (this.fenceLines === null) {
        const old = await this.store.readNodeFile(this.s.node, 'fence.log');
        this.fenceLines = (old?.text ?? '').split('\n').filter(Boolean);
      }
      this.fenceLines.push(JSON.stringify(rec));
      this.fenceLines = this.fenceLines.slice(-1000);
      try {
        await this.store.writeOwn('fence.log', this.fenceLines.join('\n') + '\n');
      } catch (e) {
        this.log.error({ err: String(e) }, 'cannot write fence.log');
      }
    });
    return this.fenceLogWrites;
  }

  private buildHastat(
    q: QuorumResult,
    live: Map<string, { state: string; seq: number | null; silentMs: number }>,
    nodes: Map<string, NodeView>,
    errors: string[],
    notes: ReadonlyArray<{ group: string; note: string }>,
  ): Hastat {
    const wallNow = wall(this.s.clockOffsetMs ?? 0);
    const h: Hastat = {
      version: HASTAT_VERSION,
      node: this.s.node,
      time: wallNow.toISOString(),
      quorum: { ok: q.ok, live: q.live, expected: q.expected, policy: this.s.quorum.policy, reason: q.reason },
      detection: `failover ≈ timeout ${this.s.timeoutMs} ms + plan window ${planWindowMs(this.s.cycleMs, this.s.visibilityLagMs)} ms + start time`,
      nodes: {},
      groups: {},
      errors,
    };
    h.nodes[this.s.node] = { state: this.leaving ? 'left' : 'up', seq: this.seq, lastChange: wallNow.toISOString() };
    for (const [n, v] of live) {
      h.nodes[n] = {
        state: this.fencedNow.has(n) ? 'fenced' : v.state,
        seq: v.seq,
        lastChange: new Date(wallNow.getTime() - v.silentMs).toISOString(),
        ...this.fenceStatus(n),
      };
    }
    const groups = new Set<string>(this.hactl?.wants.keys() ?? []);
    for (const nv of nodes.values()) for (const [g, i] of nv.groups) if (isActive(i)) groups.add(g);
    for (const g of [...groups].sort()) {
      const want = this.hactl?.wants.get(g);
      const instances: Record<string, { level: string; state: string }> = {};
      for (const nv of nodes.values()) {
        const i = nv.groups.get(g);
        if (i && isActive(i) && !nv.released) instances[nv.name] = { level: i.level, state: i.state };
      }
      const engineNotes = this.engine.groupStatus(g)?.notes ?? [];
      const groupNotes = [...engineNotes, ...notes.filter((n) => n.group === g).map((n) => n.note)];
      const running = Object.entries(instances).filter(([, i]) => i.level === want?.level && (i.state === 'DONE' || i.state === 'PASSED'));
      const seen = this.owners.get(g) ?? { node: '', failovers: 0 };
      if (running.length === 1 && running[0]![0] !== seen.node) {
        if (seen.node !== '') seen.failovers++;
        seen.node = running[0]![0];
      }
      this.owners.set(g, seen);
      const mineNow = this.engine.groupStatus(g);
      h.groups[g] = {
        want: want?.level ?? null,
        nodes: want?.nodes ?? null,
        instances,
        ...(groupNotes.length ? { notes: groupNotes } : {}),
        failovers: seen.failovers,
        ...(mineNow && instances[this.s.node]
          ? { local: { entries: mineNow.procs.map((p) => ({ tag: p.tag, mode: p.mode, state: p.state, note: p.note })), transitions: mineNow.transitions } }
          : {}),
      };
    }
    return h;
  }

  /** SIGHUP: apply a re-read configuration; identity and local paths need a restart. */
  reload(next: MonitorSettings): void {
    const fixed = (['root', 'node', 'stateDir', 'selfFence'] as const).filter((k) => next[k] !== this.s[k]);
    if (fixed.length) this.log.warn({ keys: fixed }, 'configuration reloaded; these keys need a restart and keep their old values');
    const timeoutChanged = next.timeoutMs !== this.s.timeoutMs;
    this.s = { ...next, root: this.s.root, node: this.s.node, stateDir: this.s.stateDir, selfFence: this.s.selfFence };
    if (timeoutChanged && this.watchdog) {
      // The watchdog's limit is timeout/2: replace it (the new one is petted at once).
      const old = this.watchdog;
      this.watchdog = null;
      tellWatchdog(old, 'bye');
      this.startWatchdog();
    }
    this.log.info({ cycleMs: this.s.cycleMs, timeoutMs: this.s.timeoutMs, quorum: this.s.quorum, balance: this.s.balance }, 'configuration reloaded');
  }

  /** Orderly leave: stop local groups, publish a final clstat with the left marker, exit. */
  leave(why: string, handOver = true): Promise<void> {
    if (this.leaving) return this.leaving;
    this.log.info({ why }, 'leaving the cluster: stopping local groups');
    const heirs = handOver ? this.successors() : [];
    if (heirs.length) this.log.info({ handovers: heirs.map((h) => `${h.group}→${h.node}`) }, 'handing groups over');
    this.leaving = (async () => {
      const t = this.engine.timings;
      const cap = t.killAfterMs + 3 * t.killRepeatMs;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.engine.haltAll(), new Promise((r) => (timer = setTimeout(r, cap)))]);
      clearTimeout(timer);
      this.stopped = true;
      if (this.timer) clearTimeout(this.timer);
      await this.publish(true, heirs);
      tellWatchdog(this.watchdog, 'bye');
      this.watchdog = null;
      this.record.remove();
      rmSync(join(this.s.stateDir, `${this.s.node}.pid`), { force: true });
      this.log.info({}, 'left the cluster');
    })();
    return this.leaving;
  }
}

export async function runMonitor(s: MonitorSettings, log: Logger, reload?: () => MonitorSettings | null): Promise<number> {
  const m = new Monitor(s, log);
  const code = await m.start();
  if (code !== 0) return code;
  return new Promise<number>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      void m.leave(sig).then(() => resolve(0));
    };
    m.onLeft = () => resolve(0);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('SIGHUP', () => {
      const next = reload?.();
      if (next) m.reload(next);
    });
  });
}
