// Leaving the cluster in order (SIGTERM/SIGINT, or DIR/halt): stop every local group (bounded by
// the engine's kill escalation), then publish a final clstat with the left marker and, on a
// signal, an heir for each group, so that peers take over at once rather than after `timeout`.

import { requestPublish } from './publish.js';
import { localInstances, timingsOf } from './state.js';
import type { Turn } from './turn.js';
import { successors } from './view.js';

export function startLeave(t: Turn, why: string, handOver: boolean): void {
  const state = t.state;
  if (state.leave || state.phase !== 'running') return;
  t.log('info', 'leaving the cluster: stopping local groups', { why });
  const heirs = handOver ? successors(t.me, state.lastView, localInstances(state), state.hactl?.value.wants ?? new Map()) : [];
  if (heirs.length) t.log('info', 'handing groups over', { handovers: heirs.map((h) => `${h.group}→${h.node}`) });
  state.leave = { why, heirs, exit: why === 'halt' ? 'halt' : 'left', finishing: false };
  t.emit({ type: 'haltGroups' });
  const timings = timingsOf(state.settings);
  t.timer('leave-cap', t.now + timings.killAfterMs + 3 * timings.killRepeatMs);
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
  requestPublish(t, { kind: 'leave' }, state.leave.heirs);
}

/** The left marker is out: let the watchdog go and exit. */
export function leftPublished(t: Turn): void {
  const state = t.state;
  if (state.watchdog) t.emit({ type: 'watchdog', action: 'stop', limitMs: 0 });
  state.watchdog = false;
  t.log('info', 'left the cluster');
  t.emit({ type: 'exit', code: 0, reason: state.leave?.exit ?? 'left' });
}
