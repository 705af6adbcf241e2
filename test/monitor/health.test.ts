// Health checks and failing-service failover with real monitors: a service whose check starts
// failing is restarted on its node (stop entries, then start entries again); once it fails past
// max_restarts it is given up there and another node takes it over. A crash-looping respawn entry
// moves the same way. A marker file per holder stands in for a resource (a VIP): the start entry
// creates it (recording a double holder if another node's is there), the stop entry removes it.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { Hastat } from '../../src/cluster/hastat.js';
import { clusterPerTest, lockedWorkload, waitFor, type Cluster } from '../helpers/cluster.js';
import { hastatSchema, validate } from '../helpers/schema.js';

const newCluster = clusterPerTest();

/** Start and stop entries of a group that holds a marker file while it runs. */
function markerEntries(group: string): string {
  const acquire = `for f in $DIR/markers/${group}.*; do [ -e "$f" ] && echo "${group} $PEERHA_NODE found $f" >> $DIR/doubles; done; touch $DIR/markers/${group}.$PEERHA_NODE; echo "start ${group} $PEERHA_NODE" >> $DIR/events`;
  const release = `rm -f $DIR/markers/${group}.$PEERHA_NODE; echo "stop ${group} $PEERHA_NODE" >> $DIR/events`;
  return `${group}:${group}-up:start:wait:${acquire}\n${group}:${group}-down:stop:wait:${release}\n`;
}

function lines(cl: Cluster, file: string): string[] {
  const f = join(cl.dir, file);
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
}

const markers = (cl: Cluster): string[] => readdirSync(join(cl.dir, 'markers')).sort();

function logLines(out: string): Array<Record<string, unknown>> {
  return out.split('\n').flatMap((l) => {
    if (!l.startsWith('{')) return [];
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

const SCHEMA = hastatSchema();

/** The local part of a group in a node's hastat (only while that node runs it). */
const localOf = (h: Hastat | null, group: string) => h?.groups[group]?.local;

it('a service whose health check starts failing is restarted on its node, then moved to another node after max_restarts', async () => {
  const cl = newCluster({ cycle: '200ms', timeout: '1000ms' });
  mkdirSync(join(cl.dir, 'markers'));
  cl.writeRoot(
    'cltab',
    markerEntries('web') +
      `web:web-run:start:respawn:${lockedWorkload(cl.dir, 'web')}\n` +
      // the service "answers" on a node while $DIR/healthy.NODE exists
      'web:web-chk:start:monitor,interval=400ms,timeout=1s,failures=2,max_restarts=1,window=1m:test -e $DIR/healthy.$PEERHA_NODE\n',
  );
  cl.writeRoot('hactl', 'web start n1,n2\n');
  for (const n of ['n1', 'n2']) writeFileSync(join(cl.dir, `healthy.${n}`), '');
  await cl.startHeartbeating('n1');
  cl.start('n2');
  expect(await cl.waitRunning('web')).toBe('n1');
  await waitFor('a passing check on n1', () => localOf(cl.hastat('n1'), 'web')?.entries.find((e) => e.tag === 'web-chk')?.check?.lastResult === 'ok', 10_000);
  expect(localOf(cl.hastat('n1'), 'web')).toMatchObject({ restarts: 0, maxRestarts: 1, givenUp: false });

  // The service stops answering on n1: after two failed checks n1 restarts it (stop, then start).
  rmSync(join(cl.dir, 'healthy.n1'));
  await waitFor('web restarted on n1', () => lines(cl, 'events').join('|') === 'start web n1|stop web n1|start web n1', 15_000);
  writeFileSync(join(cl.dir, 'healthy.n1'), ''); // it answers again after the restart
  await waitFor('web healthy on n1 after the restart', () => {
    const local = localOf(cl.hastat('n1'), 'web');
    return cl.runningOn('web') === 'n1' && local?.restarts === 1 && local.entries.find((e) => e.tag === 'web-chk')?.check?.lastResult === 'ok';
  }, 10_000);
  expect(localOf(cl.hastat('n1'), 'web')?.givenUp).toBe(false);
  // the hastat with its checks and restarts validates against the documented schema
  const withChecks = cl.hastat('n1')!;
  expect(localOf(withChecks, 'web')?.entries.find((e) => e.tag === 'web-chk')?.check).toMatchObject({ failures: 0, threshold: 2, intervalMs: 400, timeoutMs: 1000 });
  expect(validate(withChecks, SCHEMA)).toEqual([]);
  expect(validate({ ...withChecks, groups: { web: { ...withChecks.groups.web, local: { ...localOf(withChecks, 'web'), entries: [{ tag: 't', mode: 'monitor', state: 'WATCHING', note: null, check: { lastAt: null } }] } } } }, SCHEMA).length).toBeGreaterThan(0);

  // `peerha status --root DIR web` shows the check, the failures in a row and the restarts.
  const shown = await cl.cli(['status', '--root', cl.root, 'web']);
  expect(shown.code, shown.stderr).toBe(0);
  expect(shown.stdout).toMatch(/web-chk\s+start\s+monitor,interval=400ms,timeout=1s,failures=2,max_restarts=1,window=1m\s+test -e/);
  expect(shown.stdout).toMatch(/on n1:[\s\S]*web-chk \(monitor\) (WATCHING|PROBING)[\s\S]*last check ok .*; 0 of 2 failed in a row; every 400ms, timeout 1s/);
  expect(shown.stdout).toMatch(/restarts in the window: 1 \(max 1\); given up: no/);

  // It stops answering again: a second restart would exceed max_restarts, so n1 gives it up (its
  // stop entry runs) and n2 takes it over.
  rmSync(join(cl.dir, 'healthy.n1'));
  await waitFor('web moved to n2', () => cl.runningOn('web') === 'n2', 30_000);
  expect(lines(cl, 'events')).toEqual(['start web n1', 'stop web n1', 'start web n1', 'stop web n1', 'start web n2']);
  expect(markers(cl)).toEqual(['web.n2']);
  expect(lines(cl, 'doubles')).toEqual([]);
  expect(cl.overlaps()).toEqual([]);
  const n1 = logLines(cl.monitors.get('n1')!.output());
  expect(n1.some((l) => l.msg === 'group given up on this node' && l.group === 'web')).toBe(true);
  expect(n1.some((l) => l.group === 'web' && l.runlevel === 'stop' && typeof l.reason === 'string' && l.reason.startsWith('FAILED at start here'))).toBe(true);
  // n1 does not take it back during its cooldown while n2 runs it; n2's view shows a healthy check
  await waitFor('n2 checks web', () => localOf(cl.hastat('n2'), 'web')?.entries.find((e) => e.tag === 'web-chk')?.check?.lastResult === 'ok', 10_000);
  expect(localOf(cl.hastat('n2'), 'web')).toMatchObject({ restarts: 0, givenUp: false });
  expect(cl.hastat('n1')?.memory?.failed.web).toMatchObject({ count: 1 }); // remembered like a failed test
  await cl.cyclesPass('n2', 5);
  expect(cl.runningOn('web')).toBe('n2');
  expect(lines(cl, 'doubles')).toEqual([]);
}, 90_000);

it('a crash-looping respawn entry is given up on its node and moves to another one', async () => {
  // Crash-loop backoff starts after 5 quick exits; each backoff counts as a restart; a third one
  // gives the group up.
  const cl = newCluster({ cycle: '200ms', timeout: '1000ms', env: { PEERHA_BACKOFF_MIN_MS: '200', PEERHA_BACKOFF_MAX_MS: '400', PEERHA_MAX_RESTARTS: '2' } });
  mkdirSync(join(cl.dir, 'markers'));
  cl.writeRoot(
    'cltab',
    markerEntries('loop') +
      // runs on a node while $DIR/ok.NODE exists, else exits at once: a crash loop
      'loop:loop-svc:start:respawn:echo "run $PEERHA_NODE" >> $DIR/runs; test -e $DIR/ok.$PEERHA_NODE && exec sleep 7401.5; exit 1\n',
  );
  cl.writeRoot('hactl', 'loop start n1,n2\n');
  writeFileSync(join(cl.dir, 'ok.n2'), '');
  await cl.startHeartbeating('n1');
  cl.start('n2');
  // (n1, preferred, starts it first; the crash loop shows DONE there, as respawn entries do)
  await waitFor('loop moved to n2', () => cl.runningOn('loop') === 'n2', 30_000);
  const events = lines(cl, 'events');
  expect(events.slice(0, 2)).toEqual(['start loop n1', 'stop loop n1']);
  expect(events[events.length - 1]).toBe('start loop n2');
  const runsOnN1 = lines(cl, 'runs').filter((l) => l === 'run n1').length;
  expect(runsOnN1).toBeGreaterThan(5); // it crash-looped there before it was given up
  const n1 = logLines(cl.monitors.get('n1')!.output());
  const gaveUp = n1.find((l) => l.msg === 'group given up on this node' && l.group === 'loop');
  expect(String(gaveUp?.note)).toMatch(/loop-svc is crash-looping .*after 2 restarts within 10 min \(max_restarts 2\)/);
  expect(markers(cl)).toEqual(['loop.n2']);
  expect(lines(cl, 'doubles')).toEqual([]);
  // n1 runs it no more: no new runs there while n2 keeps it
  await cl.cyclesPass('n2', 5);
  expect(lines(cl, 'runs').filter((l) => l === 'run n1').length).toBe(runsOnN1);
  expect(cl.runningOn('loop')).toBe('n2');
}, 90_000);
