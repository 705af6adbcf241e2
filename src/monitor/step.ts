// The monitor as a pure state machine: step(state, event) → { state, effects }. No I/O, no clock,
// no randomness of its own (the state carries a seeded source): the real daemon
// (src/monitor/daemon.ts), the simulator (src/sim/driver.ts) and `peerha plan` drive this same
// function and only carry out what it asks for. Start-up, signals and configuration reloads are
// here; a cycle is in cycle.ts, fencing in fence-duty.ts, leaving in leave.ts.

import { CLAIMS_DIR } from '../cluster/claims.js';
import { formatClstat, parseClstat } from '../config/clstat.js';
import { ownersFrom } from './snapshot.js';
import type { StoreResult } from '../cluster/store.js';
import type { IoTag, MonitorEffect, MonitorEvent, TimerName } from './events.js';
import { adoptAlertedText, firstSequenceAfter, groupEvents } from './alerts.js';
import { beatsPolled, beginCycle, cycleIo, pollBeats, cyclePublished, engineChanged, failCycle, hastatWritten, pet, schedule, toldInCycle } from './cycle.js';
import { confirmationRead, fenceAnswered, fenceDelayOver, fenceLogDone, pollConfirmation } from './fence-duty.js';
import { groupsStopped, leaveCap, leftPublished, startLeave, watchdogGone } from './leave.js';
import { REAL_LOGIC, type Logic } from './logic.js';
import { clstatWritten } from './publish.js';
import { replicaWritten } from './replication.js';
import type { MonitorSettings, MonitorState } from './state.js';
import { Turn } from './turn.js';

/**
 * Re-reads of our clstat at start-up when our folder exists but the clstat reads as missing, a
 * cycle apart (the simulator's reads go missing 20 % of the time: two re-reads lost seed 3859).
 */
const OWN_MISSING_REREADS = 5;

export interface StepResult {
  readonly state: MonitorState;
  readonly effects: readonly MonitorEffect[];
}

export function step(state: MonitorState, event: MonitorEvent, logic: Logic = REAL_LOGIC): StepResult {
  const t = new Turn(state, event, logic);
  handle(t, event);
  return { state: t.state, effects: t.effects };
}

function handle(t: Turn, ev: MonitorEvent): void {
  switch (ev.type) {
    case 'start':
      if (t.state.phase !== 'new') return;
      t.state.phase = 'starting';
      t.state.startedAt = t.now;
      return t.emit({ type: 'cleanLeftovers' });
    case 'cleaned':
      if (t.state.phase === 'starting') checkHalt(t);
      return;
    case 'timer':
      return timer(t, ev.name);
    case 'io':
      return io(t, ev.tag, ev.results, ev.error);
    case 'engine':
      groupEvents(t, t.state.local, ev.groups);
      t.state.local = ev.groups;
      return engineChanged(t);
    case 'told':
      t.log(ev.ok ? 'info' : 'warn', `decide: ${ev.group} → ${ev.level}`, { group: ev.group, level: ev.level, reason: ev.reason, result: ev.message });
      // A new plan's window starts at the cycle after the one that published it: run that one at once.
      if (ev.ok && ev.level === 'plan') t.state.cycleAgain = true;
      return toldInCycle(t, ev.cycle);
    case 'halted':
      return groupsStopped(t);
    case 'fenced':
      return fenceAnswered(t, ev.node, ev.incident, ev.outcome);
    case 'signal':
      if (t.state.phase === 'running') return startLeave(t, ev.signal, true);
      if (t.state.phase !== 'stopped') t.emit({ type: 'exit', code: 0, reason: 'left' });
      return;
    case 'reload':
      return reload(t, ev.settings);
    case 'watchdog-exited':
      if (!t.state.watchdog || t.state.phase === 'stopped') return;
      t.log('error', 'watchdog exited; restarting it', { code: ev.code, signal: ev.signal });
      return startWatchdog(t);
    case 'watchdog-gone':
      return watchdogGone(t);
    case 'failed':
      return failCycle(t, ev.error);
  }
}

function timer(t: Turn, name: TimerName): void {
  if (name === 'cycle') return beginCycle(t);
  if (name === 'beat-poll') return pollBeats(t);
  if (name === 'dup-check') return readOwnClstat(t, 'dup-again');
  if (name === 'own-read') return readOwnClstat(t, 'dup-first');
  if (name === 'halt-poll') return t.io({ kind: 'startup', stage: 'halt' }, [{ op: 'read', path: 'halt' }]);
  if (name === 'leave-cap') return leaveCap(t);
  if (name.startsWith('fence:')) return fenceDelayOver(t, name.slice('fence:'.length));
  if (name.startsWith('confirm:')) return pollConfirmation(t, name.slice('confirm:'.length));
}

function io(t: Turn, tag: IoTag, results: readonly StoreResult[] | null, error: string | undefined): void {
  const first = results?.[0];
  const failure = results ? (first && first.op !== 'read' && 'error' in first ? first.error : null) : (error ?? 'store operation failed');
  const read = first?.op === 'read' ? first.read : null;
  switch (tag.kind) {
    case 'cycle':
      return cycleIo(t, tag, results, error);
    case 'clstat':
      return clstatWritten(t, results, error, (w) => (w.kind === 'cycle' ? cyclePublished(t, w.id) : leftPublished(t)));
    case 'hastat':
      return hastatWritten(t, results, error);
    case 'claims-gc':
      return;
    case 'beat-poll':
      return beatsPolled(t, results);
    case 'replica':
      return replicaWritten(t, tag.file, tag.from, failure);
    case 'fence-log':
      return fenceLogDone(t, tag.stage, read, failure);
    case 'confirm':
      return confirmationRead(t, tag.node, tag.incident, tag.polling, read);
    case 'startup': {
      // A read that failed is not a missing file: our own clstat unread is not "no previous run".
      const unread = first?.op === 'read' && first.read === null && first.error !== undefined && first.error !== 'ENOENT' ? first.error : null;
      if (tag.stage === 'mkdir' && first?.op === 'mkdir' && first.existed) t.state.ownMissingReads = 0;
      return startup(t, tag.stage, results === null ? error ?? 'store operation failed' : (failure ?? unread), read?.text ?? null);
    }
  }
}

// ------------------------------------------------------------------------------ start-up

/** Wait while DIR/halt exists, create our folder, refuse a node name that already heartbeats. */
function startup(t: Turn, stage: Extract<IoTag, { kind: 'startup' }>['stage'], failure: string | null, text: string | null): void {
  const state = t.state;
  if (state.phase !== 'starting' && state.phase !== 'halted') return;
  const settings = state.settings;
  switch (stage) {
    case 'mkdir':
      if (failure !== null) return refuse(t, `cannot create ${settings.root}/nodes/${t.me}: ${failure}`);
      return readOwnClstat(t, 'dup-first');
    case 'dup-first': {
      // The previous run's clstat carries its seqs, alert sequences and alerted view: joining
      // without them would reuse sequences. Read it again a cycle later until the store answers.
      if (failure !== null) return unreadAtStartup(t, 'own-read', failure);
      // Our folder was there but its clstat reads as missing: a previous run may have left one
      // that a cache hides (its seqs must not be reused): read again before taking it for none.
      if (text === null && state.ownMissingReads !== null && state.ownMissingReads < OWN_MISSING_REREADS) {
        state.ownMissingReads++;
        t.log('warn', "this node's folder exists but its clstat reads as missing; reading it again", {});
        return t.timer('own-read', t.now + settings.cycleMs);
      }
      const own = text === null ? null : parseClstat(text);
      const h = own?.header ?? null;
      // Failover counts go on from the previous run's clstat (the cluster's, merged by max).
      if (own?.failovers) state.owners = ownersFrom(own.failovers);
      // The cluster as this node last knew it alerted (a lone node has no peer to mirror it).
      if (own?.alerted !== undefined) adoptAlertedText(state, own.alerted);
      // Seqs go on from the previous run's last clstat (no clock involved): a clstat of this run
      // is newer than every claim the previous one made (see absorbClaims for claims without one).
      if (h) state.seq = Math.max(state.seq, h.seq);
      // Alert sequences go on past the previous run's too (it may have raised some after that clstat).
      if (h) state.alertSeq = Math.max(state.alertSeq, firstSequenceAfter(h.seq) - 1);
      if (!h || h.left) return begin(t);
      state.dupSeq = h.seq;
      return t.timer('dup-check', t.now + 2 * settings.cycleMs + settings.visibilityLagMs + 200);
    }
    case 'dup-again': {
      if (failure !== null) return unreadAtStartup(t, 'dup-check', failure);
      const h = text === null ? null : parseClstat(text).header;
      if (h && h.seq !== state.dupSeq && !h.left) return refuse(t, `node name ${t.me} is already heartbeating in ${settings.root} (duplicate node id)`);
      return begin(t);
    }
    case 'halt': {
      const halt = t.logic.haltRequested(text);
      // Our folder is made only now, and with a clstat in it that says `left` (seq 0) until our
      // first heartbeat: a node that waited out a halt, or died right after making its folder,
      // leaves no folder without a clstat behind (a never-read peer that every plan would wait for).
      // DIR/claims too (made by whoever comes first; without it claims fail and plans wait a window).
      if (halt === null) {
        const unborn = formatClstat({ header: { node: t.me, pid: state.pid, seq: 0, time: t.wallIso, inc: state.inc, left: true }, groups: [] });
        return t.io({ kind: 'startup', stage: 'mkdir' }, [{ op: 'mkdir', path: `nodes/${t.me}`, withFile: { name: 'clstat', text: unborn } }, { op: 'mkdir', path: CLAIMS_DIR }]);
      }
      // The cluster was dissolved (`peerha halt`): do not join until the halt file is removed.
      if (!state.waitedForHalt) t.log('warn', `cluster halted (${settings.root}/halt); waiting for it to be removed before joining`, { halt });
      state.waitedForHalt = true;
      state.phase = 'halted';
      return t.timer('halt-poll', t.now + settings.cycleMs);
    }
  }
}

function readOwnClstat(t: Turn, stage: 'dup-first' | 'dup-again'): void {
  t.io({ kind: 'startup', stage }, [{ op: 'read', path: t.own('clstat') }]);
}

function unreadAtStartup(t: Turn, retry: 'own-read' | 'dup-check', failure: string): void {
  t.log('warn', 'cannot read this node\'s clstat while starting; trying again in a cycle', { err: failure });
  t.timer(retry, t.now + t.state.settings.cycleMs);
}

function checkHalt(t: Turn): void {
  t.io({ kind: 'startup', stage: 'halt' }, [{ op: 'read', path: 'halt' }]);
}

function refuse(t: Turn, message: string): void {
  t.state.phase = 'stopped';
  t.emit({ type: 'exit', code: 1, reason: 'refused', message });
}

function begin(t: Turn): void {
  const state = t.state;
  const settings = state.settings;
  if (state.waitedForHalt) state.startedAt = t.now;
  state.phase = 'running';
  // The start-up checks (the duplicate-id wait is 2 cycles + lag) are no freeze: time from here.
  state.lastCycleEnd = state.lastPublishOk = state.lastPet = t.now;
  if (settings.selfFence) startWatchdog(t);
  t.log('info', 'peerha monitor starting', { node: t.me, root: settings.root, cycleMs: settings.cycleMs, timeoutMs: settings.timeoutMs, quorum: settings.quorum });
  schedule(t, 0);
}

function startWatchdog(t: Turn): void {
  t.state.watchdog = true;
  t.emit({ type: 'watchdog', action: 'start', limitMs: Math.floor(t.state.settings.timeoutMs / 2) });
  pet(t);
}

// ------------------------------------------------------------------------------ reload

/** SIGHUP: apply a re-read configuration; identity and local paths need a restart. */
function reload(t: Turn, next: MonitorSettings): void {
  const state = t.state;
  const old = state.settings;
  const fixed: string[] = (['root', 'node', 'stateDir', 'selfFence', 'stopTimeoutMs'] as const).filter((k) => next[k] !== old[k]);
  // The listener binds once, at start.
  if (JSON.stringify(next.metrics) !== JSON.stringify(old.metrics)) fixed.push('metrics');
  if (fixed.length) t.log('warn', 'configuration reloaded; these keys need a restart and keep their old values', { keys: fixed });
  const { metrics: _bindsAtStart, ...kept } = next;
  state.settings = { ...kept, root: old.root, node: old.node, stateDir: old.stateDir, selfFence: old.selfFence, stopTimeoutMs: old.stopTimeoutMs, ...(old.metrics ? { metrics: old.metrics } : {}) };
  if (next.timeoutMs !== old.timeoutMs && state.watchdog) {
    // The watchdog's limit is timeout/2: replace it (the new one is petted at once).
    t.emit({ type: 'watchdog', action: 'stop', limitMs: 0 });
    startWatchdog(t);
  }
  const settings = state.settings;
  t.log('info', 'configuration reloaded', { cycleMs: settings.cycleMs, timeoutMs: settings.timeoutMs, quorum: settings.quorum, balance: settings.balance });
}
