// The alert runner with real commands: environment, event filter, one at a time per command, a
// timeout that kills the process group, and a bounded queue whose drops are counted.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, expect, it } from 'vitest';
import type { AlertCommand } from '../../src/config/alerts.js';
import type { Alert } from '../../src/monitor/alerts.js';
import { AlertRunner } from '../../src/monitor/alert-runner.js';
import { processesWith, waitFor } from '../helpers/daemon.js';

const dir = mkdtempSync(join(tmpdir(), 'peerha-alert-runner-'));
afterEach(() => rmSync(join(dir, 'out'), { force: true }));

const quiet = pino({ level: 'silent' });
const alert = (event: Alert['event'], sequence: number): Alert => ({ event, node: 'n3', group: 'web', level: 'start', fromNode: event === 'failover' ? 'n2' : '', desc: `Something about ${event}.`, sequence, time: '2026-12-02T05:00:00.000Z' });
const runner = (commands: AlertCommand[], capacity?: number) => new AlertRunner(quiet, { PATH: process.env.PATH }, 'n1', () => commands, capacity);
const out = (): string[] => {
  try {
    return readFileSync(join(dir, 'out'), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

it('runs each matching command with the event environment, one at a time and in order', async () => {
  const log = `echo "$PEERHA_EMITTER $PEERHA_SEQUENCE $PEERHA_EVENT $PEERHA_NODE $PEERHA_GROUP $PEERHA_LEVEL $PEERHA_FROM_NODE $PEERHA_TIME $PEERHA_DESC" >> ${join(dir, 'out')}`;
  const r = runner([
    { command: `sleep 0.05; ${log}`, timeoutMs: 5000, line: 1 },
    { command: `echo filtered >> ${join(dir, 'out')}`, events: ['failover'], timeoutMs: 5000, line: 2 },
  ]);
  r.push(alert('node_up', 1000));
  r.push(alert('failover', 1001));
  await waitFor('three runs', () => r.stats().sent === 3);
  expect(out().filter((l) => l !== 'filtered')).toEqual([
    'n1 1000 node_up n3 web start  2026-12-02T05:00:00.000Z Something about node_up.',
    'n1 1001 failover n3 web start n2 2026-12-02T05:00:00.000Z Something about failover.',
  ]);
  expect(out().filter((l) => l === 'filtered')).toHaveLength(1);
  expect(r.stats()).toEqual({ sent: 3, failed: 0, timedOut: 0, dropped: 0, queued: 0, running: 0 });
});

it('kills a run at its timeout with its process group, counts failures, and drops beyond the queue bound', async () => {
  const r = runner([{ command: 'sleep 30.4242 & sleep 30.4242', timeoutMs: 200, line: 1 }], 2);
  for (let i = 1; i <= 5; i++) r.push(alert('node_stale', i));
  expect(r.stats().dropped).toBe(3);
  await waitFor('both runs timed out', () => r.stats().timedOut === 2, 5000);
  await waitFor('no sleep left behind', () => processesWith('sleep 30.4242').length === 0, 5000);
  const failing = runner([{ command: 'exit 3', timeoutMs: 1000, line: 1 }]);
  failing.push(alert('group_failed', 7));
  await waitFor('a failure counted', () => failing.stats().failed === 1);
});

it('an exiting monitor waits for queued alerts, up to a bound', async () => {
  const r = runner([{ command: `sleep 0.1; echo ran >> ${join(dir, 'out')}`, timeoutMs: 5000, line: 1 }]);
  r.push(alert('group_stopped', 1));
  r.push(alert('group_stopped', 2));
  await r.drain(5000);
  expect(out()).toEqual(['ran', 'ran']);
  const slow = runner([{ command: 'sleep 30.4343', timeoutMs: 60_000, line: 1 }]);
  slow.push(alert('group_stopped', 1));
  slow.push(alert('group_stopped', 2));
  const t0 = Date.now();
  await slow.drain(300);
  expect(Date.now() - t0).toBeLessThan(5000);
  expect(slow.stats().dropped).toBe(1);
  await waitFor('the running one killed', () => processesWith('sleep 30.4343').length === 0, 5000);
});
