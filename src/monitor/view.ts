// The monitor's view pieces as pure functions: what a peer's clstat read says, which stale nodes'
// groups stop counting (released), how many monitors count for quorum, which handovers are still
// fresh, whether this node is settling or must self-fence, whether it may pet its watchdog or
// spawn. step() calls them (through Logic), whichever driver runs it.

import { isSettled, isWhole, parseClstat, type Clstat, type FailoverLine, type FencedLine, type StaleLine } from '../config/clstat.js';
import type { HactlWant } from '../config/hactl.js';
import type { LivenessView, PeerMemory, PeerObservation } from '../cluster/liveness.js';
import { isActive, planGraceMs, TEST, type DecideConfig, type DecideMemory, type Instance, type NodeState, type NodeView } from './decide.js';
import type { FencePeer } from './fencing.js';

// ------------------------------------------------------------------------------ scan

/** What one read of a peer's clstat says. */
export interface PeerRead {
  /** For observe(): seq null when the file was missing or had no valid header. */
  readonly obs: PeerObservation;
  /** Its groups, only when the read had a header (otherwise keep what was seen before). */
  readonly groups: ReadonlyMap<string, Instance> | null;
  /** Its seq, monitor pid and handovers when it had a header. */
  readonly seq: number | null;
  /** The gen in its header (null: none, an older writer). */
  readonly gen: number | null;
  /** Its writer's incarnation and monotonic clock when it was formatted (absent: an older writer). */
  readonly inc?: string;
  readonly mono?: number;
  readonly pid: number | null;
  readonly handovers: ReadonlyArray<{ readonly group: string; readonly node: string }> | null;
  /** The nodes it says it fenced (`# fenced` lines) when it had a header. */
  readonly fenced: readonly FencedLine[] | null;
  /** The peers it holds stale (`# stale` lines) when it had a header. */
  readonly stale: readonly StaleLine[] | null;
  /** Its failover counts (`# failovers` lines); absent when it had no header. */
  readonly failovers?: readonly FailoverLine[];
  /** Its `# alerted` view as written (alerts.ts), if any. */
  readonly alerted?: string;
}

/**
 * A peer's clstat text (null = missing or unreadable this cycle) → what the scan keeps of it. A
 * torn read — not ending with a newline, or with fewer lines than its header says (torn right at
 * a line boundary) — counts as unreadable: a torn copy with a fresh seq and its group lines cut
 * off would make that peer's groups look stopped.
 */
export function readPeerClstat(text: string | null, parse: (text: string) => Clstat = parseClstat): PeerRead {
  if (text === null || parse !== parseClstat) return peerRead(text, parse);
  // Memoized by text: every peer reads the same few texts each cycle (the result is never changed).
  let r = PEER_READS.get(text);
  if (!r) {
    r = peerRead(text, parse);
    if (PEER_READS.size >= 1024) PEER_READS.delete(PEER_READS.keys().next().value!);
    PEER_READS.set(text, r);
  }
  return r;
}

const PEER_READS = new Map<string, PeerRead>();

function peerRead(text: string | null, parse: (text: string) => Clstat): PeerRead {
  const parsed = text !== null && text.endsWith('\n') ? parse(text) : null;
  const c = parsed && isWhole(text!, parsed) ? parsed : null;
  if (!c?.header) return { obs: { seq: null, left: false }, groups: null, seq: null, gen: null, pid: null, handovers: null, fenced: null, stale: null };
  return {
    obs: { seq: c.header.seq, left: !!c.header.left },
    groups: new Map(c.groups.map((g) => [g.group, { level: g.level, state: g.state }])),
    seq: c.header.seq,
    gen: c.header.gen ?? null,
    ...(c.header.inc !== undefined ? { inc: c.header.inc } : {}),
    ...(c.header.mono !== undefined ? { mono: c.header.mono } : {}),
    pid: c.header.pid,
    handovers: c.header.left && c.handovers ? c.handovers : null,
    fenced: c.fenced ?? [],
    stale: c.stale ?? [],
    failovers: c.failovers ?? [],
    ...(c.alerted !== undefined ? { alerted: c.alerted } : {}),
  };
}

/** What a monitor keeps of its peers' clstats from one cycle to the next. */
export interface PeerState {
  readonly lastGroups: Map<string, ReadonlyMap<string, Instance>>;
  readonly fenceClaims: Map<string, readonly FencedLine[]>;
  /** Per peer, the nodes it holds stale (as its last readable clstat said). */
  readonly staleClaims: Map<string, readonly StaleLine[]>;
  readonly handovers: Map<string, HandoverRecord>;
  readonly pids: Map<string, number>;
}

/** Fold one read of `node`'s clstat into what is kept of it (an unread one keeps what was seen). */
export function absorbPeerRead(st: PeerState, node: string, r: PeerRead, now: number): void {
  if (r.groups) st.lastGroups.set(node, r.groups);
  if (r.pid !== null) st.pids.set(node, r.pid);
  if (r.fenced) st.fenceClaims.set(node, r.fenced);
  if (r.stale) st.staleClaims.set(node, r.stale);
  const h = nextHandover(st.handovers.get(node), r, now);
  if (h) st.handovers.set(node, h);
  else st.handovers.delete(node);
}

/** Handovers a node published when it left, and when we first saw them (our monotonic clock). */
export interface HandoverRecord {
  readonly seq: number;
  readonly at: number;
  readonly map: ReadonlyMap<string, string>;
}

/**
 * The handover record for a peer after one read: a new left clstat with handovers starts one
 * (timed from now); a clstat without the left marker drops it; anything else keeps it.
 */
export function nextHandover(prev: HandoverRecord | undefined, read: PeerRead, now: number): HandoverRecord | undefined {
  if (read.seq === null) return prev;
  if (read.obs.left && read.handovers && prev?.seq !== read.seq) {
    return { seq: read.seq, at: now, map: new Map(read.handovers.map((h) => [h.group, h.node])) };
  }
  if (!read.obs.left) return undefined;
  return prev;
}

/** How long a handover stays usable: long enough for the heir to see it and act. */
export function handoverTtlMs(timeoutMs: number, cycleMs: number, visibilityLagMs: number): number {
  return timeoutMs + 2 * cycleMs + 2 * visibilityLagMs;
}

/**
 * Group → heir from every handover still fresh, and the nodes whose handovers expired (to be kept
 * spent, not dropped: the same left clstat read again must not start a fresh handover).
 */
export function freshHandovers(handovers: ReadonlyMap<string, HandoverRecord>, now: number, ttlMs: number): { map: Map<string, string>; expired: string[] } {
  const map = new Map<string, string>();
  const expired: string[] = [];
  for (const [n, h] of handovers) {
    if (h.map.size === 0) continue; // spent
    if (now - h.at > ttlMs) {
      expired.push(n);
      continue;
    }
    for (const [g, heir] of h.map) map.set(g, heir);
  }
  return { map, expired };
}

/**
 * The poison pill: the live peers that hold `me` stale or gone. Their view of this node is stuck
 * (a cache, a one-sided fault) or older than its restart, they may be taking its groups over right
 * now, and only this node can know: it runs nothing until they see it again. A claim from a peer
 * that is not up here is old news.
 */
export function declaredStaleBy(me: string, claims: ReadonlyMap<string, readonly StaleLine[]>, live: ReadonlyMap<string, LivenessView>): Array<{ by: string; seq: number | null }> {
  const out: Array<{ by: string; seq: number | null }> = [];
  for (const [by, lines] of claims) {
    if (live.get(by)?.state !== 'up') continue;
    for (const l of lines) if (l.node === me) out.push({ by, seq: l.seq });
  }
  return out.sort((a, b) => a.by.localeCompare(b.by));
}

/** What DIR/halt says: null when there is none, else why the cluster was halted. */
export function haltRequested(text: string | null): string | null {
  return text === null ? null : text.trim() || 'halt';
}

// ------------------------------------------------------------------------------ view

/**
 * A node's groups no longer count as running: it left, it was fenced, or it is stale and
 * guarantees its self-fence (the watchdog kills its groups within timeout/2 of its last pet).
 */
export function isReleased(state: NodeState, selfFence: boolean): boolean {
  return state === 'left' || state === 'fenced' || (state === 'stale' && selfFence);
}

export interface ViewFns {
  readonly isReleased: (state: NodeState, selfFence: boolean) => boolean;
}

/** Every known node as decide() sees it: this node from its engine, peers from their last clstat. */
export function nodeViews(
  me: string,
  mine: ReadonlyMap<string, Instance>,
  live: ReadonlyMap<string, LivenessView>,
  lastGroups: ReadonlyMap<string, ReadonlyMap<string, Instance>>,
  isFenced: (node: string) => boolean,
  selfFence: boolean,
  fns: ViewFns = { isReleased },
): Map<string, NodeView> {
  const nodes = new Map<string, NodeView>();
  nodes.set(me, { name: me, state: 'up', released: false, groups: mine });
  for (const [n, lv] of live) {
    const state: NodeState = isFenced(n) ? 'fenced' : lv.state;
    nodes.set(n, { name: n, state, released: fns.isReleased(state, selfFence), groups: lastGroups.get(n) ?? new Map() });
  }
  return nodes;
}

/**
 * Every peer that may be alive — up, or unknown (unreadable for a while) — was read this cycle
 * (see View.complete): a plan cannot have stood unchallenged if a competitor could not be seen.
 */
export function readComplete(live: ReadonlyMap<string, LivenessView>, seen: ReadonlyMap<string, PeerObservation>, isFenced: (node: string) => boolean): boolean {
  for (const [n, v] of live) {
    if ((v.state !== 'up' && v.state !== 'unknown') || isFenced(n)) continue;
    if ((seen.get(n)?.seq ?? null) === null) return false;
  }
  return true;
}

/** Monitors that count for quorum: this one plus every peer that heartbeats (seen, up, not fenced). */
export function liveCount(live: ReadonlyMap<string, LivenessView>, isFenced: (node: string) => boolean): number {
  let n = 1;
  for (const [name, v] of live) if (v.state === 'up' && v.seq !== null && !isFenced(name)) n++;
  return n;
}

/** Just started: plan nothing for 2 cycles + visibility lag, so that peers are seen first. */
export function isSettling(now: number, startedAt: number, cycleMs: number, visibilityLagMs: number): boolean {
  return now - startedAt < 2 * cycleMs + visibilityLagMs;
}

/** The plan window: a plan must stand unchallenged this long before testing. */
export function planWindowMs(cycleMs: number, visibilityLagMs: number): number {
  return 2 * cycleMs + 2 * visibilityLagMs;
}

export function decideConfig(s: { readonly cycleMs: number; readonly visibilityLagMs: number; readonly balance: number; readonly failCooldownCycles: number }): DecideConfig {
  return {
    cycleMs: s.cycleMs,
    planWindowMs: planWindowMs(s.cycleMs, s.visibilityLagMs),
    balance: s.balance,
    failCooldownMs: s.failCooldownCycles * s.cycleMs,
    visibilityLagMs: s.visibilityLagMs,
    maxPlansPerCycle: MAX_PLANS_PER_CYCLE,
  };
}

/**
 * New plans per cycle and node. Each plan leads to a test and a start in the next cycles, and a
 * tell costs up to a few ms of the event loop on a loaded machine: 64 keep a cycle's tells well
 * inside timeout/2 while a node still takes on hundreds of groups a second at a 250 ms cycle.
 */
export const MAX_PLANS_PER_CYCLE = 64;

// ------------------------------------------------------------------------------ self-fence

/** The watchdog fires after timeout/2 without a pet: from then on local groups are being killed. */
export function watchdogMayHaveFired(now: number, lastPet: number, timeoutMs: number): boolean {
  return now > watchdogFiresAt(lastPet, timeoutMs);
}

/** The earliest moment the watchdog may fire, unless petted again (the monitor's clock). */
export function watchdogFiresAt(lastPet: number, timeoutMs: number): number {
  return lastPet + timeoutMs / 2;
}

/**
 * The latest moment a clstat may land (the store abandons it after): while it claims running
 * groups, the watchdog's bound — a freeze (SIGSTOP, a VM pause) that holds the write back past it
 * would let it land after the watchdog killed them. None when it claims nothing.
 */
export function publishDeadline(claimsGroups: boolean, selfFence: boolean, lastPet: number, timeoutMs: number): number | undefined {
  return claimsGroups && selfFence ? watchdogFiresAt(lastPet, timeoutMs) : undefined;
}

export interface SelfFenceInput {
  readonly now: number;
  /** When the previous cycle ended. */
  readonly lastCycleEnd: number;
  readonly lastPet: number;
  readonly lastPublishOk: number;
  readonly timeoutMs: number;
}

export interface SelfFenceState {
  /** The monitor was frozen (no cycle for timeout/2), or the watchdog may have fired. */
  readonly frozen: boolean;
  /** clstat could not be published for timeout/2. */
  readonly publishFailing: boolean;
  /** Stop local groups, plan nothing, fence nobody this cycle. */
  readonly selfFence: boolean;
}

/** At the start of a cycle: must this node self-fence (stop its groups and rejoin)? */
export function selfFenceState(s: SelfFenceInput): SelfFenceState {
  const frozen = s.now - s.lastCycleEnd > s.timeoutMs / 2 || watchdogMayHaveFired(s.now, s.lastPet, s.timeoutMs);
  const publishFailing = s.now - s.lastPublishOk > s.timeoutMs / 2;
  return { frozen, publishFailing, selfFence: frozen || publishFailing };
}

/**
 * At the end of a cycle: pet the watchdog, or not. Not when the monitor was frozen during this
 * cycle (its view predates the gap; the next cycle self-fences), and not while clstat cannot be
 * published (peers see no heartbeat: let the watchdog fire).
 */
export function petAfterCycle(s: { readonly selfFence: boolean; readonly cycleEnd: number; readonly now: number; readonly lastPet: number; readonly lastPublishOk: number; readonly timeoutMs: number }): 'pet' | 'frozen-during-cycle' | 'publish-failing' {
  if (!s.selfFence && watchdogMayHaveFired(s.cycleEnd, s.lastPet, s.timeoutMs)) return 'frozen-during-cycle';
  if (s.now - s.lastPublishOk <= s.timeoutMs / 2) return 'pet';
  return 'publish-failing';
}

/** Never start a process while the watchdog may be about to (or did) self-fence us, or after leaving. */
export function spawnRefused(now: number, lastPet: number, timeoutMs: number, stopped: boolean): boolean {
  return now - lastPet > timeoutMs / 2 || stopped;
}

/** While self-fenced, a published clstat claims no groups (and the recorded groups are killed). */
export function publishFenced(left: boolean, selfFence: boolean, now: number, lastPet: number, timeoutMs: number): boolean {
  return !left && selfFence && watchdogMayHaveFired(now, lastPet, timeoutMs);
}

// ------------------------------------------------------------------------------ fencing, leaving

/** Who fenced a node, and the `# fenced` line that says so. */
export interface FencedBy {
  readonly by: string;
  readonly line: FencedLine;
}

/**
 * The peers that count as fenced here: fenced by this node (`own`), or named in any other node's
 * `# fenced` line — the fencer publishes its successes so that every node, not only the fencer,
 * releases a dead node's groups when no self-fence is guaranteed. A claim holds while the target's
 * heartbeat seq is still the one it had when fenced: a new seq is a clean restart.
 */
export function fencedPeers(me: string, own: readonly FencedLine[], claims: ReadonlyMap<string, readonly FencedLine[]>, seqOf: (node: string) => number | null): Map<string, FencedBy> {
  const out = new Map<string, FencedBy>();
  const add = (by: string, lines: readonly FencedLine[]): void => {
    for (const line of lines) {
      if (line.node === me || line.node === by || seqOf(line.node) !== line.seq) continue;
      const prev = out.get(line.node);
      if (!prev || prev.line.time < line.time) out.set(line.node, { by, line });
    }
  };
  add(me, own);
  for (const [by, lines] of claims) if (by !== me) add(by, lines);
  return out;
}

/** The peers list fenceTargets() takes: this node up, every peer as liveness sees it (or fenced). */
export function fencePeers(me: string, mySeq: number, live: ReadonlyMap<string, { readonly state: string; readonly seq: number | null }>, isFenced: (node: string) => boolean): FencePeer[] {
  return [{ name: me, state: 'up', seq: mySeq }, ...[...live].map(([name, v]) => ({ name, state: (isFenced(name) ? 'fenced' : v.state) as FencePeer['state'], seq: v.seq }))];
}

/**
 * For an orderly leave: who should take over each local group — the first live allowed node in
 * hactl order, else the least loaded live node, then the lowest name.
 */
export function successors(me: string, lastView: ReadonlyMap<string, NodeView>, local: ReadonlyMap<string, Instance>, wants: ReadonlyMap<string, HactlWant>): Array<{ group: string; node: string }> {
  const live = [...lastView.values()].filter((n) => n.name !== me && n.state === 'up');
  const load = (n: NodeView): number => [...n.groups.values()].filter(isActive).length;
  const out: Array<{ group: string; node: string }> = [];
  for (const [group, inst] of local) {
    if (!isActive(inst) || inst.level === 'stop') continue;
    const want = wants.get(group);
    if (!want || want.level === 'stop') continue;
    const allowed = want.nodes;
    const pool = allowed ? allowed.map((a) => live.find((n) => n.name === a)).filter((n): n is NodeView => !!n) : [...live].sort((a, b) => load(a) - load(b) || (a.name < b.name ? -1 : 1));
    if (pool[0]) out.push({ group, node: pool[0].name });
  }
  return out;
}

// ------------------------------------------------------------------------------ scheduling

/**
 * The gap before a cycle run for an event (a new plan to time, a finished test), and how many such
 * cycles may follow each other before the regular schedule resumes (no hot loop, whatever happens).
 */
export const EVENT_CYCLE_GAP_MS = 5;
export const MAX_EVENT_CYCLES = 3;

/** The shortest gap between two cycles (a cycle reads every peer's clstat). */
export function minCycleGapMs(cycleMs: number): number {
  return Math.max(5, cycleMs / 10);
}

/**
 * When (monotonic ms) something decide() waits for falls due: a peer's silence reaching the
 * timeout, a plan window's end, the end of a conflict backoff or a failed-test cooldown, a
 * designated planner's grace. Running a cycle then, not up to a cycle later, is what keeps a
 * failover near timeout + plan window.
 */
export function dueTimes(peers: ReadonlyMap<string, PeerMemory>, timeoutMs: number, memory: DecideMemory, cfg: DecideConfig): number[] {
  const out: number[] = [];
  for (const m of peers.values()) if (!m.left && m.seq !== null) out.push(m.lastChange + timeoutMs);
  for (const t of memory.planSince.values()) out.push(t + cfg.planWindowMs);
  for (const t of memory.testSince?.values() ?? []) out.push(t + (cfg.visibilityLagMs ?? 0));
  for (const t of memory.backoffUntil.values()) out.push(t);
  for (const f of memory.failed.values()) out.push(f.until);
  for (const t of memory.homelessSince?.values() ?? []) out.push(t + planGraceMs(cfg));
  return out;
}

/** A finished test in the local engine: decide() acts on it at once (test → wanted level, or stop). */
export function testSettled(local: ReadonlyMap<string, Instance>): boolean {
  for (const i of local.values()) if (i.level === TEST && isSettled(i.state)) return true;
  return false;
}

/**
 * Milliseconds to the next cycle: the period, or sooner at the first due time still ahead (a
 * couple of ms past it, so that it has come), but never less than the minimum gap.
 */
export function nextCycleDelayMs(now: number, periodMs: number, minGapMs: number, dues: readonly number[]): number {
  let at = now + periodMs;
  for (const d of dues) if (d > now && d + 2 < at) at = d + 2;
  return Math.max(minGapMs, at - now);
}
