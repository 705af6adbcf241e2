// hastat from the monitor's state (pure), and back: the `memory` part carries what the next
// decision depends on that no file shows (plan windows, failed-test cooldowns, conflict backoffs,
// peers' silence), as times relative to the moment it was written, so that `peerha plan` can
// restore the state and run step() on it.

import { defaultStopTimeoutMs } from '../config/monitor.js';
import { isRunning, type FailoverLine, type FencedLine } from '../config/clstat.js';
import { HASTAT_VERSION, type Hastat, type HastatFence, type HastatGroup, type HastatInstance, type HastatMemory, type HastatNode } from '../cluster/hastat.js';
import type { QuorumResult } from '../cluster/quorum.js';
import type { GroupStatus } from '../init/engine.js';
import { isActive, type NodeView } from './decide.js';
import { initialState, type MonitorSettings, type MonitorState, type PeerContent } from './state.js';
import type { Turn } from './turn.js';
import { planWindowMs } from './view.js';

const record = <V, W>(m: ReadonlyMap<string, V>, f: (v: V) => W): Record<string, W> => Object.fromEntries([...m].map(([k, v]) => [k, f(v)]));
const map = <V, W>(r: Readonly<Record<string, V>> | undefined, f: (v: V) => W): Map<string, W> => new Map(Object.entries(r ?? {}).map(([k, v]) => [k, f(v)]));

/** A peer's fence state: who fenced it, and the last fence attempt known here. */
function fenceStatus(state: MonitorState, n: string): Pick<HastatNode, 'fencedBy' | 'lastFence'> {
  const by = state.fencedNow.get(n);
  const own = state.fencing.last.get(n);
  const claimed: HastatFence | undefined = by ? { time: by.line.time, fencer: by.by, node: n, result: 'success', method: by.line.method } : undefined;
  const last = own && (!claimed || own.time >= claimed.time) ? own : claimed;
  return { ...(by ? { fencedBy: by.by } : {}), ...(last ? { lastFence: last } : {}) };
}

/** A group this node runs, as its engine reports it: entries (with their health checks), transitions, restarts. */
function localOf(g: GroupStatus): NonNullable<HastatGroup['local']> {
  const entries = g.procs.map((p) => ({ tag: p.tag, mode: p.mode, state: p.state, note: p.note, ...(p.check ? { check: { ...p.check } } : {}) }));
  const health = g.procs.some((p) => p.check) || (g.restarts ?? 0) > 0 || g.givenUp === true;
  return {
    entries,
    transitions: g.transitions,
    ...(health ? { restarts: g.restarts ?? 0, ...(g.maxRestarts !== undefined ? { maxRestarts: g.maxRestarts } : {}), givenUp: g.givenUp ?? false } : {}),
  };
}

type Owner = MonitorState['owners'] extends ReadonlyMap<string, infer O> ? O : never;

/** Which of two failover records the cluster keeps: the higher count, the greater node name at a tie. */
const laterOwner = (a: Owner, b: Owner): Owner => (b.failovers > a.failovers || (b.failovers === a.failovers && b.node > a.node) ? b : a);

/**
 * Per group, the failover record the peers published (`# failovers` lines), highest first; with
 * ours, every view settles on one count. Counting the moves each node sees on its own gave every
 * view its own count, reset by a restart. One pass over every line: a thousand groups that moved
 * must not cost groups × lines a cycle.
 */
export function peerOwners(peers: Iterable<PeerContent>): Map<string, Owner> {
  const best = new Map<string, Owner>();
  for (const p of peers) {
    for (const f of p.read.failovers ?? []) {
      const seen = best.get(f.group);
      const o = { node: f.node, failovers: f.count };
      best.set(f.group, seen ? laterOwner(seen, o) : o);
    }
  }
  return best;
}

/** A group's failover record as the cluster has it: ours or the peers' best. */
export function clusterOwner(own: Owner | undefined, peers: Owner | undefined): Owner {
  const mine = own ?? { node: '', failovers: 0 };
  return peers ? laterOwner(mine, peers) : mine;
}

/** The failover records a clstat carries (groups that failed over at least once). */
export function failoverLines(owners: MonitorState['owners']): FailoverLine[] {
  return [...owners].filter(([, o]) => o.failovers > 0 && o.node !== '').map(([group, o]) => ({ group, count: o.failovers, node: o.node }));
}

/**
 * A previous run's failover counts (its last clstat), to go on from after a restart. Not where the
 * group ran: a placement after the whole cluster was down is no failover, and while peers are up
 * their records (with the node) win the tie in clusterOwner.
 */
export function ownersFrom(lines: readonly FailoverLine[] | undefined): MonitorState['owners'] {
  return new Map((lines ?? []).map((f) => [f.group, { node: '', failovers: f.count }]));
}

/** This cycle's hastat; also counts failovers (a group seen running on another node than before). */
export function buildHastat(t: Turn, q: QuorumResult, nodes: ReadonlyMap<string, NodeView>, errors: readonly string[], notes: ReadonlyArray<{ group: string; note: string }>): Hastat {
  const state = t.state;
  const settings = state.settings;
  const wall = t.event.wall;
  const time = t.wallIso;
  const fencing = state.fencedNow.size > 0 || state.fencing.last.size > 0;
  const me: HastatNode = { state: state.leave ? 'left' : 'up', seq: state.seq, lastChange: time };
  const hastatNodes: Record<string, HastatNode> = { [t.me]: state.poisoned ? { ...me, declaredStaleBy: state.poisoned } : me };
  for (const [n, v] of state.lastLive) {
    const entry: Mutable<HastatNode> = { state: state.fencedNow.has(n) ? 'fenced' : v.state, seq: v.seq, lastChange: isoTime(wall - v.silentMs) };
    // Why it could not be read: an unknown node is shown with its error, never as dead.
    const readError = v.state === 'unknown' || v.state === 'stale' ? state.readErrors.get(n) : undefined;
    if (readError) entry.readError = readError;
    if (fencing) {
      const f = fenceStatus(state, n);
      if (f.fencedBy !== undefined) entry.fencedBy = f.fencedBy;
      if (f.lastFence !== undefined) entry.lastFence = f.lastFence;
    }
    hastatNodes[n] = entry;
  }
  // One pass over what every node runs: group → its instances (released stale nodes left out).
  const wants = state.hactl?.value.wants ?? new Map();
  const instancesOf = new Map<string, Record<string, HastatInstance>>();
  for (const g of wants.keys()) instancesOf.set(g, {});
  for (const nv of nodes.values()) {
    for (const [g, i] of nv.groups) {
      if (!isActive(i)) continue;
      let instances = instancesOf.get(g);
      if (!instances) instancesOf.set(g, (instances = {}));
      if (!nv.released) instances[nv.name] = { level: i.level, state: i.state };
    }
  }
  const engine = new Map<string, GroupStatus>(state.local.map((g) => [g.group, g]));
  const notesOf = new Map<string, string[]>();
  for (const n of notes) notesOf.set(n.group, [...(notesOf.get(n.group) ?? []), n.note]);
  const owners = new Map(state.owners);
  // Live peers only: a clstat left behind (halt, a crash) names where the group ran back then.
  const counters = peerOwners([...state.peerContent].filter(([n]) => state.lastLive.get(n)?.state === 'up').map(([, c]) => c));
  const groups: Record<string, HastatGroup> = {};
  for (const g of [...instancesOf.keys()].sort()) {
    const want = wants.get(g);
    const instances = instancesOf.get(g)!;
    const mineNow = engine.get(g);
    const groupNotes = [...(mineNow?.notes ?? []), ...(notesOf.get(g) ?? [])];
    let runningOn: string | null = null;
    let running = 0;
    for (const n in instances) {
      const i = instances[n]!;
      if (i.level === want?.level && isRunning(i.state)) {
        running++;
        runningOn = n;
      }
    }
    let seen = clusterOwner(owners.get(g), counters.get(g));
    if (running === 1 && runningOn !== seen.node) seen = { node: runningOn!, failovers: seen.node === '' ? seen.failovers : seen.failovers + 1 };
    owners.set(g, seen);
    const group: HastatGroup = { want: want?.level ?? null, nodes: want?.nodes ?? null, instances, ...(groupNotes.length ? { notes: groupNotes } : {}), failovers: seen.failovers };
    groups[g] = mineNow && instances[t.me] ? { ...group, local: localOf(mineNow) } : group;
  }
  state.owners = owners;
  return {
    version: HASTAT_VERSION,
    node: t.me,
    time,
    quorum: { ok: q.ok, live: q.live, expected: q.expected, policy: settings.quorum.policy, reason: q.reason },
    detection: `failover ≈ timeout ${settings.timeoutMs} ms + start time (+ plan window ${planWindowMs(settings.cycleMs, settings.visibilityLagMs)} ms if a claim cannot be created)`,
    nodes: hastatNodes,
    groups,
    errors: [...errors],
    memory: snapshotMemory(state, t.now),
  };
}

/** The day isoTime() formatted last, and its `YYYY-MM-DDT`. */
let isoDay = Number.NaN;
let isoDate = '';

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);
const pad3 = (n: number): string => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

/**
 * `new Date(ms).toISOString()`, with no Date per call and the date part kept: a hastat shows every
 * peer's last change (a Date and its formatting per peer per cycle were 4 % of a 64-node cycle).
 */
function isoTime(ms: number): string {
  const t = Math.trunc(ms);
  if (!(Math.abs(t) <= 8.64e15)) return new Date(ms).toISOString(); // NaN, out of range: throws as Date does
  const day = Math.floor(t / 86_400_000);
  if (day !== isoDay) {
    isoDate = new Date(day * 86_400_000).toISOString().slice(0, -13);
    isoDay = day;
  }
  let r = t - day * 86_400_000;
  const h = Math.floor(r / 3_600_000);
  r -= h * 3_600_000;
  const m = Math.floor(r / 60_000);
  r -= m * 60_000;
  const sec = Math.floor(r / 1000);
  return `${isoDate}${pad2(h)}:${pad2(m)}:${pad2(sec)}.${pad3(r - sec * 1000)}Z`;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type PeerMemo = Mutable<HastatMemory['peers'][string]>;

/** Per peer: seq, silence, time unread, left, pid (one object per peer, no spreads: 64 peers a cycle). */
function peersMemory(state: MonitorState, now: number): Record<string, PeerMemo> {
  const out: Array<[string, PeerMemo]> = [];
  for (const [n, p] of state.peers) {
    const m = { seq: p.seq, silentMs: Math.round(Math.max(0, now - p.lastChange)) } as PeerMemo;
    if (Number.isFinite(p.lastRead)) m.unreadMs = Math.round(Math.max(0, now - p.lastRead));
    m.left = p.left;
    const pid = state.peerPids.get(n);
    if (pid !== undefined) m.pid = pid;
    out.push([n, m]);
  }
  return Object.fromEntries(out);
}

export function snapshotMemory(state: MonitorState, now: number): HastatMemory {
  const settings = state.settings;
  const m = state.decideMemory;
  return {
    settings: { cycleMs: settings.cycleMs, timeoutMs: settings.timeoutMs, stopTimeoutMs: settings.stopTimeoutMs, visibilityLagMs: settings.visibilityLagMs, balance: settings.balance, failCooldownCycles: settings.failCooldownCycles, selfFence: settings.selfFence, quorum: settings.quorum },
    runningMs: Math.round(now - state.startedAt),
    configVersion: `${state.cltab?.hash ?? ''}:${state.hactl?.hash ?? ''}`,
    peers: peersMemory(state, now),
    quorum: { base: state.quorumMemory.base, allSeen: state.quorumMemory.allSeen, ...(state.quorumMemory.leftAtBase ? { leftAtBase: state.quorumMemory.leftAtBase } : {}) },
    planned: record(m.planSince, (t) => Math.round(now - t)),
    failed: record(m.failed, (f) => ({ forMs: Math.round(f.until - now), count: f.count ?? 1, configVersion: f.configVersion })),
    backoff: record(m.backoffUntil, (t) => Math.round(t - now)),
    homeless: record(m.homelessSince ?? new Map<string, number>(), (t) => Math.round(now - t)),
    ...(m.testSince?.size ? { tested: record(m.testSince, (t) => Math.round(now - t)) } : {}),
    handovers: record(state.handovers, (h) => ({ seq: h.seq, seenMs: Math.round(now - h.at), heirs: Object.fromEntries(h.map) })),
    fenced: [...state.fencing.fenced.values()],
    claims: record(state.fenceClaims, (lines) => [...lines]),
  };
}

/**
 * A monitor's state rebuilt from its hastat, as if it had just finished a cycle at monotonic time
 * `now` (the hastat's age): liveness, quorum and decision memory as it wrote them, its own groups
 * from its clstat. The configuration is loaded again from DIR by the cycle that runs on it.
 */
export function restoreState(h: Hastat, base: Omit<MonitorSettings, keyof HastatMemory['settings']>, local: readonly GroupStatus[], now: number): MonitorState {
  const mem = h.memory!;
  const settings: MonitorSettings = { ...base, ...mem.settings, stopTimeoutMs: mem.settings.stopTimeoutMs ?? defaultStopTimeoutMs(mem.settings.timeoutMs), node: h.node };
  const at = (msAgo: number): number => -msAgo;
  const fresh = initialState(settings, 0, 0);
  const fenced = new Map<string, FencedLine>(mem.fenced.map((f) => [f.node, f]));
  return {
    ...fresh,
    phase: 'running',
    startedAt: at(mem.runningMs),
    lastCycleEnd: now,
    lastPublishOk: now,
    lastPet: now,
    seq: h.nodes[h.node]?.seq ?? 0,
    peers: map(mem.peers, (p) => ({ seq: p.seq, lastChange: at(p.silentMs), lastRead: p.unreadMs === undefined ? Number.NEGATIVE_INFINITY : at(p.unreadMs), left: p.left })),
    peerPids: new Map(Object.entries(mem.peers).flatMap(([n, p]) => (p.pid !== undefined ? [[n, p.pid] as const] : []))),
    quorumMemory: mem.quorum,
    decideMemory: {
      planSince: map(mem.planned, at),
      failed: map(mem.failed, (f) => ({ until: f.forMs, count: f.count, configVersion: f.configVersion })),
      backoffUntil: map(mem.backoff, (ms) => ms),
      homelessSince: map(mem.homeless, at),
      testSince: map(mem.tested ?? {}, at),
    },
    handovers: map(mem.handovers, (x) => ({ seq: x.seq, at: at(x.seenMs), map: new Map(Object.entries(x.heirs)) })),
    fencing: { ...fresh.fencing, fenced },
    fenceClaims: map(mem.claims, (lines) => lines),
    local,
  };
}
