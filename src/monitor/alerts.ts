// Which cluster events are alerted, and by whom (pure; the driver runs the commands). Each event
// is alerted once for the cluster:
// - group events (group_started/stopped/failed, failover, health_failed) by the node where the
//   group runs or ran, from its own engine's changes;
// - fence_failed by the fencer, when an attempt fails;
// - node, quorum and configuration events by the observer: the lowest-named live node (the
//   fencer's rule). It alerts the difference between its view now and the "alerted view" — the
//   cluster as last alerted — and publishes that view (`# alerted` in its clstat). Every other
//   node mirrors the newest alerted view it read, so when the observer dies (or a lower node
//   joins) the next observer takes it over and alerts only what was not alerted yet.

import type { AlertEvent } from '../config/alerts.js';
import { isRunning, isSettled } from '../config/clstat.js';
import type { GroupStatus } from '../init/engine.js';
import { PLAN, STOP, TEST } from './decide.js';
import { observerOf } from './fencing.js';
import type { AlertedView } from './state.js';
import type { Draft, Turn } from './turn.js';
import { fencePeers } from './view.js';

export interface Alert {
  readonly event: AlertEvent;
  /** The node the event is about (group events: where the group runs or ran). */
  readonly node: string;
  readonly group: string;
  readonly level: string;
  /** failover: where the group ran before. */
  readonly fromNode: string;
  /** One human sentence. */
  readonly desc: string;
  /** Per emitting node, strictly increasing, also across restarts (not contiguous). */
  readonly sequence: number;
  /** RFC 3339: when the event was seen. */
  readonly time: string;
}

export type NodeAlertState = 'up' | 'stale' | 'left' | 'fenced';

/** Alerts per heartbeat seq: sequence = seq × this + n (a cycle raising more only borrows ahead). */
const PER_SEQ = 1000;

/**
 * The first sequence of a run whose previous run's last clstat had `seq`: that run's alerts used
 * at most seq + 1 (its last write that worked, plus one) times PER_SEQ plus what it raised after it.
 */
export function firstSequenceAfter(seq: number): number {
  return (seq + 2) * PER_SEQ;
}

function raise(t: Turn, a: Omit<Alert, 'sequence' | 'time' | 'group' | 'level' | 'fromNode'> & Partial<Pick<Alert, 'group' | 'level' | 'fromNode'>>): void {
  const state = t.state;
  // Based on the last clstat that landed, not on seq: seq also counts writes that failed (a
  // partition), which the next run cannot see, and it would number its alerts below these.
  const sequence = Math.max(state.alertSeq + 1, (state.landedSeq + 1) * PER_SEQ);
  state.alertSeq = sequence;
  t.emit({ type: 'alert', alert: { group: '', level: '', fromNode: '', ...a, sequence, time: t.wallIso } });
}

// ------------------------------------------------------------------------------ the alerted view

/** `# alerted gen=N quorum=ok|lost|- config=HASH|- nodes=n1:up,n2:stale` (after `# alerted `). */
export function formatAlerted(v: AlertedView): string {
  const nodes = [...v.nodes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([n, s]) => `${n}:${s}`);
  return `gen=${v.gen} quorum=${v.quorum === null ? '-' : v.quorum ? 'ok' : 'lost'} config=${v.config || '-'} nodes=${nodes.join(',')}`;
}

const NODE_STATES: readonly string[] = ['up', 'stale', 'left', 'fenced'];

export function parseAlerted(text: string): AlertedView | null {
  const kv = new Map(text.trim().split(/\s+/).map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as const));
  const gen = Number(kv.get('gen'));
  if (!Number.isSafeInteger(gen) || gen < 1) return null;
  const q = kv.get('quorum');
  const nodes = new Map<string, NodeAlertState>();
  for (const part of (kv.get('nodes') ?? '').split(',')) {
    const [n, s] = part.split(':');
    if (n && s && NODE_STATES.includes(s)) nodes.set(n, s as NodeAlertState);
  }
  const config = kv.get('config') ?? '-';
  return { gen, quorum: q === 'ok' ? true : q === 'lost' ? false : null, config: config === '-' ? '' : config, nodes };
}

/** A peer's published alerted view, newer than ours: ours now (mirrored, or taken over). */
export function adoptAlerted(state: { alerted: AlertedView }, seen: AlertedView | null): void {
  if (seen && seen.gen > state.alerted.gen) state.alerted = seen;
}

/**
 * adoptAlerted of a published `# alerted` text, parsed only when its gen is newer than ours: every
 * peer's clstat carries the view every cycle, and it names every node (O(N²) a cycle at N=64).
 */
export function adoptAlertedText(state: { alerted: AlertedView }, text: string): void {
  const gen = /(?:^|\s)gen=(\d+)(?:\s|$)/.exec(text);
  if (gen && Number(gen[1]) <= state.alerted.gen) return;
  adoptAlerted(state, parseAlerted(text));
}

// ------------------------------------------------------------------------------ node, quorum, config

export interface ClusterNow {
  readonly quorumOk: boolean;
  /** Live, expected nodes (for the quorum sentence). */
  readonly live: number;
  readonly configErrors: readonly string[];
  /** Trustworthy enough to alert on: not settling, every live peer read, not self-fencing or leaving. */
  readonly ready: boolean;
}

/**
 * The node states the observer alerts on: this node up, peers as liveness sees them. A peer only
 * reads as up once its heartbeat moved while we watched (liveness takes a peer first seen for up
 * for a whole timeout, also a dead one): until then, and while unknown, it stays as alerted.
 */
function nodeStates(state: Draft, me: string): { nodes: Map<string, NodeAlertState>; unsure: boolean } {
  const out = new Map<string, NodeAlertState>([[me, 'up']]);
  const first = new Map<string, number | null>();
  let unsure = false;
  for (const [n, v] of state.lastLive) {
    // (-1: it moved; null: not read yet, so the first seq read is its first.)
    const firstSeq = state.firstSeqs.get(n) ?? v.seq;
    const moved = firstSeq === -1 || (v.seq !== null && firstSeq !== null && v.seq !== firstSeq);
    first.set(n, moved ? -1 : firstSeq);
    if (state.fencedNow.has(n)) out.set(n, 'fenced');
    else if (v.state === 'up' && moved) out.set(n, 'up');
    else if (v.state === 'stale' || v.state === 'left') out.set(n, v.state);
    else {
      unsure = true;
      const was = state.alerted.nodes.get(n);
      if (was) out.set(n, was);
    }
  }
  state.firstSeqs = first;
  return { nodes: out, unsure };
}

/** The event a node's move from `was` to `now` raises (null: none). */
export function nodeEvent(was: NodeAlertState | undefined, now: NodeAlertState): AlertEvent | null {
  if (was === now) return null;
  // Never announced, already gone (a new node's folder, seen before its first heartbeat): nothing to say.
  if (was === undefined && now === 'left') return null;
  if (now === 'up') return 'node_up';
  if (now === 'stale') return was === 'up' ? 'node_stale' : null;
  return now === 'left' ? 'node_left' : 'node_fenced';
}

const NODE_DESC: Record<string, (n: string) => string> = {
  node_up: (n) => `Node ${n} is up: it heartbeats in the shared directory.`,
  node_stale: (n) => `Node ${n} is stale: its heartbeat stopped; its groups may be taken over.`,
  node_left: (n) => `Node ${n} left the cluster in order.`,
  node_fenced: (n) => `Node ${n} was fenced.`,
};

/**
 * Once a cycle, after quorum and decide: the observer alerts what changed since the alerted
 * view and publishes the new view; any other node only mirrors (see adoptAlerted).
 */
export function observeCluster(t: Turn, now: ClusterNow): void {
  const state = t.state;
  // Every node follows its peers' first heartbeats: one that becomes the observer knows them.
  const { nodes, unsure } = nodeStates(state, t.me);
  const peers = fencePeers(t.me, state.seq, state.lastLive, (n) => state.fencedNow.has(n));
  if (observerOf(peers) !== t.me || !now.ready) return;
  const prev = state.alerted;
  for (const [n, s] of [...nodes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const event = nodeEvent(prev.nodes.get(n), s);
    if (event === null) continue;
    const how = event === 'node_fenced' ? state.fencing.last.get(n) : undefined;
    raise(t, { event, node: n, desc: NODE_DESC[event]!(n).replace(/\.$/, how ? ` (${how.method ?? 'manual'} by ${how.fencer}).` : '.') });
  }
  // Nodes gone from the listing (folder removed) are dropped from the view without an alert.
  // Quorum counts a peer first seen as live: judged only once every peer is known.
  const quorum = unsure && prev.quorum !== null ? prev.quorum : now.quorumOk;
  if (prev.quorum !== null && prev.quorum !== quorum) {
    raise(t, { event: quorum ? 'quorum_regained' : 'quorum_lost', node: t.me, desc: quorum ? `Quorum regained: ${now.live} nodes live.` : `Quorum lost: ${now.live} node${now.live === 1 ? '' : 's'} live; groups stop until it returns.` });
  }
  // Problems that stood two cycles: a file caught half-written by one read is no rejection.
  const seen = now.configErrors.length ? configHash(now.configErrors) : '';
  const config = seen === state.configSeen ? seen : prev.config;
  state.configSeen = seen;
  if (config !== '' && config !== prev.config) {
    const first = now.configErrors[0]!.replace(/[\r\n]+/g, ' ').replace(/\.$/, '');
    raise(t, { event: 'config_rejected', node: t.me, desc: `Configuration rejected: ${first}${now.configErrors.length > 1 ? ` (and ${now.configErrors.length - 1} more)` : ''}.` });
  }
  const changed = config !== prev.config || quorum !== prev.quorum || nodes.size !== prev.nodes.size || [...nodes].some(([n, s]) => prev.nodes.get(n) !== s);
  if (changed) state.alerted = { gen: prev.gen + 1, quorum, config, nodes };
}

/** FNV-1a (hex) of the error texts: whether the configuration problems changed. */
function configHash(errors: readonly string[]): string {
  let h = 0x811c9dc5;
  for (const c of errors.join('\n')) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

// ------------------------------------------------------------------------------ group events

const realLevel = (level: string | null): level is string => level !== null && level !== STOP && level !== PLAN && level !== TEST;
const runningAt = (g: GroupStatus | undefined): string | null => (g && realLevel(g.level) && isRunning(g.state) ? g.level : null);
/** Released here: at its stop level and settled, or never told (a restart's stop level runs at the level it returns to). */
const down = (g: GroupStatus | undefined): boolean => !g || g.state === 'CONFIGURED' || ((g.level === null || g.level === STOP) && isSettled(g.state));
const healthNote = (g: GroupStatus): string | undefined => g.notes.find((n) => /checks? in a row/.test(n));

/**
 * The engine changed: the group events of this node. A group is started once it runs at a level
 * (state.groupsUp remembers at which) and stopped once released again, so a local restart after a
 * failed health check is a health_failed, not a stop and a start.
 */
export function groupEvents(t: Turn, before: readonly GroupStatus[], after: readonly GroupStatus[]): void {
  const prev = new Map(before.map((g) => [g.group, g]));
  const me = t.me;
  const up = new Map(t.state.groupsUp);
  for (const g of after) {
    const p = prev.get(g.group);
    const base = { node: me, group: g.group, level: g.level ?? '' };
    const note = healthNote(g);
    if (note !== undefined && ((g.restarts ?? 0) > (p?.restarts ?? 0) || (g.givenUp && !p?.givenUp))) {
      raise(t, { ...base, event: 'health_failed', desc: `Group ${g.group} failed its health checks on ${me}: ${note}.` });
    }
    if (g.state === 'FAILED' && realLevel(g.level) && !(p?.state === 'FAILED' && p.level === g.level)) {
      raise(t, { ...base, event: 'group_failed', desc: `Group ${g.group} failed at level ${g.level} on ${me}${g.givenUp ? ' and was given up there' : ''}.` });
    }
    const level = runningAt(g);
    if (level !== null && up.get(g.group) !== level) {
      up.set(g.group, level);
      raise(t, { ...base, event: 'group_started', desc: `Group ${g.group} runs at level ${level} on ${me}.` });
      const from = t.state.owners.get(g.group)?.node ?? '';
      if (from !== '' && from !== me) raise(t, { ...base, event: 'failover', fromNode: from, desc: `Group ${g.group} moved from ${from} to ${me}.` });
    }
  }
  const now = new Map(after.map((g) => [g.group, g]));
  for (const [group, level] of up) {
    if (!down(now.get(group))) continue;
    up.delete(group);
    raise(t, { node: me, group, level, event: 'group_stopped', desc: `Group ${group} stopped on ${me}.` });
  }
  if (up.size !== t.state.groupsUp.size || [...up].some(([g, l]) => t.state.groupsUp.get(g) !== l)) t.state.groupsUp = up;
}

/** fence_failed: raised by the fencer for an attempt (all its methods) that did not succeed. */
export function fenceFailed(t: Turn, node: string, detail: string): void {
  raise(t, { event: 'fence_failed', node, desc: `Fencing ${node} failed: ${detail.replace(/[\r\n]+/g, ' ')}.` });
}
