// Leaving the cluster in order (SIGTERM/SIGINT, or DIR/halt): every local group is told its stop
// level, so its stop entries release what it holds (a VIP, a mount) — the engine bounds that by
// stop_timeout and kills what still runs. Then the engine halts what remains, and a final clstat
// goes out with the left marker and, on a signal, an heir for each group: the heir starts only
// after the stop entries finished, and peers take over at once rather than after `timeout`.

import { firedAfterFreeze } from '../init/engine.js';
import { isActive, STOP } from './decide.js';
import { requestPublish } from './publish.js';
import { localInstances, timingsOf } from './state.js';
import type { Turn } from './turn.js';
import { successors } from './view.js';

export function startLeave(t: Turn, why: string, handOver: boolean): void {
  const state = t.state;
  if (state.leave || state.phase !== 'running') return;
  t.log('info', 'leaving the cluster: running the stop level of local groups', { why });
  const local = localInstances(state);
  const heirs = handOver ? successors(t.me, state.lastView, local, state.hactl?.value.wants ?? new Map()) : [];
  if (heirs.length) t.log('info', 'handing groups over', { handovers: heirs.map((h) => `${h.group}→${h.node}`) });
  state.leave = { why, heirs, exit: why === 'halt' ? 'halt' : 'left', halting: false, finishing: false };
  for (const [group, i] of local) {
    if (isActive(i) && i.level !== STOP) t.emit({ type: 'tell', group, level: STOP, reason: `leaving (${why}): stop level` });
  }
  // The engine bounds each stop level (old processes, then its stop entries, stop_timeout each);
  // this bounds the whole leave if it cannot.
  const timings = timingsOf(state.settings);
  armCap(t, 2 * state.settings.stopTimeoutMs + timings.killRepeatMs + 1000);
  stopLevelProgress(t);
}

/** While leaving: once no local group is active any more, halt the engine (answered by `halted`). */
export function stopLevelProgress(t: Turn): void {
  const leave = t.state.leave;
  if (!leave || leave.halting) return;
  for (const i of localInstances(t.state).values()) if (isActive(i)) return;
  haltEngine(t);
}

function haltEngine(t: Turn): void {
  t.state.leave = { ...t.state.leave!, halting: true };
  t.emit({ type: 'haltGroups' });
  const timings = timingsOf(t.state.settings);
  armCap(t, timings.killAfterMs + 3 * timings.killRepeatMs);
}

/** Frozen (a VM pause) while leaving: the stage under way gets its bound again from now. */
export function frozenDuringLeave(t: Turn): void {
  const cap = t.state.leave?.cap;
  if (!cap) return;
  t.log('warn', 'this node was frozen during the leave: its current stage gets its time again', { frozenMs: Math.round(t.now - cap.from) });
  armCap(t, cap.ms);
}

/** Bound the leave's current stage by `ms` of this node's running time. */
function armCap(t: Turn, ms: number): void {
  t.state.leave = { ...t.state.leave!, cap: { from: t.now, ms } };
  t.timer('leave-cap', t.now + ms);
}

/** The leave took too long: kill what runs and halt; on the second expiry, leave regardless. */
export function leaveCap(t: Turn): void {
  const leave = t.state.leave;
  if (!leave) return;
  // This node was frozen (a VM pause): the stop entries it bounds did not get their time; killed
  // at the thaw, what they release would stay held here for good.
  if (leave.cap && firedAfterFreeze(leave.cap.from + leave.cap.ms, t.now, t.state.settings.timeoutMs / 2)) return frozenDuringLeave(t);
  if (leave.releasingWatchdog) {
    // Its stop-entry run ends by stop_timeout (it kills what is left): past that, nothing of ours runs.
    t.log('warn', 'the watchdog did not report its exit in time; leaving regardless', {});
    return watchdogGone(t);
  }
  if (!leave.halting) {
    t.log('warn', 'stop levels did not finish in time: killing local groups', {});
    t.emit({ type: 'killGroups' });
    return haltEngine(t);
  }
  groupsStopped(t);
}

/** Every group stopped (or the bound passed): stop cycling and publish the left marker. */
export function groupsStopped(t: Turn): void {
  const state = t.state;
  if (!state.leave || state.leave.finishing) return;
  state.leave = { ...state.leave, finishing: true };
  state.phase = 'stopped';
  state.cycleTimerAt = null;
  t.emit({ type: 'cancelTimer', name: 'leave-cap' });
  t.emit({ type: 'cancelTimer', name: 'cycle' });
  if (!state.watchdog) return requestPublish(t, { kind: 'leave' }, state.leave.heirs);
  // The watchdog may have fired meanwhile (no pet: a store that refused our clstats) and be
  // running the stop entries again: the left marker (and an heir's start) must wait for them.
  state.leave = { ...state.leave, releasingWatchdog: true };
  state.watchdog = false;
  t.emit({ type: 'watchdog', action: 'leave', limitMs: 0 });
  armCap(t, state.settings.stopTimeoutMs + timingsOf(state.settings).killRepeatMs + 1000);
}

/** The watchdog is gone, and with it any stop entry it ran: publish the left marker. */
export function watchdogGone(t: Turn): void {
  const state = t.state;
  if (!state.leave?.releasingWatchdog) return;
  state.leave = { ...state.leave, releasingWatchdog: false };
  t.emit({ type: 'cancelTimer', name: 'leave-cap' });
  requestPublish(t, { kind: 'leave' }, state.leave.heirs);
}

/** The left marker is out: exit. */
export function leftPublished(t: Turn): void {
  const state = t.state;
  if (state.watchdog) t.emit({ type: 'watchdog', action: 'stop', limitMs: 0 });
  state.watchdog = false;
  t.log('info', 'left the cluster');
  t.emit({ type: 'exit', code: 0, reason: state.leave?.exit ?? 'left' });
}
