// One monitor cycle as pure steps, each answering a batch of reads:
//   scan    DIR/halt, node folders, beats, claims   → halt (leave), or read the peers
//   peers   changed clstats, replica stats, claims  → liveness, fence claims; read changed copies
//   copies  the changed cltab/hactl copies          → replicate, view, quorum, decide, tells, fences
//   telling the engine's answers to the tells       → publish the clstat showing what was told
//   publish that clstat written                     → write hastat
//   hastat  written                                 → pet the watchdog (unless frozen), schedule
// Frozen or unable to publish when it began, the cycle stops local groups and plans nothing.

import { parseCltab, type Cltab } from '../config/cltab.js';
import { parseHactl } from '../config/hactl.js';
import { BEATS_DIR, latestBeats, parseBeatName, type Beat, type BeatClock } from '../cluster/beats.js';
import type { PeerMemory, PeerObservation } from '../cluster/liveness.js';
import type { Judged } from '../cluster/replicate.js';
import type { FileRead, FileSignature, StoreResult } from '../cluster/store.js';
import type { IoTag } from './events.js';
import { claimName, formatClaimHolder, latestClaims, parseClaimHolder, parseClaimName, CLAIMS_DIR, type Claim, type HolderView } from '../cluster/claims.js';
import { holdsResources, isActive, PLAN, type Action, type ClaimView, type NodeView } from './decide.js';
import { adoptAlertedText, observeCluster } from './alerts.js';
import { fenceTick, forgetRestarted } from './fence-duty.js';
import { frozenDuringLeave, startLeave, stopLevelProgress } from './leave.js';
import { releasingAfterWatchdog, requestPublish } from './publish.js';
import { copyPaths, judgeRead, replicate, sourceName, unchangedVerdict, type Replica } from './replication.js';
import { buildHastat } from './snapshot.js';
import { localInstances, shownInstances, type CopySeen, type Cycle, type MonitorState, type PeerContent } from './state.js';
import type { Draft, Turn } from './turn.js';
import { absorbPeerRead, readPeerClstat, type PeerRead, dueTimes, EVENT_CYCLE_GAP_MS, freshHandovers, handoverTtlMs, liveCount, MAX_EVENT_CYCLES, minCycleGapMs, nextCycleDelayMs, nodeViews, readComplete, type SelfFenceState, testSettled } from './view.js';

type Results = readonly StoreResult[];
export type CycleTag = Extract<IoTag, { kind: 'cycle' }>;

/** A cltab's group sets for decide(), built once per cltab (not every cycle: a thousand groups). */
type CltabSets = { cltabGroups: ReadonlySet<string>; testedGroups: ReadonlySet<string>; plannedGroups: ReadonlySet<string> };
const cltabSetCache = new WeakMap<Cltab, CltabSets>();
function cltabSets(cltab: Cltab | undefined): CltabSets {
  if (!cltab) return { cltabGroups: new Set(), testedGroups: new Set(), plannedGroups: new Set() };
  let sets = cltabSetCache.get(cltab);
  if (!sets) cltabSetCache.set(cltab, (sets = { cltabGroups: new Set(cltab.groups), testedGroups: new Set(cltab.tested ?? []), plannedGroups: new Set(cltab.planned ?? []) }));
  return sets;
}

const readAt = (r: Results, i: number): FileRead | null => {
  const x = r[i];
  return x?.op === 'read' ? x.read : null;
};
/** Why the read at `i` found nothing (missing, refused…). */
const readErrorAt = (r: Results, i: number): string | undefined => {
  const x = r[i];
  return x?.op === 'read' ? x.error : undefined;
};
const statAt = (r: Results, i: number): FileSignature | null => {
  const x = r[i];
  return x?.op === 'stat' ? x.sig : null;
};

// ------------------------------------------------------------------------------ scheduling

/** The next cycle in `ms` (replacing the pending one), unless this monitor stopped. */
export function schedule(t: Turn, ms: number): void {
  if (t.state.phase !== 'running') return;
  t.state.cycleTimerAt = t.now + ms;
  t.timer('cycle', t.now + ms);
  const next = nextBeatPollInMs(ms, t.state.settings.cycleMs);
  if (next !== null) t.timer('beat-poll', t.now + next);
}

/**
 * Between cycles DIR/beats is listed this often: a peer's silence is timed from when a heartbeat
 * was first seen, so seeing it within a third of a cycle instead of a whole one takes up to two
 * thirds of a cycle off every takeover, for two listings a cycle (no clstat read; a quarter
 * cycle cost 0.3 % more CPU per idle monitor at N=64 for a sixth of a cycle less).
 */
export function beatPollMs(cycleMs: number): number {
  return Math.max(EVENT_CYCLE_GAP_MS, cycleMs / 3);
}

/**
 * With the next cycle `untilCycleMs` away: the next poll in evenly spaced steps of at most ~one
 * poll period (10 % slack for the period's jitter), or null when the cycle itself is that close.
 * A fixed step left one poll a cycle in practice: a cycle takes a few ms, so after the first poll
 * the next cycle was always just under two steps away (up to two thirds of a cycle undated).
 */
export function nextBeatPollInMs(untilCycleMs: number, cycleMs: number): number | null {
  const steps = Math.ceil(untilCycleMs / (beatPollMs(cycleMs) * 1.1));
  return steps >= 2 ? untilCycleMs / steps : null;
}

export function pollBeats(t: Turn): void {
  const state = t.state;
  if (state.phase !== 'running' || state.cycle || state.leave || state.peers.size === 0) return;
  t.io({ kind: 'beat-poll' }, [{ op: 'list', dir: BEATS_DIR }]);
}

/** A poll's listing: note heartbeats that moved since the last cycle; poll again if a cycle is far. */
export function beatsPolled(t: Turn, results: Results | null): void {
  const state = t.state;
  if (state.phase !== 'running') return;
  const listing = results?.[0];
  if (listing?.op === 'list' && listing.names !== null) noteBeats(t, latestBeats(listing.names).latest);
  const next = state.cycle || state.cycleTimerAt === null ? null : nextBeatPollInMs(state.cycleTimerAt - t.now, state.settings.cycleMs);
  if (next !== null) t.timer('beat-poll', t.now + next);
}

/** settings.clockDrift when not set: 1,000 ppm. */
const CLOCK_DRIFT = 0.001;

/**
 * The beats of a listing (a poll's or the scan's, which came now) that show a peer's heartbeat
 * moved since the last cycle and any listing after it: noted with when they were made (dateBeat).
 */
function noteBeats(t: Turn, beats: ReadonlyMap<string, Beat>): void {
  const state = t.state;
  const drift = state.settings.clockDrift ?? CLOCK_DRIFT;
  let seen: Map<string, { seq: number; at: number }> | null = null;
  let clocks: Map<string, BeatClock> | null = null;
  for (const [node, beat] of beats) {
    if (node === t.me || state.peers.get(node)?.seq === beat.seq || state.beatSeen.get(node)?.seq === beat.seq) continue;
    const before = state.beatClocks.get(node);
    const dated = t.logic.dateBeat(before, beat, t.now, drift);
    seen ??= new Map(state.beatSeen);
    seen.set(node, { seq: beat.seq, at: dated.at });
    if (dated.clock === before) continue;
    clocks ??= new Map(state.beatClocks);
    if (dated.clock) clocks.set(node, dated.clock);
    else clocks.delete(node);
  }
  if (seen) state.beatSeen = seen;
  if (clocks) state.beatClocks = clocks;
}

/** Date each peer's heartbeat change from the listing that saw it first (by its stamp, when it has one). */
function datedByListings(prev: ReadonlyMap<string, PeerMemory>, peers: Map<string, PeerMemory>, seen: ReadonlyMap<string, { seq: number; at: number }>): void {
  for (const [node, polled] of seen) {
    const m = peers.get(node);
    const before = prev.get(node);
    if (!m || !before || m.seq !== polled.seq || before.seq === polled.seq || polled.at >= m.lastChange) continue;
    peers.set(node, { ...m, lastChange: polled.at });
  }
}

/** Something to act on at once (a local test finished): the next cycle now rather than a cycle later. */
export function cycleSoon(t: Turn): void {
  const state = t.state;
  if (state.phase !== 'running') return;
  if (state.cycle) {
    state.cycleAgain = true;
    return;
  }
  const wait = Math.max(0, state.lastCycleEnd + EVENT_CYCLE_GAP_MS - t.now);
  if (state.cycleTimerAt !== null && t.now + wait < state.cycleTimerAt) schedule(t, wait);
}

/**
 * The engine changed: the next cycle publishes it (one clstat write per cycle however many groups
 * changed); a finished test is decided on at once. While leaving (no more decisions), progress of
 * the stop levels is published as it happens.
 */
export function engineChanged(t: Turn): void {
  if (t.state.leave) {
    requestPublish(t, null);
    stopLevelProgress(t);
  }
  if (testSettled(localInstances(t.state)) && !decideOnLastReads(t)) cycleSoon(t);
}

/**
 * A finished test decided on at once, from the reads of the cycle that told it while they are
 * fresh (at most min(cycle/2, timeout/4) old): its claim was won on them moments ago, and what
 * is left of a takeover is this decision. A full cycle for it cost its scan and peer reads (4–8 ms
 * locally, 50–130 ms a cycle on GlusterFS) before `start`. Nothing new is read, so nothing new is
 * judged: no replication, no alert (an error must stand two reads), no stale call (liveness is as
 * read). Not after a freeze, while self-fencing or leaving, or with a cycle under way.
 */
function decideOnLastReads(t: Turn): boolean {
  const state = t.state;
  const settings = state.settings;
  const last = state.lastReads;
  if (state.phase !== 'running' || state.cycle || state.leave || !last || last.selfFence) return false;
  if (t.now - last.at > Math.min(settings.cycleMs / 2, settings.timeoutMs / 4)) return false;
  if (judgeFreeze(t).selfFence) return false;
  const id = state.cycleNo + 1;
  state.cycleNo = id;
  state.cycleAgain = false;
  state.cycle = { id, stage: 'telling', began: t.now, marks: `reads of ${Math.round(t.now - last.at)} ms ago, `, tells: 0, selfFence: false, names: last.names, listed: last.listed, paths: last.paths, verdicts: last.verdicts, toRead: [], reused: true };
  decide(t, state.cycle);
  return true;
}

function endCycle(t: Turn, failed: boolean): void {
  const state = t.state;
  const settings = state.settings;
  const began = (state.cycle?.reused ? state.lastReads?.began : state.cycle?.began) ?? t.now;
  // A reused cycle read nothing: a cycle already due (a peer's silence reaching timeout) still runs then.
  const pending = state.cycle?.reused ? state.cycleTimerAt : null;
  state.cycle = null;
  const again = state.cycleAgain && state.eventCycles < MAX_EVENT_CYCLES;
  state.eventCycles = again ? state.eventCycles + 1 : 0;
  if (failed) return schedule(t, settings.cycleMs);
  if (again) return schedule(t, EVENT_CYCLE_GAP_MS);
  // Counted from the cycle's beginning: heartbeats a period apart however slow the store is today
  // (counted from its end, a 200 ms cycle at a 250 ms period left ~450 ms between heartbeats).
  const period = began + settings.cycleMs * (0.9 + 0.2 * t.random()) - t.now;
  const next = nextCycleDelayMs(t.now, period, minCycleGapMs(settings.cycleMs), dueTimes(state.peers, settings.timeoutMs, state.decideMemory, t.logic.decideConfig(settings)));
  schedule(t, pending === null ? next : Math.min(next, Math.max(0, pending - t.now)));
}

/** A cycle that cannot go on (a batch failed, step threw): decide nothing, try again in a cycle. */
export function failCycle(t: Turn, error: string): void {
  if (!t.state.cycle) return;
  t.log('error', 'cycle failed; retrying next cycle', { err: error });
  endCycle(t, true);
}

/** Was this monitor frozen since its last cycle, or is its clstat not landing (view.ts selfFenceState)? */
function judgeFreeze(t: Turn): SelfFenceState {
  const state = t.state;
  return t.logic.selfFenceState({ now: t.now, lastCycleEnd: state.lastCycleEnd, lastPet: state.lastPet, lastPublishOk: state.lastPublishOk, timeoutMs: state.settings.timeoutMs });
}

/** Some group here is active (told a level and not stopped): what a self-fence is for. */
function holdsAnything(t: Turn): boolean {
  for (const i of shownInstances(t.state, t.now).values()) if (isActive(i)) return true;
  return false;
}

// ------------------------------------------------------------------------------ stages

export function beginCycle(t: Turn): void {
  const state = t.state;
  state.cycleTimerAt = null;
  // Due while a cycle decides on reused reads: it runs right after that one, with its reads.
  if (state.cycle?.reused) state.cycleAgain = true;
  if (state.phase !== 'running' || state.cycle) return;
  const id = state.cycleNo + 1;
  state.cycleNo = id;
  state.cycleAgain = false;
  state.cycle = { id, stage: 'scan', began: t.now, tells: 0, selfFence: false, names: [], listed: false, paths: [], verdicts: new Map(), toRead: [] };
  t.io({ kind: 'cycle', id, stage: 'scan' }, [{ op: 'read', path: 'halt' }, { op: 'list' }, { op: 'list', dir: 'claims' }, { op: 'list', dir: 'beats' }]);
}

/** A batch of this cycle's reads completed (a late answer to an abandoned cycle is dropped). */
export function cycleIo(t: Turn, tag: CycleTag, results: Results | null, error: string | undefined): void {
  const current = t.state.cycle;
  if (!current || current.id !== tag.id || current.stage !== tag.stage) return;
  if (!results) return failCycle(t, error ?? 'store operation failed');
  const cycle = { ...current, marks: `${current.marks ?? ''}${tag.stage} ${Math.round(t.now - current.began)}, ` };
  t.state.cycle = cycle;
  switch (tag.stage) {
    case 'scan':
      return scanned(t, cycle, results);
    case 'peers':
      return peersRead(t, cycle, results);
    case 'copies':
      return copiesRead(t, cycle, results);
    case 'claiming':
      return claimed(t, cycle, results);
  }
}

function scanned(t: Turn, cycle: Cycle, results: Results): void {
  const state = t.state;
  const settings = state.settings;
  const halt = t.logic.haltRequested(readAt(results, 0)?.text ?? null);
  if (halt !== null && !state.leave) {
    t.log('warn', 'cluster halt requested: stopping local groups and leaving', { halt });
    startLeave(t, 'halt', false);
    return endCycle(t, false);
  }
  // A listing that failed is not an empty cluster: read the peers known from the last one.
  const listing = results[1];
  const listed = listing?.op === 'list' ? listing.names : null;
  const names = listed ?? state.lastNames;
  if (listed === null) t.log('warn', 'cannot list the node folders; reading the peers known before', {});
  else state.lastNames = listed;
  // Also a freeze that hit the previous cycle after it began: that cycle did not pet, so the
  // watchdog may have fired and what the engine believes runs may be dead.
  const judged = judgeFreeze(t);
  const frozenMs = Math.round(Math.max(t.now - state.lastCycleEnd, t.now - state.lastPet));
  // A freeze matters for what runs here (the watchdog may have killed it, peers may run it now). A
  // node that runs nothing has nothing to fence: it only decides again from a fresh view (this
  // cycle's reads), as after a start (a busy machine's first cycles are often that slow).
  const fence = judged.frozen && !holdsAnything(t) ? { ...judged, frozen: false, selfFence: judged.publishFailing } : judged;
  if (fence.selfFence && settings.selfFence) releasingAfterWatchdog(t);
  if (fence.frozen) t.log('warn', 'this monitor was frozen: stopping local groups and rejoining', { frozenMs });
  else if (judged.frozen) t.log('info', 'this monitor was paused; nothing runs here, so nothing to fence', { frozenMs });
  // The freeze ate the leave's time too (its bound may not have fallen due yet).
  if (judged.frozen && state.leave) frozenDuringLeave(t);
  const paths = copyPaths(names);
  // Claims: the latest of each group; a claim's content is read once (it never changes).
  const claimListing = results[2];
  const claimNames = claimListing?.op === 'list' ? claimListing.names : null;
  const claimReads = claimNames === null ? [] : claimsToRead(state, [...latestClaims(claimNames).latest].map(([group, c]) => ({ group, name: c.name })));
  const beatListing = results[3];
  const beatNames = beatListing?.op === 'list' ? beatListing.names : null;
  const beats = beatNames === null ? undefined : latestBeats(beatNames).latest;
  if (beats) noteBeats(t, beats);
  const outdated = beatNames === null ? [] : ownOutdatedBeats(state, beatNames, t.me);
  // A group here at `plan` moves on to its test in this cycle, without a plan window when its
  // claim was won and every peer was read: read every peer then (a listing may lag behind a
  // read, and a store can lose a claim).
  const placing = [...localInstances(state).values()].some((i) => i.level === 'plan');
  const clstatReads = names.filter((n) => n !== t.me && (placing || !contentKnown(state, beats?.get(n), n, t.now)));
  const recheckEvery = Math.max(COPY_RECHECK_CYCLES, Math.ceil(paths.length / COPY_RECHECKS_PER_CYCLE));
  const statPaths = paths.filter((path, i) => !copyKnown(state, beats, path, (cycle.id + i) % recheckEvery === 0, t.now));
  state.cycle = { ...cycle, stage: 'peers', selfFence: fence.selfFence, names, listed: listed !== null, paths, claimNames, claimReads, clstatReads, statPaths, beats };
  const peers = clstatReads.map((n) => ({ op: 'read' as const, path: `nodes/${n}/clstat` }));
  const stats = statPaths.map((path) => ({ op: 'stat' as const, path }));
  const claims = claimReads.map((n) => ({ op: 'read' as const, path: `${CLAIMS_DIR}/${n}` }));
  const unlinks = outdated.map((name) => ({ op: 'unlink' as const, path: `${BEATS_DIR}/${name}` }));
  t.io({ kind: 'cycle', id: cycle.id, stage: 'peers' }, [...peers, ...stats, ...claims, ...unlinks]);
}

/** Claim contents read per cycle beyond those of homeless groups (a cold start of 1,000 groups made 1,000). */
const CLAIM_READS_PER_CYCLE = 64;

/**
 * The latest claims whose content is not known yet: every one of a group that runs nowhere in the
 * last view (this node may have to judge it now), and a few more (known before they matter).
 */
function claimsToRead(state: MonitorState, latest: ReadonlyArray<{ readonly group: string; readonly name: string }>): string[] {
  const placed = new Set<string>();
  for (const v of state.lastView.values()) for (const [g, i] of v.groups) if (isActive(i)) placed.add(g);
  const unknown = latest.filter((c) => !state.claimHolders.has(c.name));
  const later = unknown.filter((c) => placed.has(c.group)).slice(0, CLAIM_READS_PER_CYCLE);
  return [...unknown.filter((c) => !placed.has(c.group)), ...later].map((c) => c.name);
}

/**
 * Every replica copy is stat'ed at least this often, whatever the beats say (a copy edited by
 * hand), and no more than COPY_RECHECKS_PER_CYCLE of them a cycle: with 64 nodes' copies (130)
 * every 10 cycles, these stats were a fifth of an idle monitor's main-thread CPU; now each is rechecked every
 * 33 cycles there. Up to 19 nodes nothing changes.
 */
const COPY_RECHECK_CYCLES = 10;
const COPY_RECHECKS_PER_CYCLE = 4;

/**
 * Its clstat as last read is the one its beat announces (same gen), and its beat moved lately: no
 * need to read it. A beat that stood still for a while is checked against the clstat itself, so
 * staleness is only ever concluded from clstat reads (a listing a client caches — sshfs, NFS
 * attribute caching — then costs reads, never a false stale).
 */
function contentKnown(state: MonitorState, beat: Beat | undefined, node: string, now: number): boolean {
  if (beat === undefined || state.peerContent.get(node)?.gen !== beat.gen) return false;
  const memory = state.peers.get(node);
  // Moved since the last cycle (the beat, dated from its stamp, may be older than a listing's
  // sighting was): nothing stood still.
  if (memory?.seq != null && beat.seq > memory.seq) return true;
  const lastChange = memory?.lastChange ?? Number.NEGATIVE_INFINITY;
  return now - lastChange < Math.min(2 * state.settings.cycleMs, state.settings.timeoutMs / 2);
}

/**
 * A replica copy whose verdict stands without a stat this cycle: a peer's copy, settled and
 * judged, whose node's beat says it wrote no copy since the last stat. Admin copies, this node's
 * own, and the copies of a peer without a beat are stat'ed every cycle.
 */
function copyKnown(state: MonitorState, beats: ReadonlyMap<string, Beat> | undefined, path: string, recheck: boolean, now: number): boolean {
  const node = /^nodes\/([^/]+)\//.exec(path)?.[1];
  if (recheck || node === undefined || node === state.settings.node) return false;
  const beat = beats?.get(node);
  if (beat === undefined || state.peerCopies.get(node) !== beat.copies) return false;
  return settled(state.copies.get(path), now, state.settings.visibilityLagMs);
}

function settled(seen: CopySeen | undefined, now: number, visibilityLagMs: number): boolean {
  return !!seen?.sig && !!seen.judged && now - seen.since >= copySettleMs(visibilityLagMs);
}

const copySettleMs = (visibilityLagMs: number): number => 2000 + visibilityLagMs;

/**
 * This node's beats the listing shows that are older than its current one (a heartbeat that
 * failed half-way, an earlier run): removed. A newer one (an earlier run's, whose clstat was
 * lost) moves this run's seqs past it, or peers would read this node as silent.
 */
function ownOutdatedBeats(state: Draft, names: readonly string[], me: string): string[] {
  const current = state.beat.name === null ? null : parseBeatName(state.beat.name);
  const out: string[] = [];
  for (const name of names) {
    const b = parseBeatName(name);
    if (b?.node !== me || name === state.beat.name) continue;
    if (b.seq > state.seq) state.seq = b.seq;
    else if (current && b.seq < current.seq) out.push(name);
  }
  return out;
}

/** A peer's read as of its beat: the content last read (same gen), at the beat's seq. */
function atBeat(read: PeerRead, beat: Beat | undefined): PeerRead {
  if (!beat || read.seq === null || beat.seq <= read.seq) return read;
  return { ...read, seq: beat.seq, obs: { seq: beat.seq, left: read.obs.left } };
}

/**
 * This cycle's read of a peer. With a beat, its clstat must carry at least the beat's gen: an
 * older one (a frozen or lagging view of its folder) says nothing about what it runs now, so
 * the peer counts as unread (it may become unknown, never stale on that evidence).
 */
function peerReadOf(t: Turn, cycle: Cycle, results: Results, node: string, index: number | undefined, contents: Map<string, PeerContent>): { read: PeerRead; error: string | null } {
  const beat = cycle.beats?.get(node);
  if (index === undefined) return { read: atBeat(t.state.peerContent.get(node)!.read, beat), error: null };
  const text = readAt(results, index)?.text ?? null;
  const read = t.logic.readPeerClstat(text);
  if (read.seq === null) return { read, error: text === null ? (readErrorAt(results, index) ?? 'unreadable') : 'torn or without a header' };
  if (!beat) return { read, error: null };
  if (read.gen === null || read.gen < beat.gen) return { read: readPeerClstat(null), error: 'clstat older than its heartbeat' };
  contents.set(node, { gen: read.gen, read });
  return { read: atBeat(read, beat), error: null };
}

function peersRead(t: Turn, cycle: Cycle, results: Results): void {
  const state = t.state;
  const settings = state.settings;
  const now = t.now;
  const peerNames = cycle.names.filter((n) => n !== t.me);
  const kept = { lastGroups: new Map(state.lastGroups), fenceClaims: new Map(state.fenceClaims), staleClaims: new Map(state.staleClaims), handovers: new Map(state.handovers), pids: new Map(state.peerPids) };
  const seen = new Map<string, PeerObservation>();
  // Kept until a read works: an unknown node shows why it was last unreadable.
  const readErrors = new Map(state.readErrors);
  const reads = cycle.clstatReads ?? peerNames;
  const readIndex = new Map(reads.map((n, i) => [n, i]));
  const contents = new Map(state.peerContent);
  const ahead = new Map<string, Beat>();
  peerNames.forEach((n) => {
    const { read: r, error } = peerReadOf(t, cycle, results, n, readIndex.get(n), contents);
    if (error === null) readErrors.delete(n);
    else readErrors.set(n, error);
    seen.set(n, r.obs);
    absorbPeerRead(kept, n, r, now);
    if (r.alerted !== undefined) adoptAlertedText(state, r.alerted);
    // Read ahead of its beat (its writer died or stalled between the two renames): dated from the
    // clstat's own stamp, as a beat is, not from this read (min(2 cycles, timeout/2) after the
    // beat stood still: that much later a takeover came).
    const beat = cycle.beats?.get(n);
    if (readIndex.has(n) && error === null && beat && r.seq !== null && r.seq > beat.seq && r.inc !== undefined && r.mono !== undefined) ahead.set(n, { ...beat, seq: r.seq, inc: r.inc, stamp: r.mono });
  });
  if (ahead.size > 0) noteBeats(t, ahead);
  // A folder gone from a listing that worked is evidence: read as "no new heartbeat" (it may go
  // stale, its groups may move). After a failed listing it is only unread.
  const listed = new Set(cycle.names);
  if (cycle.listed) for (const [n, m] of state.peers) if (!listed.has(n) && m.seq !== null) seen.set(n, { seq: m.seq, left: m.left });
  const peers = t.logic.observe(state.peers, seen, now);
  datedByListings(state.peers, peers, state.beatSeen);
  state.beatSeen = new Map();
  for (const [n, m] of peers) if (!listed.has(n) && m.seq === null) peers.delete(n);
  for (const n of kept.fenceClaims.keys()) if (!peers.has(n)) kept.fenceClaims.delete(n);
  for (const n of kept.staleClaims.keys()) if (!peers.has(n)) kept.staleClaims.delete(n);
  for (const n of readErrors.keys()) if (!peers.has(n)) readErrors.delete(n);
  for (const n of contents.keys()) if (!peers.has(n)) contents.delete(n);
  for (const n of state.beatClocks.keys()) {
    if (peers.has(n)) continue;
    state.beatClocks = new Map([...state.beatClocks].filter(([k]) => peers.has(k)));
    break;
  }
  Object.assign(state, { peers, readErrors, peerContent: contents, lastSeen: seen, lastGroups: kept.lastGroups, fenceClaims: kept.fenceClaims, staleClaims: kept.staleClaims, handovers: kept.handovers, peerPids: kept.pids });
  const statPaths = cycle.statPaths ?? cycle.paths;
  absorbClaims(t, cycle, results, reads.length + statPaths.length);
  state.lastLive = t.logic.liveness(peers, now, settings.timeoutMs);
  const seqOf = (n: string): number | null => peers.get(n)?.seq ?? null;
  forgetRestarted(state, seqOf);
  state.fencedNow = t.logic.fencedPeers(t.me, [...state.fencing.fenced.values()], state.fenceClaims, seqOf);

  // Replication: a copy whose signature stood still keeps its verdict; the others are read.
  const copies = new Map(state.copies);
  const verdicts = new Map<string, Judged | null>();
  const toRead: string[] = [];
  const settleMs = copySettleMs(settings.visibilityLagMs);
  const statIndex = new Map(statPaths.map((path, i) => [path, reads.length + i]));
  for (const path of cycle.paths) {
    const i = statIndex.get(path);
    const v = i === undefined ? copies.get(path)!.judged : unchangedVerdict(copies, path, statAt(results, i), now, settleMs);
    if (v === undefined) toRead.push(path);
    else verdicts.set(path, v);
  }
  // Copies stat'ed as of these beats: a peer's next copy write shows as a new `copies`.
  const peerCopies = new Map<string, number>();
  for (const [n, b] of cycle.beats ?? []) {
    const both = statIndex.has(`nodes/${n}/cltab`) && statIndex.has(`nodes/${n}/hactl`);
    const before = state.peerCopies.get(n);
    if (both) peerCopies.set(n, b.copies);
    else if (before !== undefined) peerCopies.set(n, before);
  }
  state.peerCopies = peerCopies;
  state.copies = copies;
  state.cycle = { ...cycle, verdicts, toRead, stage: toRead.length ? 'copies' : 'telling' };
  if (toRead.length) t.io({ kind: 'cycle', id: cycle.id, stage: 'copies' }, toRead.map((path) => ({ op: 'read', path, consistent: true })));
  else decide(t, state.cycle);
}

function copiesRead(t: Turn, cycle: Cycle, results: Results): void {
  const copies = new Map(t.state.copies);
  const verdicts = new Map(cycle.verdicts);
  cycle.toRead.forEach((path, i) => verdicts.set(path, judgeRead(copies, path, sourceName(t.state.settings.root, path), readAt(results, i), readErrorAt(results, i))));
  t.state.copies = copies;
  t.state.cycle = { ...cycle, verdicts, stage: 'telling' };
  decide(t, t.state.cycle);
}

/** Load the winning configuration when it changed (a bad edit never replaces the last good one). */
function load(t: Turn, cltab: Replica, hactl: Replica): void {
  const state = t.state;
  const w = cltab.winner;
  if (w && w.hash !== state.cltab?.hash) {
    const r = parseCltab(w.text, w.source);
    if (r.ok) {
      state.cltab = { value: r.cltab, hash: w.hash };
      t.emit({ type: 'configure', cltab: r.cltab });
      t.log('info', 'cltab loaded', { source: w.source, groups: r.cltab.groups });
    }
  }
  const h = hactl.winner;
  if (h && h.hash !== state.hactl?.hash) {
    const r = parseHactl(h.text, h.source);
    if (r.ok) {
      state.hactl = { value: r.hactl, hash: h.hash };
      t.log('info', 'hactl loaded', { source: h.source, wants: [...r.hactl.wants.values()].map((x) => `${x.group} ${x.level}`) });
    }
  }
}

/** This cycle's claims listing and the claim contents read for it (a failed listing keeps the last). */
function absorbClaims(t: Turn, cycle: Cycle, results: Results, offset: number): void {
  const state = t.state;
  const holders = new Map(state.claimHolders);
  (cycle.claimReads ?? []).forEach((name, i) => {
    const h = parseClaimHolder(readAt(results, offset + i)?.text ?? '');
    if (h) holders.set(name, h);
  });
  if (cycle.claimNames === null || cycle.claimNames === undefined) {
    state.claimHolders = holders;
    return;
  }
  const { latest } = latestClaims(cycle.claimNames);
  const claims = new Map<string, Claim>();
  const unreadable = new Map<string, number>();
  const ours = (c: Claim | undefined): boolean => c?.holder?.node === t.me && c.holder.inc === state.inc;
  for (const [group, c] of latest) {
    const holder = holders.get(c.name) ?? null;
    claims.set(group, { group, epoch: c.epoch, name: c.name, holder });
    if (holder === null) unreadable.set(c.name, state.claimUnreadable.get(c.name) ?? t.now);
  }
  // Claims of this node's earlier runs: this run's seqs must exceed theirs, so that its clstats
  // (which show what it runs now) release them.
  for (const c of claims.values()) if (c.holder?.node === t.me && c.holder.inc !== state.inc) state.seq = Math.max(state.seq, c.holder.seq);
  // A listing that lags behind a claim this run won (created moments ago) does not roll it back.
  for (const [group, c] of state.claims) if (ours(c) && c.epoch > (claims.get(group)?.epoch ?? 0)) claims.set(group, c);
  // Keep what the listing still shows (older epochs too, until they are removed), and our own.
  const listed = new Set(cycle.claimNames);
  for (const [n, h] of holders) if (!listed.has(n) && !(h.node === t.me && h.inc === state.inc)) holders.delete(n);
  Object.assign(state, { claims, claimHolders: holders, claimUnreadable: unreadable });
}

/** Each group's latest claim as decide() sees it: who holds it, and whether it still stands. */
function claimViews(t: Turn, nodes: ReadonlyMap<string, NodeView>): Map<string, ClaimView> {
  const state = t.state;
  const out = new Map<string, ClaimView>();
  const local = shownInstances(state, t.now);
  for (const [group, c] of state.claims) {
    const h = c.holder;
    let view: HolderView | null = null;
    if (h !== null && h.node === t.me) {
      const i = local.get(group);
      view = { known: true, released: false, unknown: false, seq: state.seq, showsGroup: i !== undefined && isActive(i) };
    } else if (h !== null) {
      const n = nodes.get(h.node);
      const i = n?.groups.get(group);
      view = n ? { known: true, released: n.released, left: n.state === 'left', unknown: n.state === 'unknown', seq: state.peers.get(h.node)?.seq ?? null, showsGroup: i !== undefined && isActive(i) } : { known: false, released: true, unknown: false, seq: null, showsGroup: false };
    }
    const unreadableFor = h === null ? t.now - (state.claimUnreadable.get(c.name) ?? t.now) : 0;
    const mine = h !== null && h.node === t.me && h.inc === state.inc;
    out.set(group, { epoch: c.epoch, holder: h?.node ?? null, mine, released: t.logic.claimReleased(h, view, unreadableFor, state.settings.timeoutMs) });
  }
  return out;
}

/** Handovers from nodes that left recently enough that the heir can still act on them. */
function liveHandovers(t: Turn): Map<string, string> {
  const settings = t.state.settings;
  const { map, expired } = freshHandovers(t.state.handovers, t.now, handoverTtlMs(settings.timeoutMs, settings.cycleMs, settings.visibilityLagMs));
  if (expired.length) {
    const kept = new Map(t.state.handovers);
    for (const n of expired) kept.set(n, { ...kept.get(n)!, map: new Map() });
    t.state.handovers = kept;
  }
  return map;
}

function decide(t: Turn, cycle: Cycle): void {
  const state = t.state;
  const settings = state.settings;
  const now = t.now;
  const reused = cycle.reused ? state.lastReads : null;
  const cltab = reused?.cltab ?? replicate(t, 'cltab', cycle.verdicts);
  const hactl = reused?.hactl ?? replicate(t, 'hactl', cycle.verdicts);
  if (!reused) {
    load(t, cltab, hactl);
    state.lastReads = { at: now, began: cycle.began, selfFence: cycle.selfFence, names: cycle.names, listed: cycle.listed, paths: cycle.paths, verdicts: cycle.verdicts, cltab, hactl };
  }

  const isFenced = (n: string): boolean => state.fencedNow.has(n);
  const nodes = nodeViews(t.me, shownInstances(state, now), state.lastLive, state.lastGroups, isFenced, settings.selfFence, { isReleased: t.logic.isReleased });
  const count = liveCount(state.lastLive, isFenced);
  const leftInOrder = [...state.lastLive.values()].filter((v) => v.state === 'left').length;
  const verdict = t.logic.quorum(count, settings.quorum, state.quorumMemory, leftInOrder);
  if (verdict.ok !== state.quorumOk) t.log(verdict.ok ? 'info' : 'warn', verdict.ok ? 'quorum' : 'quorum lost: stopping local groups', { live: count, reason: verdict.reason });
  state.quorumOk = verdict.ok;
  state.quorumMemory = verdict.memory;
  // The poison pill: a live peer holds this node stale; it may be taking our groups now.
  const staleBy = t.logic.declaredStaleBy(t.me, state.staleClaims, state.lastLive);
  const poisoned = staleBy.map((c) => `${c.by} (${c.seq === null ? 'it never read this node' : `its view of this node stopped at seq ${c.seq}`})`).join(', ');
  if (poisoned !== state.poisoned) {
    if (poisoned) t.log('error', 'declared stale by a live peer: stopping local groups until it sees this node again', { by: staleBy });
    else if (state.poisoned) t.log('info', 'no peer holds this node stale any more', {});
    state.poisoned = poisoned;
  }
  const effective = verdict.ok && !cycle.selfFence && !state.leave && !poisoned;
  const sets = cltabSets(state.cltab?.value);
  const decision = t.logic.decide(
    {
      me: t.me,
      nodes,
      wants: state.hactl?.value.wants ?? new Map(),
      cltabGroups: sets.cltabGroups,
      testedGroups: sets.testedGroups,
      plannedGroups: sets.plannedGroups,
      configVersion: `${state.cltab?.hash ?? ''}:${state.hactl?.hash ?? ''}`,
      quorum: effective,
      memory: state.decideMemory,
      settling: t.logic.isSettling(now, state.startedAt, settings.cycleMs, settings.visibilityLagMs),
      handovers: liveHandovers(t),
      // Not when the node folders could not be listed (peers unknown), nor when our last clstat
      // did not land (peers cannot have seen our plan): a node cut off from the store must not
      // take its silence for a plan that stood unchallenged.
      complete: cycle.listed && !state.lastPublishFailed && readComplete(state.lastLive, state.lastSeen, isFenced),
      claims: claimViews(t, nodes),
    },
    t.logic.decideConfig(settings),
    now,
    t.random,
  );
  state.decideMemory = decision.memory;
  state.lastView = nodes;
  const actions = state.leave ? [] : decision.actions;
  const claiming = actions.flatMap((a) => (a.claim !== undefined ? [{ group: a.group, level: a.level, reason: a.reason, claim: a.claim, unclaimed: a.unclaimed ?? a.level }] : []));
  const tells = actions.filter((a) => a.claim === undefined);
  const loggedNotes = new Map(state.loggedNotes);
  for (const n of decision.notes) {
    if (loggedNotes.get(n.group) !== n.note) t.log('debug', 'decide: no action', { group: n.group, note: n.note });
    loggedNotes.set(n.group, n.note);
  }
  state.loggedNotes = loggedNotes;
  if (!state.leave && !cycle.selfFence) fenceTick(t, nodes);
  const settling = t.logic.isSettling(now, state.startedAt, settings.cycleMs, settings.visibilityLagMs);
  if (!reused) observeCluster(t, { quorumOk: verdict.ok, live: count, configErrors: [...cltab.errors, ...hactl.errors], ready: !settling && !cycle.selfFence && !state.leave && !poisoned && readComplete(state.lastLive, state.lastSeen, isFenced) });

  const errors = [...cltab.errors, ...hactl.errors, ...decision.errors, ...(state.publishDegraded ? [state.publishDegraded] : [])];
  if (errors.join('\n') !== state.loggedErrors) {
    if (errors.length) t.log('error', 'configuration problems', { errors });
    state.loggedErrors = errors.join('\n');
  }
  const why = effective ? 'quorum' : !verdict.ok ? `no quorum (${verdict.reason})` : cycle.selfFence ? 'self-fencing' : poisoned ? `declared stale by ${poisoned}` : 'leaving';
  state.lastDecision = { cycle: cycle.id, actions: decision.actions, notes: decision.notes, errors, effective, why };
  state.hastatInputs = { quorum: verdict, nodes, errors, notes: decision.notes };
  if (claiming.length === 0) return tellAll(t, tells);
  // Plans that claim first: the store says who won; only winners (and failed creates, which fall
  // back to the plan window) are told. The seq is that of the next clstat, written after the tell.
  const seq = state.seq + 1;
  state.cycle = { ...cycle, stage: 'claiming', claiming, claimSeq: seq, waiting: tells, tells: 0 };
  const text = formatClaimHolder({ node: t.me, inc: state.inc, seq });
  t.io({ kind: 'cycle', id: cycle.id, stage: 'claiming' }, claiming.map((c) => ({ op: 'create', path: `${CLAIMS_DIR}/${claimName(c.group, c.claim)}`, text })));
}

/** The claims of this cycle were created (or not): tell the winners' plans and everything else. */
function claimed(t: Turn, cycle: Cycle, results: Results): void {
  const state = t.state;
  const seq = cycle.claimSeq ?? state.seq + 1;
  const tells = [...(cycle.waiting ?? [])];
  const gc: string[] = [];
  const holders = new Map(state.claimHolders);
  const claims = new Map(state.claims);
  (cycle.claiming ?? []).forEach((c, i) => {
    const r = results[i];
    const name = claimName(c.group, c.claim);
    if (r?.op !== 'create' || state.leave) return;
    if (r.exists) return t.log('info', 'claim lost: another node placed the group first', { group: c.group, claim: name });
    if (r.error !== null) {
      t.log('warn', 'cannot create a claim; planning with the plan window instead', { group: c.group, claim: name, err: r.error });
      return tells.push({ type: 'tell', group: c.group, level: c.unclaimed ?? c.level, reason: `${c.reason}; claim failed${c.unclaimed === PLAN ? ', plan window' : ''}` });
    }
    // A clstat formatted since the claim was made would not show the group: peers may already take
    // the claim for released. Leave it so (it is), and do not plan.
    if (state.seq >= seq) return t.log('warn', 'claim won too late (a clstat went out meanwhile): not planning', { group: c.group, claim: name });
    const holder = { node: t.me, inc: state.inc, seq };
    holders.set(name, holder);
    claims.set(c.group, { group: c.group, epoch: c.claim, name, holder });
    // Epochs before the previous one can go: a listing that misses the previous one shows them too.
    for (const n of cycle.claimNames ?? []) {
      const p = parseClaimName(n);
      if (p && p.group === c.group && p.epoch <= c.claim - 2) gc.push(n);
    }
    tells.push({ type: 'tell', group: c.group, level: c.level, reason: `${c.reason}; claim ${name} won` });
  });
  Object.assign(state, { claimHolders: holders, claims });
  if (gc.length) t.io({ kind: 'claims-gc' }, gc.map((n) => ({ op: 'unlink', path: `${CLAIMS_DIR}/${n}` })));
  tellAll(t, tells);
}

/** Tell the engine this cycle's actions; the cycle publishes once all are answered. */
function tellAll(t: Turn, tells: readonly Action[]): void {
  const state = t.state;
  const cycle = state.cycle!;
  const acquiring = tells.filter((a) => holdsResources({ level: a.level, state: 'STARTING' })).map((a) => a.group);
  if (acquiring.length) t.emit({ type: 'recordStops', groups: acquiring });
  for (const a of tells) t.emit({ type: 'tell', group: a.group, level: a.level, reason: a.reason, cycle: cycle.id });
  state.cycle = { ...cycle, stage: 'telling', tells: tells.length };
  if (tells.length === 0) publishCycle(t);
}

/**
 * The engine answered a tell of this cycle. Once all are answered (their engine changes were
 * handled before), the cycle publishes: its clstat shows what it told, so a new plan is out
 * before the next cycle starts timing its window.
 */
export function toldInCycle(t: Turn, id: number | undefined): void {
  const cycle = t.state.cycle;
  if (!cycle || cycle.id !== id || cycle.stage !== 'telling' || cycle.tells === 0) return;
  t.state.cycle = { ...cycle, tells: cycle.tells - 1 };
  if (cycle.tells === 1) publishCycle(t);
}

function publishCycle(t: Turn): void {
  const cycle = t.state.cycle!;
  t.state.cycle = { ...cycle, stage: 'publish', marks: `${cycle.marks ?? ''}told ${Math.round(t.now - cycle.began)}, ` };
  requestPublish(t, { kind: 'cycle', id: cycle.id });
}

/**
 * The clstat carrying this cycle's decisions is out: the cycle ends and the watchdog is petted.
 * The hastat (a derived view for monitoring) is written beside it and never holds the heartbeat
 * back: a slow hastat write is skipped over, not waited for.
 */
export function cyclePublished(t: Turn, id: number): void {
  const state = t.state;
  const cycle = state.cycle;
  if (!cycle || cycle.id !== id || cycle.stage !== 'publish') return;
  const inputs = state.hastatInputs;
  if (!state.hastatWriting && inputs && t.now - state.lastHastatAt >= hastatEveryMs(state.settings, state.cltab?.value.groups.length ?? 0, state.peers.size + 1)) {
    state.lastHastat = buildHastat(t, inputs.quorum, inputs.nodes, inputs.errors, inputs.notes);
    state.hastatWriting = true;
    state.lastHastatAt = t.now;
    t.io({ kind: 'hastat' }, [{ op: 'writeJson', path: t.own('hastat'), value: state.lastHastat }]);
  }
  state.lastCycleEnd = t.now;
  // Frozen (or stalled) after this cycle began: its view and decisions predate the gap, and the
  // watchdog may already have killed our groups. Petting now would hide the freeze from the next
  // cycle, which would then keep claiming (and respawn) groups a peer has taken over.
  const judged = t.logic.petAfterCycle({ selfFence: cycle.selfFence, cycleEnd: t.now, now: t.now, lastPet: state.lastPet, lastPublishOk: state.lastPublishOk, timeoutMs: state.settings.timeoutMs });
  const petting = judged === 'frozen-during-cycle' && !holdsAnything(t) ? 'pet' : judged;
  const answers = `${cycle.marks ?? ''}published ${Math.round(t.now - cycle.began)}`;
  if (petting === 'frozen-during-cycle') t.log('warn', 'frozen during a cycle: not petting the watchdog; the next cycle self-fences', { sincePetMs: Math.round(t.now - state.lastPet), cycleMs: Math.round(t.now - cycle.began), answers });
  else t.log('debug', 'cycle done', { cycle: cycle.id, answers });
  if (petting === 'pet') {
    pet(t);
    if (!state.readySent) {
      state.readySent = true;
      t.emit({ type: 'ready', status: `peerha monitor ${t.me} joined ${state.settings.root}` });
    }
  }
  endCycle(t, false);
}

/**
 * How often the hastat is rewritten: every cycle, and with many groups or nodes every few (a view
 * of 1,000 groups took ~50 ms to build: every 250 ms cycle, a fifth of a core; at 64 nodes the view
 * is 15 KB of JSON and six file operations a cycle, on an idle monitor's budget of 1 % of a core).
 * Monitoring reads it at most every second or so anyway; `peerha plan` wants it younger than
 * `timeout`, so for nodes it is never left more than timeout/2 old.
 */
export function hastatEveryMs(settings: { readonly cycleMs: number; readonly timeoutMs: number }, groups: number, nodes: number): number {
  const forNodes = Math.min(Math.ceil(nodes / HASTAT_NODES_PER_CYCLE), Math.floor(settings.timeoutMs / (2 * settings.cycleMs)));
  const every = Math.max(Math.ceil(groups / 250), forNodes);
  return every <= 1 ? 0 : settings.cycleMs * (every - 0.5);
}

/** Up to this many nodes the hastat goes out every cycle (above, every ceil(nodes/this) cycles). */
const HASTAT_NODES_PER_CYCLE = 32;

/** The background hastat write finished. */
export function hastatWritten(t: Turn, results: Results | null, error: string | undefined): void {
  t.state.hastatWriting = false;
  const r = results?.[0];
  const err = r?.op === 'writeJson' ? r.error : (error ?? 'store operation failed');
  if (err !== null) t.log('warn', 'cannot write hastat', { err });
}

/**
 * Pet the watchdog as of the last clstat that went out, not as of now: peers time this node from
 * its last heartbeat, so the watchdog must fire timeout/2 after that (then its stop entries end
 * before peers take over at timeout), however long after the publish this pet comes.
 */
export function pet(t: Turn): void {
  const asOf = Math.min(t.now, t.state.lastPublishOk);
  t.state.lastPet = asOf;
  if (t.state.watchdog) t.emit({ type: 'watchdog', action: 'pet', limitMs: Math.floor(t.state.settings.timeoutMs / 2), ageMs: Math.max(0, Math.round(t.now - asOf)) });
}
