// One-sided faults with real monitors: a node that cannot read a peer's folder (a tmpfs mounted
// over it in that node's own mount namespace) must not take the peer for dead; one that holds a
// live peer stale says so in its clstat, and the peer stops its groups (the poison pill). The
// faults cover DIR/beats too: with the peer's beats still moving, its clstat is not even read.

import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderStatus } from '../../src/cli/cluster.js';
import { clusterPerTest, lockedWorkload, waitFor, type Cluster } from '../helpers/cluster.js';

const newCluster = clusterPerTest();

/** Run the monitor in a mount namespace of its own, so that a mount there hides a folder from it alone. */
const PRIVATE_MOUNTS = ['unshare', '--mount', '--propagation', 'private', '--'];

function inNamespaceOf(pid: number, ...cmd: string[]): void {
  execFileSync('nsenter', ['-t', String(pid), '-m', '--', ...cmd], { stdio: 'pipe' });
}

/** Undo a cover mount there; "target is busy" while a read of the monitor's is in flight: asked again. */
async function unmountIn(pid: number, path: string): Promise<void> {
  await waitFor(`${path} unmounted`, () => {
    try {
      inNamespaceOf(pid, 'umount', path);
      return true;
    } catch (e) {
      if (/target is busy/.test(String((e as { stderr?: unknown }).stderr ?? e))) return false;
      throw e;
    }
  }, 10_000, 20);
}

/** Three monitors, W (a locked workload) preferred on n1; n3 in its own mount namespace. */
async function threeNodes(coverBeforeStart: boolean): Promise<{ cl: Cluster; n3pid: number }> {
  const c = newCluster({ cycle: '250ms', timeout: '1000ms' });
  c.writeRoot('cltab', `W:w:start:respawn:${lockedWorkload(c.dir, 'W')}\n`);
  c.writeRoot('hactl', 'W start n1,n2,n3\n');
  await c.startHeartbeating('n1');
  c.start('n2');
  await waitFor('W on n1', () => c.runningOn('W') === 'n1', 20_000);
  const wrap = coverBeforeStart ? ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', `mount -t tmpfs none ${join(c.root, 'nodes', 'n1')} && exec "$@"`, 'sh'] : PRIVATE_MOUNTS;
  const n3 = await c.startHeartbeating('n3', {}, { wrap });
  return { cl: c, n3pid: n3.proc.pid! };
}

describe('one-sided read loss (mount namespace)', () => {
  it('a peer n3 cannot read is unknown to it, not stale: W stays on n1, no overlap', async () => {
    const { cl, n3pid } = await threeNodes(false);
    await cl.cyclesPass('n3', 4);
    inNamespaceOf(n3pid, 'mount', '-t', 'tmpfs', 'none', join(cl.root, 'nodes', 'n1'));
    inNamespaceOf(n3pid, 'mount', '-t', 'tmpfs', 'none', join(cl.root, 'beats'));
    await waitFor('n1 unknown to n3, with the error', () => {
      const n1 = cl.hastat('n3')?.nodes.n1;
      return n1?.state === 'unknown' && /ENOENT/.test(n1.readError ?? '');
    }, 15_000);
    // Many timeouts of read loss: nothing moves, nothing runs twice.
    await cl.cyclesPass('n3', 20);
    expect(cl.hastat('n3')?.nodes.n1?.state).toBe('unknown');
    // n3 may announce a plan (it sees W nowhere), but never moves to its test while n1 is unread.
    expect(cl.runningOn('W', 'start', ['n1', 'n2'])).toBe('n1');
    expect(cl.clstat('n3')?.groups.filter((g) => g.group === 'W' && g.level !== 'plan')).toEqual([]);
    expect(cl.clstat('n3')?.groups.filter((g) => g.group === 'W')).toEqual([]);
    expect(cl.overlaps()).toEqual([]);
    expect(cl.hastat('n2')?.nodes.n1?.state).toBe('up'); // the others see n1 fine
    await unmountIn(n3pid, join(cl.root, 'nodes', 'n1'));
    await unmountIn(n3pid, join(cl.root, 'beats'));
    await waitFor('n1 up again for n3', () => cl.hastat('n3')?.nodes.n1?.state === 'up', 15_000);
    expect(cl.runningOn('W')).toBe('n1');
    expect(cl.overlaps()).toEqual([]);
  }, 120_000);

  it('a node that never could read n1 keeps it unknown: no plan of its groups goes past plan, nothing runs twice', async () => {
    const { cl } = await threeNodes(true);
    await waitFor('n1 unknown to n3 (never read)', () => cl.hastat('n3')?.nodes.n1?.state === 'unknown', 15_000);
    await cl.cyclesPass('n3', 20);
    expect(cl.hastat('n3')?.nodes.n1?.state).toBe('unknown');
    // n3 may announce a plan (it sees W nowhere), but never moves to its test while n1 is unread.
    expect(cl.runningOn('W', 'start', ['n1', 'n2'])).toBe('n1');
    expect(cl.clstat('n3')?.groups.filter((g) => g.group === 'W' && g.level !== 'plan')).toEqual([]);
    expect(cl.overlaps()).toEqual([]);
    // n3's view says why, and what to do if n1 were really gone
    const view = cl.hastat('n3')!;
    expect(view.nodes.n1).toMatchObject({ state: 'unknown', seq: null, readError: 'ENOENT' });
    expect(renderStatus(view)).toMatch(/n1: never read .*remove its folder and beats: rm -r DIR\/nodes\/n1 DIR\/beats\/n1@\*/);
  }, 120_000);

  it('a node that reads a frozen copy of n1 (a stale cache) holds it stale and says so; n1 stops W (poison pill) before n3 starts it', async () => {
    const { cl, n3pid } = await threeNodes(false);
    await cl.cyclesPass('n3', 4);
    // Snapshots of n1's folder and of the beats bound over them, in n3's mount namespace only: n3
    // reads n1's old clstat and sees every beat stand still (n3's own beats go to its snapshot,
    // so the others read its clstat instead, and see it alive).
    const snap = join(cl.dir, 'n1-snapshot');
    const beats = join(cl.dir, 'beats-snapshot');
    execFileSync('cp', ['-a', join(cl.root, 'nodes', 'n1'), snap]);
    execFileSync('cp', ['-a', join(cl.root, 'beats'), beats]);
    inNamespaceOf(n3pid, 'mount', '--bind', snap, join(cl.root, 'nodes', 'n1'));
    inNamespaceOf(n3pid, 'mount', '--bind', beats, join(cl.root, 'beats'));
    await waitFor('n3 holds n1 stale in its clstat', () => cl.clstat('n3')?.stale?.some((s) => s.node === 'n1'), 15_000);
    await waitFor('n1 knows it is held stale', () => /n3/.test(cl.hastat('n1')?.nodes.n1?.declaredStaleBy ?? ''), 15_000);
    // W leaves n1 and runs on exactly one other node; n1 runs nothing while n3 holds it stale.
    const owner = await waitFor('W moved off n1', () => {
      const on = cl.runningOn('W');
      return on && on !== 'n1' ? on : null;
    }, 20_000);
    await cl.cyclesPass('n1', 8);
    expect(cl.runningOn('W')).toBe(owner);
    expect(cl.clstat('n1')?.groups.filter((g) => g.group === 'W' && g.level !== 'stop')).toEqual([]);
    expect(cl.overlaps()).toEqual([]);
    const st = await cl.cli(['status', '--root', cl.root]);
    expect(st.stdout).toMatch(/poison pill:\n\s+n1 is held stale by n3/);
    // Healed: n3 reads n1 again, drops its claim, n1 may run groups again; W still runs once.
    await unmountIn(n3pid, join(cl.root, 'nodes', 'n1'));
    await unmountIn(n3pid, join(cl.root, 'beats'));
    await waitFor('n1 no longer held stale', () => cl.hastat('n1') && !cl.hastat('n1')!.nodes.n1?.declaredStaleBy, 15_000);
    await cl.cyclesPass('n1', 8);
    expect(cl.runningOn('W')).not.toBeNull();
    expect(cl.overlaps()).toEqual([]);
  }, 120_000);
});

describe('a clstat deleted in a loop', () => {
  it('is unreadable now and then, never dead: W2 stays on n2, no overlap', async () => {
    const cl = newCluster({ cycle: '250ms', timeout: '1000ms' });
    cl.writeRoot('cltab', `W2:w2:start:respawn:${lockedWorkload(cl.dir, 'W2')}\n`);
    cl.writeRoot('hactl', 'W2 start n2,n1,n3\n');
    await cl.startHeartbeating('n2');
    for (const n of ['n1', 'n3']) cl.start(n);
    await waitFor('W2 on n2', () => cl.runningOn('W2') === 'n2', 20_000);
    const path = join(cl.root, 'nodes', 'n2', 'clstat');
    // 4 timeouts of deletions every 100 ms, counted in n3's heartbeats.
    await cl.duringCycles('n3', 16, () => rmSync(path, { force: true }));
    await cl.cyclesPass('n3', 8);
    expect(cl.runningOn('W2')).toBe('n2');
    for (const n of ['n1', 'n3']) expect(cl.clstat(n)?.groups.filter((g) => g.group === 'W2'), n).toEqual([]);
    expect(cl.overlaps()).toEqual([]);
  }, 120_000);
});
