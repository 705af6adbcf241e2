// The monitor's fencing duty, as pure steps: for each stale peer it is responsible for
// (fenceTargets), wait the anti-race delay, check the peer is still silent, then try the
// configured methods in order (agents and commands are run by the driver; a manual method reads
// the operator's confirmation) until one succeeds; retry with capped backoff; poll for an
// operator's confirmation meanwhile. Only a success marks the peer fenced (`# fenced` lines).

import type { FencedLine } from '../config/clstat.js';
import type { HastatFence } from '../cluster/hastat.js';
import type { FileRead } from '../cluster/store.js';
import type { FenceOutcome } from './events.js';
import { fenceFailed } from './alerts.js';
import { isActive, type NodeView } from './decide.js';
import { fenceDelayMs, retryDelayMs } from './fencing.js';
import type { Draft, Turn } from './turn.js';
import type { FenceDuty, FenceRun, Incident } from './state.js';
import { fencePeers } from './view.js';

/** `peerha fence confirm NODE` writes DIR/fence-confirm/NODE. */
export const confirmPath = (node: string): string => `fence-confirm/${node}`;

interface Confirmation {
  readonly node: string;
  readonly time: string;
  readonly seq?: number;
  readonly pid?: number;
}

function parseConfirmation(read: FileRead | null): Confirmation | null {
  try {
    const c = JSON.parse(read?.text ?? '') as Confirmation;
    return c && typeof c.node === 'string' ? c : null;
  } catch {
    return null; // missing or torn: not confirmed (yet)
  }
}

/**
 * An operator's confirmation counts for this incident when it names the incarnation that went
 * silent (its heartbeat seq and monitor pid, as `peerha fence confirm` reads them from its clstat:
 * no clocks compared), or, without a seq, when it was written after the incident began.
 */
export function confirms(c: Confirmation | null, node: string, inc: Incident): boolean {
  if (!c || c.node !== node) return false;
  if (typeof c.seq === 'number') return c.seq === inc.seq && (typeof c.pid !== 'number' || inc.pid === null || c.pid === inc.pid);
  const t = Date.parse(c.time);
  return Number.isFinite(t) && t >= inc.since;
}

function setIncident(state: Draft, node: string, inc: Incident | null): void {
  const incidents = new Map(state.fencing.incidents);
  if (inc) incidents.set(node, inc);
  else incidents.delete(node);
  state.fencing = { ...state.fencing, incidents };
}

function update(state: Draft, patch: Partial<FenceDuty>): void {
  state.fencing = { ...state.fencing, ...patch };
}

/** A fenced node whose heartbeat moves again restarted cleanly: no longer fenced. */
export function forgetRestarted(state: Draft, seqOf: (node: string) => number | null): void {
  const fenced = new Map(state.fencing.fenced);
  for (const [n, f] of fenced) if (seqOf(n) !== f.seq) fenced.delete(n);
  if (fenced.size !== state.fencing.fenced.size) update(state, { fenced });
}

/** Once a cycle: open (or retry) an incident for each stale peer this node must fence. */
export function fenceTick(t: Turn, nodes: ReadonlyMap<string, NodeView>): void {
  const state = t.state;
  const cfg = state.settings.fence;
  if (cfg.methods.length === 0) return;
  const peers = fencePeers(t.me, state.seq, state.lastLive, (n) => state.fencedNow.has(n));
  const { targets } = t.logic.fenceTargets(t.me, peers, state.fencing.incidents, t.now);
  const load = (n: string): number => [...(nodes.get(n)?.groups.values() ?? [])].filter(isActive).length;
  for (const node of targets) {
    const seq = peers.find((p) => p.name === node)?.seq ?? null;
    const prev = state.fencing.incidents.get(node);
    const same = prev !== undefined && prev.seq === seq;
    const attempts = same ? prev.attempts + 1 : 1;
    const key = `${node}#${seq ?? '-'}`;
    setIncident(state, node, { seq, pid: state.peerPids.get(node) ?? null, attempts, nextTry: Number.POSITIVE_INFINITY, done: false, since: same ? prev.since : t.event.wall, key, run: null, polling: same && prev.polling });
    const delay = attempts === 1 ? fenceDelayMs(cfg, t.random(), load(t.me), load(node)) : 0;
    t.log('warn', `STOMITH: fencing ${node}`, { node, attempt: attempts, delayMs: delay, incident: key });
    t.timer(`fence:${node}`, t.now + delay);
  }
}

/** The race delay is over: fence if the peer is still silent (its silence may have ended meanwhile). */
export function fenceDelayOver(t: Turn, node: string): void {
  const state = t.state;
  const inc = state.fencing.incidents.get(node);
  if (!inc || inc.run || inc.done) return;
  const v = state.lastLive.get(node);
  if (v?.state !== 'stale' || v.seq !== inc.seq || state.fencedNow.has(node)) {
    setIncident(state, node, null);
    t.log('info', `STOMITH: ${node} heartbeats again; not fencing it`, { node, incident: inc.key });
    return;
  }
  setIncident(state, node, { ...inc, run: { method: 0, startedAt: t.now, time: t.wallIso, records: [] } });
  tryMethod(t, node);
}

function tryMethod(t: Turn, node: string): void {
  const state = t.state;
  const inc = state.fencing.incidents.get(node)!;
  const run = inc.run!;
  const cfg = state.settings.fence;
  const m = cfg.methods[run.method];
  if (!m) return finishRun(t, node);
  setIncident(state, node, { ...inc, run: { ...run, startedAt: t.now, time: t.wallIso } });
  if (m.kind === 'manual') t.io({ kind: 'confirm', node, incident: inc.key, polling: false }, [{ op: 'read', path: confirmPath(node) }]);
  else t.emit({ type: 'fence', node, incident: inc.key, method: m, action: cfg.action, timeoutMs: cfg.timeoutMs });
}

/** A fence agent or command answered. */
export function fenceAnswered(t: Turn, node: string, incident: string, outcome: FenceOutcome): void {
  const inc = t.state.fencing.incidents.get(node);
  if (!inc?.run || inc.key !== incident) return;
  addRecord(t, node, inc, inc.run, { time: inc.run.time, incident, fencer: t.me, node, ...outcome });
}

/** The operator's confirmation file was read: for a manual attempt, or while polling between attempts. */
export function confirmationRead(t: Turn, node: string, incident: string, polling: boolean, read: FileRead | null): void {
  const state = t.state;
  const inc = state.fencing.incidents.get(node);
  if (!inc || inc.key !== incident) return;
  const ok = confirms(parseConfirmation(read), node, inc);
  if (!polling) {
    if (!inc.run) return;
    const detail = ok ? 'confirmed by an operator' : `waiting for: peerha fence confirm ${node}`;
    addRecord(t, node, inc, inc.run, { time: inc.run.time, incident, fencer: t.me, node, method: 'manual', action: 'confirm', result: ok ? 'success' : 'waiting', durationMs: Math.round(t.now - inc.run.startedAt), detail });
    return;
  }
  if (!inc.polling || inc.done) return;
  if (!ok) {
    t.timer(`confirm:${node}`, t.now + state.settings.cycleMs);
    return;
  }
  const rec: HastatFence = { time: t.wallIso, incident, fencer: t.me, node, method: 'manual', action: 'confirm', result: 'success', durationMs: 0, detail: 'confirmed by an operator' };
  appendFenceLog(t, rec);
  t.log('warn', `STOMITH ${node}: manual success`, { ...rec });
  markFenced(t, node, inc.seq, rec);
  setIncident(state, node, { ...state.fencing.incidents.get(node)!, done: true, polling: false });
}

/** While an incident backs off between agent attempts, an operator's confirmation still counts at once. */
export function pollConfirmation(t: Turn, node: string): void {
  const state = t.state;
  const inc = state.fencing.incidents.get(node);
  if (!inc?.polling) return;
  if (inc.done || state.settings.fence.methods.every((m) => m.kind !== 'manual')) {
    setIncident(state, node, { ...inc, polling: false });
    return;
  }
  t.io({ kind: 'confirm', node, incident: inc.key, polling: true }, [{ op: 'read', path: confirmPath(node) }]);
}

function addRecord(t: Turn, node: string, inc: Incident, run: FenceRun, rec: HastatFence): void {
  const next: FenceRun = { ...run, method: run.method + 1, records: [...run.records, rec] };
  setIncident(t.state, node, { ...inc, run: next });
  if (rec.result === 'success') finishRun(t, node);
  else tryMethod(t, node);
}

function finishRun(t: Turn, node: string): void {
  const state = t.state;
  const inc = state.fencing.incidents.get(node)!;
  const records = inc.run?.records ?? [];
  const final = records[records.length - 1];
  const ok = final?.result === 'success';
  for (const r of records) {
    if (r.result !== 'waiting' || inc.attempts === 1) appendFenceLog(t, r);
    if (r.result !== 'waiting') t.log(r.result === 'success' ? 'warn' : 'error', `STOMITH ${node}: ${r.method ?? '?'} ${r.result}`, { ...r });
  }
  if (final) update(state, { last: new Map(state.fencing.last).set(node, final) });
  if (ok) markFenced(t, node, inc.seq, final);
  else if (final && final.result !== 'waiting') fenceFailed(t, node, records.filter((r) => r.result !== 'waiting').map((r) => `${r.method ?? '?'} ${r.result}${r.detail ? ` (${r.detail})` : ''}`).join('; '));
  const cycle = state.settings.cycleMs;
  // Only a manual method was left waiting: ask again next cycle. After an agent failed or timed
  // out: back off (and meanwhile poll for the operator's confirmation every cycle).
  const onlyWaiting = records.every((r) => r.result === 'waiting');
  const confirmedMeanwhile = inc.done && state.fencing.fenced.has(node);
  const poll = final?.result === 'waiting' && !onlyWaiting && !inc.polling;
  setIncident(state, node, { ...inc, run: null, done: ok || confirmedMeanwhile, nextTry: t.now + (onlyWaiting ? cycle : retryDelayMs(inc.attempts, cycle, state.settings.fence.retryMaxMs)), polling: inc.polling || poll });
  if (poll) t.timer(`confirm:${node}`, t.now + cycle);
}

function markFenced(t: Turn, node: string, seq: number | null, rec: HastatFence): void {
  const line: FencedLine = { node, seq, time: rec.time, method: rec.method ?? 'manual' };
  update(t.state, { fenced: new Map(t.state.fencing.fenced).set(node, line), last: new Map(t.state.fencing.last).set(node, rec) });
}

// ------------------------------------------------------------------------------ fence.log

/**
 * fence.log lives in this node's folder (one writer per shared file; `peerha fence history` merges
 * them), JSON lines; read once, then rewritten with each new record, the last 1000 kept.
 */
export function appendFenceLog(t: Turn, rec: HastatFence): void {
  const log = t.state.fenceLog;
  t.state.fenceLog = { ...log, queued: [...log.queued, JSON.stringify(rec)] };
  if (!log.busy) flushFenceLog(t);
}

function flushFenceLog(t: Turn): void {
  const log = t.state.fenceLog;
  if (log.queued.length === 0) {
    t.state.fenceLog = { ...log, busy: false };
    return;
  }
  if (log.lines === null) {
    t.state.fenceLog = { ...log, busy: true };
    t.io({ kind: 'fence-log', stage: 'read' }, [{ op: 'read', path: t.own('fence.log') }]);
    return;
  }
  const lines = [...log.lines, ...log.queued].slice(-1000);
  t.state.fenceLog = { lines, queued: [], busy: true };
  t.io({ kind: 'fence-log', stage: 'write' }, [{ op: 'write', path: t.own('fence.log'), text: lines.join('\n') + '\n' }]);
}

/** The old fence.log was read, or the new one written: go on with what queued meanwhile. */
export function fenceLogDone(t: Turn, stage: 'read' | 'write', read: FileRead | null, error: string | null): void {
  const log = t.state.fenceLog;
  if (stage === 'read') t.state.fenceLog = { ...log, lines: (read?.text ?? '').split('\n').filter(Boolean), busy: false };
  else {
    if (error !== null) t.log('error', 'cannot write fence.log', { err: error });
    t.state.fenceLog = { ...log, busy: false };
  }
  flushFenceLog(t);
}
