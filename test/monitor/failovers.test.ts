// Issue 15 item 7: failover counts are the cluster's — one count in every view, kept when
// monitors restart. Real monitors on a temp root.
import { describe, expect, it } from 'vitest';
import { clusterPerTest, lockedWorkload, waitFor } from '../helpers/cluster.js';

const cluster = clusterPerTest();

describe('failover counts', () => {
  it('are the same in every view, also a monitor started after the failover, and survive restarts', async () => {
    const cl = cluster();
    cl.writeRoot('cltab', `web:web-run:start:respawn:${lockedWorkload(cl.dir, 'web')}\n`);
    cl.writeRoot('hactl', 'web start\n');
    for (const n of ['n1', 'n2', 'n3']) cl.start(n);
    const owner = await cl.waitRunning('web');
    await cl.killNode(owner);
    const alive = ['n1', 'n2', 'n3'].filter((n) => n !== owner);
    const heir = await cl.waitRunning('web', 'start', 15_000, alive);
    const count = (n: string): number | undefined => cl.hastat(n)?.groups.web?.failovers;
    await waitFor('both live views count the failover', () => alive.every((n) => count(n) === 1), 10_000);
    // The node that crashed comes back: it never saw the move, yet shows the cluster's count.
    cl.start(owner);
    await waitFor(`${owner}'s new view`, () => cl.hastat(owner)?.nodes[owner]?.state === 'up' && cl.hastat(owner)?.groups.web?.instances[heir] !== undefined, 15_000);
    await cl.cyclesPass(owner, 3);
    expect(count(owner)).toBe(1);
    // The whole cluster down and up again (halt: web stops everywhere, no hand-over), then placed
    // on whichever node — a cold start, no failover: the count stays.
    const halt = await cl.cli(['halt', '--root', cl.root, '--wait=30']);
    expect(halt.code, halt.stdout + halt.stderr).toBe(0);
    for (const m of cl.monitors.values()) await m.exited;
    expect((await cl.cli(['halt', '--undo', '--root', cl.root])).code).toBe(0);
    for (const n of ['n1', 'n2', 'n3']) cl.start(n);
    await cl.waitRunning('web');
    for (const n of ['n1', 'n2', 'n3']) await cl.cyclesPass(n, 3);
    expect(['n1', 'n2', 'n3'].map(count)).toEqual([1, 1, 1]);
  }, 120_000);
});
