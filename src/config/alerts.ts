// `alerts:` in peerha.yaml: commands run for cluster events (see src/monitor/alerts.ts for when
// each event is raised, and src/monitor/alert-runner.ts for how the commands run).

import { isMap, isScalar, isSeq } from 'yaml';
import { DURATION_HINT, parseDuration } from './duration.js';

export const ALERT_EVENTS = [
  'node_up',
  'node_stale',
  'node_left',
  'node_fenced',
  'fence_failed',
  'group_started',
  'group_stopped',
  'group_failed',
  'failover',
  'health_failed',
  'quorum_lost',
  'quorum_regained',
  'config_rejected',
] as const;
export type AlertEvent = (typeof ALERT_EVENTS)[number];

export const DEFAULT_ALERT_TIMEOUT_MS = 10_000;

export interface AlertCommand {
  readonly command: string;
  /** Only these events (absent: every event). */
  readonly events?: readonly AlertEvent[];
  readonly timeoutMs: number;
  readonly line: number;
}

/**
 * alerts: a list of `{command, events?, timeout?}`. Problems throw through `fail` (an error that
 * carries its line), like fence.methods.
 */
export function readAlerts(node: unknown, lineOf: (n: unknown) => number, fail: (message: string, line: number) => Error): { value: AlertCommand[] } | { error: string } {
  if (!isSeq(node)) return { error: 'expected a list of alert commands (- command: …, events: […], timeout: 10s)' };
  return {
    value: node.items.map((item, i) => {
      const where = `alerts[${i}]`;
      if (!isMap(item)) throw fail(`${where}: expected a mapping with command:, and optionally events: and timeout:`, lineOf(item));
      const pair = (k: string) => item.items.find((p) => isScalar(p.key) && p.key.value === k);
      for (const p of item.items) {
        const k = isScalar(p.key) ? String(p.key.value) : '';
        if (!['command', 'events', 'timeout'].includes(k)) throw fail(`${where}: unknown key ${JSON.stringify(k)} (expected command, events, timeout)`, lineOf(p.key));
      }
      const c = pair('command')?.value;
      const command = isScalar(c) && typeof c.value === 'string' ? c.value.trim() : '';
      if (!command || command.includes('\u0000')) throw fail(`${where}.command: expected a shell command`, lineOf(c ?? item));
      const t = pair('timeout')?.value;
      let timeoutMs = DEFAULT_ALERT_TIMEOUT_MS;
      if (t !== undefined && !(isScalar(t) && t.value === null)) {
        const ms = isScalar(t) && typeof t.value !== 'boolean' ? parseDuration(String(t.value)) : { error: DURATION_HINT };
        if (typeof ms !== 'number') throw fail(`${where}.timeout: ${ms.error}`, lineOf(t));
        if (ms <= 0) throw fail(`${where}.timeout: must be more than 0`, lineOf(t));
        timeoutMs = ms;
      }
      const e = pair('events')?.value;
      if (e === undefined || (isScalar(e) && e.value === null)) return { command, timeoutMs, line: lineOf(item) };
      if (!isSeq(e)) throw fail(`${where}.events: expected a list of events (${ALERT_EVENTS.join(', ')})`, lineOf(e));
      const events = e.items.map((x) => {
        const name = isScalar(x) ? String(x.value) : '';
        if (!(ALERT_EVENTS as readonly string[]).includes(name)) throw fail(`${where}.events: unknown event ${JSON.stringify(name)} (expected one of ${ALERT_EVENTS.join(', ')})`, lineOf(x));
        return name as AlertEvent;
      });
      return { command, events, timeoutMs, line: lineOf(item) };
    }),
  };
}
