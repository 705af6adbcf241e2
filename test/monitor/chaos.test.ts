// Harder cluster scenarios with real monitors: many nodes and groups, clock skew, quorum loss,
// garbage in the shared files. Every group's workload holds an exclusive flock on a per-group
// file and records any overlap; every test asserts that there was none.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCltab } from '../../src/config/cltab.js';
import { parseHactl } from '../../src/config/hactl.js';
import { Cluster, lockedWorkload, waitFor } from '../helpers/cluster.js';

let c: Cluster | null = null;
afterEach(async () => {
  await c?.cleanup();
  c = null;
});

function measured(what: string, ms: number): void {
  console.log(`[measured] ${what}: ${ms} ms`);
}

const range = (n: number, prefix: string): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

function groupsCltab(cl: Cluster, groups: readonly string[]): string {
  return groups.flatMap((g) => [`${g}:${g}-test:test:test:true`, `${g}:${g}-run:start:respawn:${lockedWorkload(cl.dir, g)}`]).join('\n') + '\n';
}

describe('peerha monitor: chaos', () => {
  it('eight monitors cold-started at once with 20 groups: each group runs exactly once, 20 times over', async () => {
    const cl = new Cluster({ cycle: '200ms', timeout: '2s' });
    c = cl;
    const nodes = range(8, 'n');
    const groups = range(20, 'g');
    cl.writeRoot('cltab', groupsCltab(cl, groups));
    const hactl = (level: string): string => groups.map((g) => `${g} ${level}`).join('\n') + '\n';
    cl.writeRoot('hactl', hactl('start'));

    /** Each group at start on exactly one live node; returns group → node. */
    const allOnce = (): Map<string, string> | null => {
      const p = cl.placements(nodes);
      const out = new Map<string, string>();
      for (const g of groups) {
        const inst = p.get(g) ?? [];
        if (inst.length !== 1 || inst[0]!.level !== 'start' || inst[0]!.state !== 'DONE') return null;
        out.set(g, inst[0]!.node);
      }
      return out;
    };
    const startAll = async (round: number): Promise<void> => {
      const t0 = Date.now();
      let placed: Map<string, string>;
      try {
        placed = await waitFor(`round ${round}: every group once`, allOnce, 40_000, 100);
      } catch (e) {
        throw new Error(`${(e as Error).message}; placements: ${JSON.stringify([...cl.placements(nodes)])}`);
      }
      const perNode = nodes.map((n) => [...placed.values()].filter((x) => x === n).length);
      console.log(`[8x20] round ${round}: all 20 up in ${Date.now() - t0} ms; groups per node ${perNode.join(',')}`);
      expect(cl.overlaps()).toEqual([]);
    };

    // Round 1 (and 11): a true cold start, all eight monitors at once.
    const coldStart = async (round: number): Promise<void> => {
      for (const n of nodes) cl.start(n);
      await startAll(round);
    };
    await coldStart(1);
    for (let round = 2; round <= 20; round++) {
      if (round === 11) {
        // Orderly stop of every monitor (their groups stop), then a second cold start.
        await cl.stopAll();
        for (const n of nodes) expect(cl.monitors.get(n)!.exitCode()).toBe(0);
        expect(cl.placements(nodes).size).toBe(0);
        await coldStart(round);
        continue;
      }
      cl.writeRoot('hactl', hactl('stop'));
      await waitFor(`round ${round}: every group stopped`, () => cl.placements(nodes).size === 0, 30_000, 100);
      cl.writeRoot('hactl', hactl('start'));
      await startAll(round);
    }
    for (const n of nodes) expect(cl.monitors.get(n)!.exitCode()).toBeUndefined();
    expect(cl.overlaps()).toEqual([]);
  }, 240_000);

  it('a node whose clock is 1 h ahead: no false staleness, no fencing', async () => {
    const cl = new Cluster({ yaml: 'fence:\n  command: echo fenced >> $DIR/fenced; true\n' });
    c = cl;
    const nodes = ['n1', 'n2', 'n3'];
    cl.writeRoot('cltab', groupsCltab(cl, ['web', 'skew']));
    // skew may only run on the skewed node; web anywhere.
    cl.writeRoot('hactl', 'web start\nskew start n2\n');
    cl.start('n1');
    cl.start('n2', { PEERHA_CLOCK_OFFSET_MS: '3600000' });
    cl.start('n3');
    expect(await cl.waitRunning('skew', 'start', 20_000, nodes)).toBe('n2');
    const web = await cl.waitRunning('web', 'start', 20_000, nodes);
    // Its clock really is an hour ahead.
    const t = Date.parse(cl.clstat('n2')!.header!.time);
    expect(t - Date.now()).toBeGreaterThan(3_500_000);
    // Over 4 × timeout (30 of n1's 200 ms cycles), every view shows every node up, and nothing moves.
    const pg = { skew: await cl.settledPgids('n2'), web: await cl.settledPgids(web) };
    let samples = 0;
    await cl.duringCycles('n1', 30, () => {
      for (const viewer of nodes) {
        const h = cl.hastat(viewer);
        if (!h) continue;
        for (const n of nodes) expect(h.nodes[n]?.state, `${viewer} sees ${n}`).toBe('up');
        expect(h.quorum.ok).toBe(true);
        samples++;
      }
      expect(cl.runningOn('skew', 'start', nodes)).toBe('n2');
      expect(cl.runningOn('web', 'start', nodes)).toBe(web);
    });
    expect(samples).toBeGreaterThan(30);
    expect(existsSync(join(cl.dir, 'fenced'))).toBe(false);
    for (const n of nodes) {
      expect(cl.monitors.get(n)!.output()).not.toMatch(/STOMITH|self-fenc|frozen/);
      expect(Object.values(cl.hastat(n)!.nodes).some((v) => v.lastFence)).toBe(false);
    }
    expect(cl.pgids('n2')).toEqual(pg.skew);
    expect(cl.pgids(web)).toEqual(pg.web);

    // Once the skewed node is dead, its hastat (stamped an hour ahead) must not pass for the
    // freshest view: `status` and `set --wait` read a live node's.
    await cl.killNode('n2');
    await waitFor('a live node sees n2 stale', () => ['n1', 'n3'].some((n) => cl.hastat(n)?.nodes.n2?.state === 'stale'), 10_000);
    const st = await cl.cli(['status', '--root', cl.root, '--json']);
    expect(st.code).toBe(0);
    const view = JSON.parse(st.stdout) as { node: string };
    expect(['n1', 'n3']).toContain(view.node);
    const r = await cl.set('web', 'stop', 15);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(cl.placements(['n1', 'n3']).get('web')).toBeUndefined();
    expect(cl.overlaps()).toEqual([]);
  }, 60_000);

  it('quorum: 5 nodes, majority of 5; kill 3 → the 2 survivors stop their groups; restart the 3 → groups come back', async () => {
    const cl = new Cluster({ yaml: 'quorum:\n  policy: majority\n  expected: 5\n' });
    c = cl;
    const nodes = range(5, 'n');
    // One group pinned to each node (so the survivors surely run something), and web anywhere.
    const pinned = nodes.map((n) => `on${n}`);
    cl.writeRoot('cltab', groupsCltab(cl, [...pinned, 'web']));
    cl.writeRoot('hactl', [...nodes.map((n) => `on${n} start ${n}`), 'web start'].join('\n') + '\n');
    for (const n of nodes) cl.start(n);
    for (const n of nodes) expect(await cl.waitRunning(`on${n}`, 'start', 20_000, nodes)).toBe(n);
    await cl.waitRunning('web', 'start', 20_000, nodes);

    const victims = ['n3', 'n4', 'n5'];
    const survivors = ['n1', 'n2'];
    const survivorPgids = (await Promise.all(survivors.map((n) => cl.settledPgids(n)))).flat();
    expect(survivorPgids.length).toBeGreaterThanOrEqual(2);
    const t0 = Date.now();
    for (const n of victims) await cl.killNode(n);
    await waitFor('survivors lost quorum', () => survivors.every((n) => cl.hastat(n)?.quorum.ok === false), 15_000);
    await waitFor('survivors stopped every group', () => cl.placements(survivors).size === 0, 15_000);
    measured('kill 3 of 5 → survivors stopped their groups', Date.now() - t0);
    expect(cl.anyAlive(survivorPgids)).toBe(false);
    expect(cl.hastat('n1')!.quorum.reason).toMatch(/2 of 5/);
    // And they start nothing while in minority (2 × timeout: 15 cycles).
    await cl.duringCycles(survivors[0]!, 15, () => expect(cl.placements(survivors).size).toBe(0));

    const t1 = Date.now();
    for (const n of victims) cl.start(n);
    for (const n of nodes) expect(await cl.waitRunning(`on${n}`, 'start', 20_000, nodes)).toBe(n);
    await cl.waitRunning('web', 'start', 20_000, nodes);
    measured('restart of the 3 → every group back', Date.now() - t1);
    for (const n of nodes) expect(cl.hastat(n)?.quorum.ok).toBe(true);
    expect(cl.overlaps()).toEqual([]);
  }, 90_000);

  it('random bytes over hactl or cltab in any node folder (or DIR) never crash a monitor nor stop a running group', async () => {
    const cl = new Cluster();
    c = cl;
    const nodes = ['n1', 'n2', 'n3'];
    const cltabText = groupsCltab(cl, ['web', 'db']);
    const hactlText = 'web start\ndb start\n';
    cl.writeRoot('cltab', cltabText);
    cl.writeRoot('hactl', hactlText);
    for (const n of nodes) cl.start(n);
    const owner = { web: await cl.waitRunning('web', 'start', 20_000, nodes), db: await cl.waitRunning('db', 'start', 20_000, nodes) };
    await waitFor('every node replicated both files', () => nodes.every((n) => existsSync(join(cl.root, 'nodes', n, 'hactl')) && existsSync(join(cl.root, 'nodes', n, 'cltab'))), 5_000);
    const pg = new Map(await Promise.all(nodes.map(async (n) => [n, await cl.settledPgids(n)] as const)));

    /** Random bytes that do not happen to be a valid file of that kind (a valid one is a real edit). */
    const garbage = (file: 'hactl' | 'cltab'): Buffer => {
      for (;;) {
        const b = randomBytes(64 + Math.floor(Math.random() * 2048));
        const text = b.toString('utf8');
        const ok = file === 'hactl' ? parseHactl(text, 'x').ok : parseCltab(text, 'x').ok;
        if (!ok) return b;
      }
    };
    let sawErrors = false;
    for (let i = 0; i < 40; i++) {
      const file = i % 2 === 0 ? 'hactl' : 'cltab';
      const where = [...nodes, 'DIR'][i % 4]!;
      if (where === 'DIR') writeFileSync(join(cl.root, file), garbage(file)); // in place, not atomically
      else cl.writeNodeFile(where, file, garbage(file));
      await new Promise((r) => setTimeout(r, 100)); // pacing of the fault injection
      for (const n of nodes) expect(cl.monitors.get(n)!.exitCode(), `${n} exited:\n${cl.monitors.get(n)!.output().slice(-2000)}`).toBeUndefined();
      expect(cl.runningOn('web', 'start', nodes)).toBe(owner.web);
      expect(cl.runningOn('db', 'start', nodes)).toBe(owner.db);
      if (nodes.some((n) => (cl.hastat(n)?.errors ?? []).some((e) => /hactl|cltab/.test(e)))) sawErrors = true;
    }
    // A copy rewritten in place is read once it stands still: the last bytes written are reported.
    if (!sawErrors) await waitFor('hastat errors show the parse errors', () => nodes.some((n) => (cl.hastat(n)?.errors ?? []).some((e) => /hactl|cltab/.test(e))), 10_000);
    // Nothing was restarted: the same process groups run.
    for (const n of nodes) expect(cl.pgids(n)).toEqual(pg.get(n));
    // Repair the admin copies: the errors clear everywhere (node copies heal by replication).
    cl.writeRoot('cltab', cltabText);
    cl.writeRoot('hactl', hactlText);
    await waitFor('errors cleared', () => nodes.every((n) => cl.hastat(n)?.errors.length === 0), 10_000);
    expect(cl.runningOn('web', 'start', nodes)).toBe(owner.web);
    expect(cl.runningOn('db', 'start', nodes)).toBe(owner.db);
    for (const n of nodes) expect(cl.monitors.get(n)!.exitCode()).toBeUndefined();
    expect(cl.overlaps()).toEqual([]);
  }, 60_000);

  it('a FIFO, a directory or a device where shared files belong never hangs a monitor (heartbeats go on, web keeps running)', async () => {
    const cl = new Cluster();
    c = cl;
    const nodes = ['n1', 'n2', 'n3'];
    const cltabText = groupsCltab(cl, ['web']);
    cl.writeRoot('cltab', cltabText);
    cl.writeRoot('hactl', 'web start\n');
    for (const n of nodes) cl.start(n);
    const owner = await cl.waitRunning('web', 'start', 20_000, nodes);
    await waitFor('n2 replicated hactl', () => existsSync(join(cl.root, 'nodes', 'n2', 'hactl')), 5_000);
    const pg = await cl.settledPgids(owner);
    // A blocking open() of a FIFO would stall every monitor's cycle (and heartbeat) for good.
    const evil = join(cl.root, 'nodes', 'evil');
    mkdirSync(evil);
    execFileSync('mkfifo', [join(evil, 'clstat')]);
    mkdirSync(join(evil, 'hactl'));
    symlinkSync('/dev/zero', join(evil, 'cltab'));
    // made aside and renamed over the file: n2 may rewrite its copy at any moment
    for (const f of [join(cl.root, 'nodes', 'n2', 'hactl'), join(cl.root, 'cltab')]) {
      execFileSync('mkfifo', [`${f}.fifo`]);
      renameSync(`${f}.fifo`, f);
    }
    const seqs = nodes.map((n) => cl.clstat(n)?.header?.seq ?? 0);
    await waitFor('every node keeps heartbeating', () => nodes.every((n, i) => (cl.clstat(n)?.header?.seq ?? 0) > seqs[i]! + 5), 10_000);
    // The admin copy is fixed again; n2 replaced the FIFO over its own copy with a real file.
    cl.writeRoot('cltab', cltabText);
    await waitFor('n2 healed its hactl', () => cl.clstat('n2') && existsSync(join(cl.root, 'nodes', 'n2', 'hactl')) && execFileSync('stat', ['-c', '%F', join(cl.root, 'nodes', 'n2', 'hactl')], { encoding: 'utf8' }).startsWith('regular'), 10_000);
    expect(cl.runningOn('web', 'start', nodes)).toBe(owner);
    expect(cl.pgids(owner)).toEqual(pg);
    for (const n of nodes) {
      expect(cl.monitors.get(n)!.exitCode()).toBeUndefined();
      expect(cl.monitors.get(n)!.output()).not.toMatch(/self-fenc|frozen/);
    }
    expect(cl.overlaps()).toEqual([]);
  }, 60_000);
});
