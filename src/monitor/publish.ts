// Publishing this node's clstat (its heartbeat and what it runs): one write at a time, formatted
// when it starts, so it always shows the engine as it is then; requests made meanwhile become one
// more write. A self-fenced node claims nothing (and kills what it recorded, as its watchdog would).

import { formatClstat, type GroupState } from '../config/clstat.js';
import { formatAlerted } from './alerts.js';
import { holdsResources, isActive, type Instance } from './decide.js';
import { beatName } from '../cluster/beats.js';
import type { StoreResult } from '../cluster/store.js';
import { localInstances, shownInstances, timingsOf, type Heir, type PublishWaiter } from './state.js';
import { failoverLines } from './snapshot.js';
import type { Turn } from './turn.js';

/** Ask for a clstat write; `waiter` is told when a write started after this request completes. */
export function requestPublish(t: Turn, waiter: PublishWaiter | null, left: readonly Heir[] | null = null): void {
  const state = t.state;
  if (state.phase !== 'running' && state.phase !== 'stopped') return;
  if (state.phase === 'stopped' && left === null) return;
  const p = state.publish;
  state.publish = { ...p, pending: true, waiting: waiter ? [...p.waiting, waiter] : p.waiting, left: left ?? p.left };
  if (!p.inFlight) startWrite(t);
}

function startWrite(t: Turn): void {
  const state = t.state;
  const p = state.publish;
  if (!p.pending) return;
  const left = p.left !== null;
  const fenced = t.logic.publishFenced(left, state.settings.selfFence, t.now, state.lastPet, state.settings.timeoutMs);
  // Self-fenced (the watchdog may have fired; e.g. just thawed from SIGSTOP): what the engine
  // believes runs may be dead and peers may run it now. Make sure it is dead and claim nothing: a
  // fresh seq with old claims would beat a peer's healthy instance in a conflict.
  if (fenced) {
    t.emit({ type: 'killGroups' });
    releasingAfterWatchdog(t);
  }
  state.seq += 1;
  const content = {
    groups: published(t, left || fenced),
    notes: state.local.flatMap((g) => g.notes.map((text) => ({ group: g.group, text }))),
    handovers: p.left ?? [],
    fenced: [...state.fencing.fenced.values()],
    // Who this node holds stale or gone (and may take groups from): read by them as the poison pill.
    stale: [...state.lastLive].filter(([, v]) => v.state === 'stale' || v.state === 'left').map(([node, v]) => ({ node, seq: v.seq, pid: state.peerPids.get(node) ?? null })),
    failovers: failoverLines(state.owners),
    // The cluster as last alerted: whoever observes next goes on from it.
    ...(state.alerted.gen > 0 ? { alerted: formatAlerted(state.alerted) } : {}),
  };
  // A new gen when anything but seq and time changed: only then do peers read this clstat again.
  const body = formatClstat({ header: { node: t.me, pid: state.pid, seq: 0, time: '', inc: state.inc, left }, ...content });
  const gen = body === state.beat.body ? state.beat.gen : state.seq;
  const text = formatClstat({ header: { node: t.me, pid: state.pid, seq: state.seq, time: t.wallIso, inc: state.inc, gen, mono: t.now, left }, ...content });
  const to = beatName(t.me, state.seq, gen, state.beat.copies, state.inc);
  state.publish = { inFlight: true, pending: false, waiting: [], riding: p.waiting, left: p.left, beat: { name: to, gen, body, copies: state.beat.copies }, seq: state.seq };
  const claims = !left && !fenced && content.groups.some((g) => isActive(g));
  const notAfter = t.logic.publishDeadline(claims, state.settings.selfFence, state.lastPet, state.settings.timeoutMs);
  t.io({ kind: 'clstat' }, [{ op: 'heartbeat', path: t.own('clstat'), text, from: state.beat.name, to, ...(notAfter !== undefined ? { notAfter } : {}) }]);
}

/**
 * The watchdog fires timeout/2 after the last pet and then runs the stop entries within
 * stop_timeout: until then what ran here may still hold its resources, and the clstat says so
 * (`stop STOPPING`) even while it claims nothing else.
 */
export function releasingAfterWatchdog(t: Turn): void {
  const state = t.state;
  const settings = state.settings;
  const until = state.lastPet + settings.timeoutMs / 2 + settings.stopTimeoutMs + timingsOf(settings).killRepeatMs;
  const releasing = new Map(state.releasing);
  for (const [g, i] of localInstances(state)) if (holdsResources(i)) releasing.set(g, Math.max(releasing.get(g) ?? 0, until));
  state.releasing = releasing;
}

/**
 * The group lines: the engine's (none when left or self-fenced), plus `stop STOPPING` for groups
 * the watchdog may still be releasing — rank 0, so they never win a conflict, but their claims
 * stand and nobody starts them before their stop entries are done.
 */
function published(t: Turn, none: boolean): Array<{ group: string; level: string; state: GroupState }> {
  const state = t.state;
  const releasing = new Map([...state.releasing].filter(([, until]) => until > t.now));
  if (releasing.size !== state.releasing.size) state.releasing = releasing;
  const shown = none ? new Map<string, Instance>([...releasing.keys()].map((g) => [g, { level: 'stop', state: 'STOPPING' }])) : shownInstances(state, t.now);
  return [...shown].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([group, i]) => ({ group, level: i.level, state: i.state }));
}

/** A clstat write completed: the heartbeat counts from here; tell its waiters; start the next one. */
export function clstatWritten(t: Turn, results: readonly StoreResult[] | null, error: string | undefined, onWaiter: (w: PublishWaiter) => void): void {
  const state = t.state;
  const r = results?.[0];
  const err = r && r.op === 'heartbeat' ? r.error : (error ?? 'store operation failed');
  const beat = state.publish.beat;
  state.lastPublishFailed = err !== null;
  if (err === null) {
    // Counted from the beat's stamp, taken before its rename: peers may date it from there.
    const stamped = r?.op === 'heartbeat' && r.at !== undefined ? r : null;
    state.lastPublishOk = stamped ? Math.min(t.now, stamped.at!) : t.now;
    if (state.publish.seq !== undefined) state.landedSeq = Math.max(state.landedSeq, state.publish.seq);
    // A replica written while this heartbeat was in flight is announced by the next one.
    if (beat) state.beat = { ...beat, name: stamped?.beat ?? beat.name, copies: Math.max(beat.copies, state.beat.copies) };
  } else {
    t.log('error', 'cannot publish clstat', { err });
    // Where the beat is now is unknown (renamed or not): the next heartbeat creates a new one.
    state.beat = { ...state.beat, name: null };
  }
  // Written, but only in place (a full filesystem): say so until a normal write works again.
  const degraded = err === null && r?.op === 'heartbeat' ? (r.degraded ?? '') : state.publishDegraded;
  if (degraded !== state.publishDegraded) {
    if (degraded) t.log('error', 'shared filesystem full: heartbeat rewritten in place; groups keep running', { why: degraded });
    else t.log('info', 'heartbeat written normally again', {});
    state.publishDegraded = degraded;
  }
  const riding = state.publish.riding;
  state.publish = { ...state.publish, inFlight: false, riding: [] };
  for (const w of riding) onWaiter(w);
  if (state.publish.pending && !state.publish.inFlight) startWrite(t);
}
