// Resources outlive processes: a group's stop entries must release them on every path before
// anyone else starts the group. A marker file per holder stands in for a VIP: the group's start
// entry creates $DIR/markers/GROUP.NODE (and records a double holder if another node's marker is
// there), its stop entry removes it; a flock workload runs next to it. Real monitors, one test
// per path.

import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatClstat } from '../../src/config/clstat.js';
import { clusterPerTest, lockedWorkload, waitFor, type Cluster, type ClusterOptions } from '../helpers/cluster.js';

const newCluster = clusterPerTest();

const ACQUIRE = `#!/bin/sh
g=$1; d=$(dirname "$0")
for f in "$d"/markers/"$g".*; do
  [ -e "$f" ] || continue
  [ "$f" = "$d/markers/$g.$PEERHA_NODE" ] && continue
  echo "$g $PEERHA_NODE found $(basename "$f") $(date +%s.%N)" >> "$d/doubles"
done
touch "$d/markers/$g.$PEERHA_NODE"
echo "acquire $g $PEERHA_NODE $(date +%s.%N)" >> "$d/events"
`;
const RELEASE = `#!/bin/sh
g=$1; d=$(dirname "$0")
rm -f "$d/markers/$g.$PEERHA_NODE"
echo "release $g $PEERHA_NODE $(date +%s.%N)" >> "$d/events"
`;

interface Event {
  readonly what: 'acquire' | 'release';
  readonly group: string;
  readonly node: string;
  readonly at: number;
}

class Markers {
  constructor(readonly cl: Cluster) {
    mkdirSync(join(cl.dir, 'markers'), { recursive: true });
    for (const [name, text] of [['acquire.sh', ACQUIRE], ['release.sh', RELEASE]] as const) {
      writeFileSync(join(cl.dir, name), text);
      chmodSync(join(cl.dir, name), 0o755);
    }
  }

  /** cltab lines of a group holding a marker and running a locked workload, released at `stopLevel`. */
  cltab(group: string, stopLevel = 'stop'): string {
    return `${group}:${group}-vip:start:wait:sh $DIR/acquire.sh ${group}\n${group}:${group}-run:start:respawn:${lockedWorkload(this.cl.dir, group)}\n${group}:${group}-unvip:${stopLevel}:wait:sh $DIR/release.sh ${group}\n`;
  }

  /** Nodes holding the group's marker now. */
  holders(group: string): string[] {
    return readdirSync(join(this.cl.dir, 'markers')).filter((f) => f.startsWith(`${group}.`)).map((f) => f.slice(group.length + 1)).sort();
  }

  all(): string[] {
    return readdirSync(join(this.cl.dir, 'markers')).sort();
  }

  doubles(): string[] {
    const f = join(this.cl.dir, 'doubles');
    return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
  }

  events(): Event[] {
    const f = join(this.cl.dir, 'events');
    if (!existsSync(f)) return [];
    return readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => {
      const [what, group, node, at] = l.split(' ');
      return { what: what as Event['what'], group: group!, node: node!, at: Number(at) };
    });
  }

  /** When `node` last released / acquired `group` (seconds, wall clock of this machine). */
  last(what: Event['what'], group: string, node: string): number | undefined {
    return this.events().filter((e) => e.what === what && e.group === group && e.node === node).at(-1)?.at;
  }
}

/** Three nodes; web (marker + workload) preferred on n1 and running there. */
async function webOnN1(opts: ClusterOptions = {}, startN1?: (cl: Cluster) => Promise<unknown>): Promise<{ cl: Cluster; m: Markers }> {
  const cl = newCluster({ cycle: '200ms', timeout: '1500ms', ...opts });
  const m = new Markers(cl);
  cl.writeRoot('cltab', m.cltab('web'));
  cl.writeRoot('hactl', 'web start n1,n2,n3\n');
  await (startN1 ? startN1(cl) : cl.startHeartbeating('n1'));
  await cl.startHeartbeating('n2');
  await cl.startHeartbeating('n3');
  await cl.waitRunning('web', 'start', 30_000);
  await waitFor('web on n1 holding its marker', () => cl.runningOn('web') === 'n1' && m.holders('web').join() === 'n1', 30_000);
  return { cl, m };
}

/** The group moved from `from` to another node, and `from` released before the new owner acquired. */
async function movedCleanly(cl: Cluster, m: Markers, from: string, among: string[]): Promise<string> {
  const to = await cl.waitRunning('web', 'start', 30_000, among);
  expect(to).not.toBe(from);
  await waitFor(`${to} holds the marker alone`, () => m.holders('web').join() === to, 15_000);
  const released = m.last('release', 'web', from);
  const acquired = m.last('acquire', 'web', to);
  expect(released, `${from} ran its stop entry`).toBeDefined();
  expect(acquired).toBeDefined();
  expect(released!).toBeLessThan(acquired!);
  return to;
}

/** Everything stopped in order: no marker left, and nobody ever found another's marker. */
async function endsClean(cl: Cluster, m: Markers): Promise<void> {
  await cl.stopAll();
  expect(m.all()).toEqual([]);
  expect(m.doubles()).toEqual([]);
  expect(cl.overlaps()).toEqual([]);
}

describe('stop entries run on every exit path (marker resource)', () => {
  it('leave (SIGTERM): the owner runs its stop entry before the heir starts; a second leave, then the last node', async () => {
    const { cl, m } = await webOnN1();
    cl.monitors.get('n1')!.proc.kill('SIGTERM');
    expect(await cl.monitors.get('n1')!.exited).toBe(0);
    const next = await movedCleanly(cl, m, 'n1', ['n2', 'n3']);
    cl.monitors.get(next)!.proc.kill('SIGTERM');
    expect(await cl.monitors.get(next)!.exited).toBe(0);
    const last = next === 'n2' ? 'n3' : 'n2';
    expect(await movedCleanly(cl, m, next, [last])).toBe(last);
    await endsClean(cl, m);
  }, 120_000);

  it('halt: every node stops its groups through their stop entries and leaves', async () => {
    const { cl, m } = await webOnN1();
    const r = await cl.cli(['halt', '--root', cl.root, '--wait=30']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const mon of cl.monitors.values()) expect(await mon.exited).toBe(0);
    expect(m.all()).toEqual([]);
    expect(m.last('release', 'web', 'n1')).toBeDefined();
    await endsClean(cl, m);
  }, 120_000);

  it('loss of quorum: the owner runs its stop entry', async () => {
    const { cl, m } = await webOnN1({ yaml: 'quorum:\n  policy: majority\n  expected: 3\n' });
    cl.freeze('n2');
    cl.freeze('n3');
    await waitFor('n1 released web (no quorum)', () => m.holders('web').length === 0 && m.last('release', 'web', 'n1') !== undefined, 20_000);
    cl.thaw('n2');
    cl.thaw('n3');
    await cl.waitRunning('web', 'start', 30_000);
    await waitFor('one holder again', () => m.holders('web').length === 1, 15_000);
    await endsClean(cl, m);
  }, 120_000);

  it('wanted stop, then removal from cltab: the stop entry runs both times', async () => {
    const { cl, m } = await webOnN1();
    expect((await cl.set('web', 'stop', 20)).code).toBe(0);
    await waitFor('marker released (hactl stop)', () => m.holders('web').length === 0, 15_000);
    expect((await cl.set('web', 'start', 20)).code).toBe(0);
    await waitFor('marker held again', () => m.holders('web').length === 1, 15_000);
    const releasesBefore = m.events().filter((e) => e.what === 'release').length;
    cl.writeRoot('cltab', 'other:o:start:wait:true\n');
    await waitFor('marker released (group removed from cltab)', () => m.holders('web').length === 0 && m.events().filter((e) => e.what === 'release').length > releasesBefore, 15_000);
    await endsClean(cl, m);
  }, 120_000);

  it('monitor kill -9: its watchdog kills the group and runs the stop entry before a peer takes over', async () => {
    const { cl, m } = await webOnN1();
    cl.monitors.get('n1')!.proc.kill('SIGKILL');
    await movedCleanly(cl, m, 'n1', ['n2', 'n3']);
    await endsClean(cl, m);
  }, 120_000);

  it('monitor SIGSTOP: the watchdog self-fences and runs the stop entry before a peer takes over; the thawed monitor rejoins', async () => {
    const { cl, m } = await webOnN1();
    cl.freeze('n1');
    const to = await movedCleanly(cl, m, 'n1', ['n2', 'n3']);
    cl.thaw('n1');
    await waitFor('n1 heartbeating again', () => cl.hastat(to)?.nodes.n1?.state === 'up', 20_000);
    await cl.cyclesPass('n1', 10);
    expect(m.holders('web')).toEqual([to]);
    await endsClean(cl, m);
  }, 120_000);

  it('shared directory read-only for the owner: it stops its group through the stop entry and a peer takes over', async () => {
    const { cl, m } = await webOnN1({}, (c) => c.startHeartbeating('n1', {}, { wrap: ['unshare', '--mount', '--propagation', 'private', '--'] }));
    const pid = cl.monitors.get('n1')!.proc.pid!;
    execFileSync('nsenter', ['-t', String(pid), '-m', '--', 'mount', '--bind', '-o', 'ro', cl.root, cl.root], { stdio: 'pipe' });
    execFileSync('nsenter', ['-t', String(pid), '-m', '--', 'mount', '-o', 'remount,bind,ro', cl.root], { stdio: 'pipe' });
    await movedCleanly(cl, m, 'n1', ['n2', 'n3']);
    await endsClean(cl, m);
  }, 120_000);

  it('restart after a crash (monitor and watchdog killed, web allowed only on n1): the new run first runs the stop entry of what the old one ran', async () => {
    const { cl, m } = await webOnN1();
    cl.writeRoot('hactl', 'web start n1\n');
    await cl.cyclesPass('n2', 5);
    const mon = cl.monitors.get('n1')!;
    const watchdogs = cl.watchdogPids('n1');
    for (const p of [mon.proc.pid!, ...watchdogs]) process.kill(p, 'SIGSTOP');
    for (const p of [...watchdogs, mon.proc.pid!]) process.kill(p, 'SIGKILL');
    await mon.exited;
    expect(m.holders('web')).toEqual(['n1']); // nobody cleaned up: the resource is still held
    const acquiresBefore = m.events().filter((e) => e.what === 'acquire').length;
    cl.start('n1');
    await waitFor('n1 released, then acquired again', () => m.events().filter((e) => e.what === 'acquire').length > acquiresBefore, 30_000);
    const ev = m.events();
    const release = ev.findLastIndex((e) => e.what === 'release' && e.node === 'n1');
    const acquire = ev.findLastIndex((e) => e.what === 'acquire' && e.node === 'n1');
    expect(release).toBeGreaterThanOrEqual(0);
    expect(release).toBeLessThan(acquire);
    await cl.waitRunning('web', 'start', 30_000);
    await endsClean(cl, m);
  }, 120_000);

  it('conflict: a node that loses a conflict runs its stop entry', async () => {
    const { cl, m } = await webOnN1();
    // A node n9 (the test writing its clstat) also runs web, and hactl prefers it: n1 loses.
    mkdirSync(join(cl.root, 'nodes', 'n9'), { recursive: true });
    let seq = 0;
    const beat = (): void => cl.writeNodeFile('n9', 'clstat', formatClstat({ header: { node: 'n9', pid: 99, seq: ++seq, time: new Date().toISOString() }, groups: [{ group: 'web', level: 'start', state: 'DONE' }] }));
    beat();
    const timer = setInterval(beat, 100);
    try {
      cl.writeRoot('hactl', 'web start n9,n1,n2,n3\n');
      await waitFor('n1 released web after losing the conflict', () => m.holders('web').length === 0 && m.last('release', 'web', 'n1') !== undefined, 20_000);
      await waitFor('n1 publishes web at stop DONE', () => {
        const g = cl.clstat('n1')?.groups.find((x) => x.group === 'web');
        return g?.level === 'stop' && g.state === 'DONE';
      }, 10_000);
      expect(cl.monitors.get('n1')!.output()).toMatch(/conflict: n9 has it at start DONE/);
    } finally {
      clearInterval(timer);
    }
    await endsClean(cl, m);
  }, 120_000);
});

describe('a configured stop level', () => {
  it('stop_level per group (web: down): kill -9 and leave run the down entries, and clstat still says stop', async () => {
    const cl = newCluster({ cycle: '200ms', timeout: '1500ms', yaml: 'stop_level:\n  default: stop\n  web: down\n' });
    const m = new Markers(cl);
    cl.writeRoot('cltab', m.cltab('web', 'down'));
    cl.writeRoot('hactl', 'web start n1,n2,n3\n');
    for (const n of ['n1', 'n2', 'n3']) await cl.startHeartbeating(n);
    await waitFor('web on n1 holding its marker', () => cl.runningOn('web') === 'n1' && m.holders('web').join() === 'n1', 30_000);
    cl.monitors.get('n1')!.proc.kill('SIGKILL'); // its watchdog runs the down entries
    const to = await movedCleanly(cl, m, 'n1', ['n2', 'n3']);
    cl.monitors.get(to)!.proc.kill('SIGTERM'); // the monitor runs them
    expect(await cl.monitors.get(to)!.exited).toBe(0);
    const last = to === 'n2' ? 'n3' : 'n2';
    await movedCleanly(cl, m, to, [last]);
    // The monitors speak of `stop` (the protocol level) whatever the group's own stop level is.
    expect(cl.clstat(to)?.groups.some((g) => g.level === 'down')).toBe(false);
    await endsClean(cl, m);
  }, 120_000);
});

describe('whole-node freeze (VM pause): only fencing closes the window', () => {
  it('monitor, watchdog and group processes SIGSTOPped: a peer takes over; on thaw the old owner releases at once; the overlap is measured', async () => {
    const { cl, m } = await webOnN1();
    const mon = cl.monitors.get('n1')!;
    const watchdogs = cl.watchdogPids('n1');
    const pgids = await cl.settledPgids('n1');
    const all = [mon.proc.pid!, ...watchdogs];
    for (const p of all) process.kill(p, 'SIGSTOP');
    for (const pg of pgids) process.kill(-pg, 'SIGSTOP');
    const to = await cl.waitRunning('web', 'start', 30_000, ['n2', 'n3']);
    await waitFor(`${to} acquired`, () => m.last('acquire', 'web', to) !== undefined, 15_000);
    // Frozen, n1 still holds the marker: the double holder that only fencing prevents.
    expect(m.holders('web')).toEqual(['n1', to].sort());
    const thawAt = Date.now() / 1000;
    for (const pg of pgids) process.kill(-pg, 'SIGCONT');
    for (const p of all) process.kill(p, 'SIGCONT');
    // The release script removes the marker, then logs the event: wait for both.
    await waitFor('n1 released after the thaw', () => m.holders('web').join() === to && m.last('release', 'web', 'n1') !== undefined, 15_000);
    const released = m.last('release', 'web', 'n1')!;
    const overlap = released - m.last('acquire', 'web', to)!;
    const afterThaw = released - thawAt;
    console.log(`whole-node freeze: overlap ${overlap.toFixed(2)} s, released ${(afterThaw * 1000).toFixed(0)} ms after the thaw`);
    expect(afterThaw).toBeGreaterThanOrEqual(0);
    expect(m.doubles().every((d) => d.startsWith(`web ${to} found web.n1`))).toBe(true);
    await cl.stopAll();
    expect(m.all()).toEqual([]);
  }, 120_000);
});
