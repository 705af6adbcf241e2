// The monitor's whole state, as one immutable value that step() maps to the next. Drivers hold it
// and may read it (through the queries at the bottom), never change it.

import type { Beat, BeatClock } from '../cluster/beats.js';
import type { Claim, ClaimHolder } from '../cluster/claims.js';
import type { FencedLine, StaleLine } from '../config/clstat.js';
import type { Cltab } from '../config/cltab.js';
import type { Hactl } from '../config/hactl.js';
import type { MonitorConfig, QuorumConfig } from '../config/monitor.js';
import type { Hastat, HastatFence } from '../cluster/hastat.js';
import type { LivenessView, PeerMemory, PeerObservation } from '../cluster/liveness.js';
import { FRESH_QUORUM, type QuorumMemory, type QuorumResult } from '../cluster/quorum.js';
import type { FileSignature } from '../cluster/store.js';
import type { Judged } from '../cluster/replicate.js';
import type { GroupStatus } from '../init/engine.js';
import { DEFAULT_TIMINGS, type Timings } from '../init/machines.js';
import { EMPTY_MEMORY, isActive, type Action, type DecideMemory, type Instance, type NodeView } from './decide.js';
import type { FenceIncident } from './fencing.js';
import type { Replica } from './replication.js';
import type { FencedBy, HandoverRecord, PeerRead } from './view.js';

export interface MonitorSettings extends Omit<MonitorConfig, 'logLevel' | 'configFile' | 'quorum'> {
  readonly quorum: QuorumConfig;
  readonly timings?: Partial<Timings>;
  /**
   * The largest rate difference of two nodes' monotonic clocks (0.001: 1,000 ppm, twice NTP's
   * largest slew) that a beat's dating allows for (beats.ts dateBeat).
   */
  readonly clockDrift?: number;
  /** Wall-clock offset for skew tests; liveness never uses the wall clock. */
  readonly clockOffsetMs?: number;
}

/**
 * new → starting (clean leftovers, refuse a duplicate id) → halted (DIR/halt exists: wait) →
 * running (cycles; `leave` set while leaving) → stopped (left or refused).
 */
export type Phase = 'new' | 'starting' | 'halted' | 'running' | 'stopped';

export interface Heir {
  readonly group: string;
  readonly node: string;
}

/** The cycle in flight: scan → peers → copies (when a replica changed) → telling → publish → hastat. */
export interface Cycle {
  readonly id: number;
  readonly stage: 'scan' | 'peers' | 'copies' | 'claiming' | 'telling' | 'publish';
  /** When it began: the next one begins a period after this, however long this one took. */
  readonly began: number;
  /** When each stage's answers came (ms after it began), for the log of a cycle too slow to pet. */
  readonly marks?: string;
  /** Tells not answered yet: the cycle's clstat must show what they did, so it waits for them. */
  readonly tells: number;
  /** Frozen or unable to publish when the cycle began: stop local groups, plan nothing. */
  readonly selfFence: boolean;
  readonly names: readonly string[];
  /** The node folders were listed this cycle (false: the names are the last good listing's). */
  readonly listed: boolean;
  /** Every copy of cltab and hactl under DIR (replication.ts copyPaths). */
  readonly paths: readonly string[];
  /** Replica copies (by source) and their verdict; null = missing or unreadable. */
  readonly verdicts: ReadonlyMap<string, Judged | null>;
  /** Copies that changed and are read in stage `copies`. */
  readonly toRead: readonly string[];
  /**
   * The peers whose clstat this cycle reads (absent: all), their beats in this cycle's listing
   * (absent: not listed), and the copies it stats (absent: all of `paths`).
   */
  readonly clstatReads?: readonly string[];
  readonly beats?: ReadonlyMap<string, Beat>;
  readonly statPaths?: readonly string[];
  /** The claims listing of this cycle (null: it failed; the last one stands), and whose content it reads. */
  readonly claimNames?: readonly string[] | null;
  readonly claimReads?: readonly string[];
  /** Plans of this cycle waiting for their claims to be created, the seq the claims name, and the other tells (told after). */
  readonly claiming?: ReadonlyArray<{ readonly group: string; readonly level: string; readonly reason: string; readonly claim: number; readonly unclaimed?: string }>;
  readonly claimSeq?: number;
  readonly waiting?: readonly Action[];
  /** Decides on the last full cycle's reads (no reads of its own; the period still counts from that cycle): see LastReads. */
  readonly reused?: boolean;
}

/**
 * The reads a full cycle decided on, and what it made of the replica copies: a finished test is
 * decided on from them at once while they are fresh (cycle.ts decideOnLastReads).
 */
export interface LastReads extends Pick<Cycle, 'began' | 'selfFence' | 'names' | 'listed' | 'paths' | 'verdicts'> {
  /** When it decided on them. */
  readonly at: number;
  readonly cltab: Replica;
  readonly hactl: Replica;
}

/** This node's beat (beats.ts): its current file name, and the gen and body key of its clstat. */
export interface OwnBeat {
  /** null: none yet, or the last heartbeat failed (the next one creates a new beat). */
  readonly name: string | null;
  readonly gen: number;
  /** The last clstat written, but for its seq and time: a different one starts a new gen. */
  readonly body: string;
  /** The seq of this node's last write of its own replica copies. */
  readonly copies: number;
}

/** A peer's clstat as last read, by the gen it carried: reused while its beat shows that gen. */
export interface PeerContent {
  readonly gen: number;
  readonly read: PeerRead;
}

/** A replica copy as last seen: its signature, since when unchanged, and the verdict on its text. */
export interface CopySeen {
  readonly sig: FileSignature | null;
  readonly since: number;
  readonly judged: Judged | null;
}

export type PublishWaiter = { readonly kind: 'cycle'; readonly id: number } | { readonly kind: 'leave' };

/** clstat writes are serialized: one in flight; requests meanwhile become one more write. */
export interface Publishing {
  readonly inFlight: boolean;
  readonly pending: boolean;
  /** Satisfied by the next write to start. */
  readonly waiting: readonly PublishWaiter[];
  /** Satisfied when the write in flight completes. */
  readonly riding: readonly PublishWaiter[];
  /** The final write: the left marker and these heirs. */
  readonly left: readonly Heir[] | null;
  /** The beat of the write in flight: this node's beat once it succeeded. */
  readonly beat?: OwnBeat;
  /** The seq of the write in flight. */
  readonly seq?: number;
}

/** One fence agent/command/manual attempt in progress for an incident. */
export interface FenceRun {
  readonly method: number;
  readonly startedAt: number;
  readonly time: string;
  readonly records: readonly HastatFence[];
}

export interface Incident extends FenceIncident {
  /** `node#seq`: names the incident in logs, the fence log and fence results. */
  readonly key: string;
  /** The target's monitor pid when it went silent (with seq: which incarnation an operator confirms). */
  readonly pid: number | null;
  /** Wall-clock ms when the incident began (a confirmation without seq must be newer). */
  readonly since: number;
  readonly run: FenceRun | null;
  readonly polling: boolean;
}

export interface FenceDuty {
  readonly incidents: ReadonlyMap<string, Incident>;
  /** Nodes this node fenced and that have not restarted since (its `# fenced` lines). */
  readonly fenced: ReadonlyMap<string, FencedLine>;
  readonly last: ReadonlyMap<string, HastatFence>;
}

/** fence.log: read once, then rewritten with each new record (the last 1000 kept). */
export interface FenceLog {
  readonly lines: readonly string[] | null;
  readonly queued: readonly string[];
  readonly busy: boolean;
}

export interface Leave {
  readonly why: string;
  readonly heirs: readonly Heir[];
  readonly exit: 'left' | 'halt';
  /** Every group ran its stop level (or the bound passed): the engine halts what remains. */
  readonly halting: boolean;
  readonly finishing: boolean;
  /** Waiting for the watchdog to let go (and finish any stop entries it runs) before the left marker. */
  readonly releasingWatchdog?: boolean;
  /** The leave-cap timer in force: armed at `from` for `ms`. */
  readonly cap?: { readonly from: number; readonly ms: number };
}

/** What the last decision was and why: for logs, `peerha plan`, and the simulator's checks. */
export interface LastDecision {
  readonly cycle: number;
  readonly actions: readonly Action[];
  readonly notes: ReadonlyArray<{ readonly group: string; readonly note: string }>;
  readonly errors: readonly string[];
  /** Decided with quorum (and neither self-fencing nor leaving), and if not, why. */
  readonly effective: boolean;
  readonly why: string;
}

export interface HastatInputs {
  readonly quorum: QuorumResult;
  readonly nodes: ReadonlyMap<string, NodeView>;
  readonly errors: readonly string[];
  readonly notes: ReadonlyArray<{ readonly group: string; readonly note: string }>;
}

export interface Loaded<T> {
  readonly value: T;
  readonly hash: string;
}

/** The cluster as last alerted (alerts.ts): by its observer, mirrored by every other node. */
export interface AlertedView {
  /** Raised by one with each change: the newest view wins. 0 = nothing alerted yet. */
  readonly gen: number;
  readonly quorum: boolean | null;
  /** A hash of the configuration problems alerted ('' = none). */
  readonly config: string;
  readonly nodes: ReadonlyMap<string, 'up' | 'stale' | 'left' | 'fenced'>;
}

export interface MonitorState {
  readonly settings: MonitorSettings;
  readonly pid: number;
  readonly phase: Phase;
  /** The random source (a 32-bit generator state): step() is a function of its inputs. */
  readonly rng: number;
  readonly startedAt: number;
  readonly dupSeq: number | null;
  /** Start-up: reads of our clstat left that found none although our folder was there already. */
  readonly ownMissingReads: number | null;
  readonly waitedForHalt: boolean;
  /** This node's heartbeat sequence number (the last clstat written). */
  readonly seq: number;
  readonly lastCycleEnd: number;
  readonly lastPublishOk: number;
  /** The latest clstat write failed: peers may not have seen what this node last told (a plan). */
  readonly lastPublishFailed: boolean;
  /** Why the last clstat write was not the usual one ('' = it was): shown in hastat. */
  readonly publishDegraded: string;
  readonly lastPet: number;
  readonly watchdog: boolean;
  readonly readySent: boolean;
  readonly cycleNo: number;
  readonly cycle: Cycle | null;
  /** What the last full cycle read and decided on (a finished test is decided on from it at once). */
  readonly lastReads: LastReads | null;
  /** When the pending cycle timer fires (null: none pending). */
  readonly cycleTimerAt: number | null;
  /** Run the next cycle right after this one (a plan to time, a test that finished). */
  readonly cycleAgain: boolean;
  readonly eventCycles: number;
  readonly peers: ReadonlyMap<string, PeerMemory>;
  /**
   * Per peer, a heartbeat seq a listing (a poll between cycles, or the cycle's scan) saw before the
   * cycle read its peers, and when it was made (dateBeat): that cycle dates the change from it, not
   * from itself.
   */
  readonly beatSeen: ReadonlyMap<string, { readonly seq: number; readonly at: number }>;
  /** Per peer, what its beats' stamps say about our clock (beats.ts dateBeat). */
  readonly beatClocks: ReadonlyMap<string, BeatClock>;
  /** The node folders as the last listing that worked showed them. */
  readonly lastNames: readonly string[];
  readonly peerPids: ReadonlyMap<string, number>;
  readonly beat: OwnBeat;
  readonly peerContent: ReadonlyMap<string, PeerContent>;
  /** Per peer, the `copies` of its beat when its replica copies were last stat'ed. */
  readonly peerCopies: ReadonlyMap<string, number>;
  /** This monitor run's incarnation (random per start): in its clstat header and its claims. */
  readonly inc: string;
  /** The latest claim of each group, as the last claims listing that worked showed it. */
  readonly claims: ReadonlyMap<string, Claim>;
  /** Claim contents read so far, by file name (a claim's content never changes). */
  readonly claimHolders: ReadonlyMap<string, ClaimHolder>;
  /** Latest claims whose content could not be read, since when (monotonic). */
  readonly claimUnreadable: ReadonlyMap<string, number>;
  /**
   * Groups the watchdog may still be releasing after a self-fence (its stop entries run within
   * stop_timeout after it fired), until when (monotonic): shown as `stop STOPPING`, so that their
   * claims stand and nobody (this node included) places them before the stop entries are done.
   */
  readonly releasing: ReadonlyMap<string, number>;
  readonly lastGroups: ReadonlyMap<string, ReadonlyMap<string, Instance>>;
  readonly fenceClaims: ReadonlyMap<string, readonly FencedLine[]>;
  /** Per peer, the nodes it holds stale (`# stale` lines of its clstat). */
  readonly staleClaims: ReadonlyMap<string, readonly StaleLine[]>;
  /** Per peer, why its clstat could not be read this cycle (absent: it was read). */
  readonly readErrors: ReadonlyMap<string, string>;
  /** Who holds this node stale now ('' = nobody): it runs nothing meanwhile. */
  readonly poisoned: string;
  readonly handovers: ReadonlyMap<string, HandoverRecord>;
  readonly lastSeen: ReadonlyMap<string, PeerObservation>;
  readonly lastLive: ReadonlyMap<string, LivenessView>;
  readonly fencedNow: ReadonlyMap<string, FencedBy>;
  readonly lastView: ReadonlyMap<string, NodeView>;
  readonly decideMemory: DecideMemory;
  readonly quorumMemory: QuorumMemory;
  readonly cltab: Loaded<Cltab> | null;
  readonly hactl: Loaded<Hactl> | null;
  readonly copies: ReadonlyMap<string, CopySeen>;
  /** Replicas of this node being written now (one write per file at a time). */
  readonly replicating: ReadonlySet<string>;
  /** The group engine as its last change left it. */
  readonly local: readonly GroupStatus[];
  readonly publish: Publishing;
  readonly fencing: FenceDuty;
  readonly fenceLog: FenceLog;
  readonly leave: Leave | null;
  /** Group → the node last seen running it, and how often that changed. */
  readonly owners: ReadonlyMap<string, { readonly node: string; readonly failovers: number }>;
  readonly loggedNotes: ReadonlyMap<string, string>;
  readonly loggedErrors: string;
  readonly quorumOk: boolean | null;
  readonly lastDecision: LastDecision | null;
  readonly lastHastat: Hastat | null;
  /** A hastat write is under way: the next cycle's view waits for the one after it. */
  readonly hastatWriting: boolean;
  /** What the last decision saw, for the next hastat (built only when one is written). */
  readonly hastatInputs: HastatInputs | null;
  /** When the last hastat write began (monotonic). */
  readonly lastHastatAt: number;
  readonly alerted: AlertedView;
  /** The sequence of the last alert this node raised. */
  /** The seq of this run's last clstat write that worked (alert sequences are based on it). */
  readonly landedSeq: number;
  readonly alertSeq: number;
  /** Per peer, its heartbeat seq when first seen (-1: it moved since): alerts.ts nodeStates. */
  readonly firstSeqs: ReadonlyMap<string, number | null>;
  /** The configuration problems (hash) the observer saw last cycle. */
  readonly configSeen: string;
  /** Groups alerted started here (and at which level) and not stopped since. */
  readonly groupsUp: ReadonlyMap<string, string>;
}

export function initialState(settings: MonitorSettings, pid: number, seed: number): MonitorState {
  return {
    settings,
    pid,
    phase: 'new',
    rng: seed >>> 0,
    startedAt: 0,
    dupSeq: null,
    ownMissingReads: null,
    waitedForHalt: false,
    seq: 0,
    lastCycleEnd: 0,
    lastPublishOk: 0,
    lastPublishFailed: false,
    publishDegraded: '',
    lastPet: 0,
    watchdog: false,
    readySent: false,
    cycleNo: 0,
    cycle: null,
    lastReads: null,
    cycleTimerAt: null,
    cycleAgain: false,
    eventCycles: 0,
    peers: new Map(),
    beatSeen: new Map(),
    beatClocks: new Map(),
    lastNames: [],
    peerPids: new Map(),
    beat: { name: null, gen: 0, body: '', copies: 0 },
    peerContent: new Map(),
    peerCopies: new Map(),
    inc: (seed >>> 0).toString(36),
    claims: new Map(),
    claimHolders: new Map(),
    claimUnreadable: new Map(),
    releasing: new Map(),
    lastGroups: new Map(),
    fenceClaims: new Map(),
    staleClaims: new Map(),
    readErrors: new Map(),
    poisoned: '',
    handovers: new Map(),
    lastSeen: new Map(),
    lastLive: new Map(),
    fencedNow: new Map(),
    lastView: new Map(),
    decideMemory: EMPTY_MEMORY,
    quorumMemory: FRESH_QUORUM,
    cltab: null,
    hactl: null,
    copies: new Map(),
    replicating: new Set(),
    local: [],
    publish: { inFlight: false, pending: false, waiting: [], riding: [], left: null },
    fencing: { incidents: new Map(), fenced: new Map(), last: new Map() },
    fenceLog: { lines: null, queued: [], busy: false },
    leave: null,
    owners: new Map(),
    hastatWriting: false,
    hastatInputs: null,
    lastHastatAt: Number.NEGATIVE_INFINITY,
    loggedNotes: new Map(),
    loggedErrors: '',
    quorumOk: null,
    lastDecision: null,
    lastHastat: null,
    alerted: { gen: 0, quorum: null, config: '', nodes: new Map() },
    alertSeq: 0,
    landedSeq: 0,
    groupsUp: new Map(),
    firstSeqs: new Map(),
    configSeen: '',
  };
}

/** mulberry32: the next draw in [0, 1) and the generator's next state. */
export function nextRandom(rng: number): [number, number] {
  const next = (rng + 0x6d2b79f5) >>> 0;
  let r = Math.imul(next ^ (next >>> 15), 1 | next);
  r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
  return [((r ^ (r >>> 14)) >>> 0) / 4294967296, next];
}

export function timingsOf(s: MonitorSettings): Timings {
  return { ...DEFAULT_TIMINGS, ...s.timings };
}

// ------------------------------------------------------------------------------ queries

/** The engine's groups as decide() sees them: level and state of every group that has a level. */
export function localInstances(s: MonitorState): Map<string, Instance> {
  const m = new Map<string, Instance>();
  for (const g of s.local) if (g.level !== null) m.set(g.group, { level: g.level, state: g.state });
  return m;
}

/** This node's groups as it shows them: the engine's, and those its watchdog may still be releasing. */
export function shownInstances(s: MonitorState, now: number): Map<string, Instance> {
  const m = localInstances(s);
  for (const [g, until] of s.releasing) {
    const i = m.get(g);
    if (until > now && (!i || !isActive(i))) m.set(g, { level: 'stop', state: 'STOPPING' });
  }
  return m;
}

/** Started cycling and not leaving: a member of the cluster. */
export function isMember(s: MonitorState): boolean {
  return s.phase === 'running' && s.leave === null;
}

/** The longest wait (ms from `now`) until an unfinished fence incident is tried again. */
export function fenceWaitMs(s: MonitorState, now: number): number {
  let max = 0;
  for (const inc of s.fencing.incidents.values()) {
    if (inc.done) continue;
    max = Math.max(max, Number.isFinite(inc.nextTry) ? inc.nextTry - now : s.settings.fence.timeoutMs * Math.max(1, s.settings.fence.methods.length));
  }
  return max;
}
