// Real `peerha monitor` processes on a private temp root (short cycle/timeout). Every group's
// workload holds an exclusive flock on a per-group file and records any overlap; every test
// asserts that there was none.

import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, lockedWorkload, waitFor } from '../helpers/cluster.js';
import { MEMORY_FS } from '../../src/monitor/daemon.js';

const CYCLE_MS = 200;
const TIMEOUT_MS = 1500;

let c: Cluster | null = null;
afterEach(async () => {
  await c?.cleanup();
  c = null;
});

function webCltab(c: Cluster): string {
  return [`web:web-test:test:test:true`, `web:web-run:start:respawn:${lockedWorkload(c.dir, 'web')}`].join('\n') + '\n';
}

/** Log a measurement so it shows up in the test output. */
function measured(what: string, ms: number): void {
  console.log(`[measured] ${what}: ${ms} ms`);
}

/** pino JSON lines of a monitor's output (non-JSON lines skipped). */
function logLines(out: string): Array<Record<string, unknown>> {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

async function webCluster(nodes: string[], opts: ConstructorParameters<typeof Cluster>[0] = {}): Promise<{ c: Cluster; owner: string }> {
  const cl = new Cluster(opts);
  c = cl;
  cl.writeRoot('cltab', webCltab(cl));
  cl.writeRoot('hactl', 'web start\n');
  for (const n of nodes) cl.start(n);
  const owner = await cl.waitRunning('web', 'start', 20_000, nodes);
  return { c: cl, owner };
}

describe('peerha monitor: three nodes', () => {
  it('runs a wanted group on exactly one node; SIGKILL of the owner fails it over with no overlap', async () => {
    c = new Cluster();
    c.writeRoot('cltab', webCltab(c));
    c.writeRoot('hactl', 'web start\n');
    for (const n of ['n1', 'n2', 'n3']) c.start(n);
    const owner = await c.waitRunning('web');
    const m = c.monitors.get(owner)!;
    m.proc.kill('SIGKILL');
    await m.exited;
    const survivors = ['n1', 'n2', 'n3'].filter((n) => n !== owner);
    const next = await c.waitRunning('web', 'start', 15_000, survivors);
    expect(next).not.toBe(owner);
    expect(c.overlaps()).toEqual([]);
  });

  // Reference §5.2 5010monitor, ported: the §5.2 fixtures (groups foo, bar at level 2, baz with a
  // passing test, new, bad with a failing test, del absent from hactl, pln without cltab
  // entries), stale fixture clstats, then hactl edits through DIR/hactl and `peerha set`.
  it('5010monitor: groups come up where eligible, a failing test never starts, hactl edits stop and start groups', async () => {
    const cl = new Cluster();
    c = cl;
    const lw = (g: string): string => lockedWorkload(cl.dir, g);
    cl.writeRoot(
      'cltab',
      [
        'foo:foo1:start:wait:echo foo1',
        `foo:foo-run:start:respawn:${lw('foo')}`,
        'bar:bar1:12:once:echo bar1start; sleep 1; echo bar1end',
        `bar:bar-run:12:respawn:${lw('bar')}`,
        'new:new1:start:wait:true',
        `new:new-run:start:respawn:${lw('new')}`,
        'bad:bad1:test:test:false',
        'bad:bad2:start:wait:echo bad2',
        `bad:bad-run:start:respawn:${lw('bad')}`,
        'del:del1:start:wait:true',
        `del:del-run:start:respawn:${lw('del')}`,
        'baz:baz1:test:test:true',
        `baz:baz-run:start:respawn:${lw('baz')}`,
        'sig:sig1:start:wait:echo sig1',
        'sig:sig2:stop:wait:echo sig2',
      ].join('\n') + '\n',
    );
    cl.writeRoot('hactl', ['foo start', 'bar 2', 'baz start', 'pln start', 'bad start', 'new start'].join('\n') + '\n');
    // The fixture clstats: n1's old status (overwritten when its monitor starts) and a ghost node
    // n0 that never runs a monitor, showing bar "stop RUNNING" and baz "test PASSED" until it
    // turns stale.
    const seed = (node: string, lines: string[]): void => {
      mkdirSync(join(cl.root, 'nodes', node), { recursive: true });
      writeFileSync(join(cl.root, 'nodes', node, 'clstat'), [`# peerha node=${node} pid=1 seq=7 time=1981-01-01T00:00:00.000Z`, ...lines.map((l) => `Cluster::Init::Group ${l}`)].join('\n') + '\n');
    };
    seed('n1', ['foo start DONE', 'bar start DONE', 'del start DONE', 'pln plan DONE', 'bad test FAILED']);
    seed('n0', ['foo stop DONE', 'bar stop RUNNING', 'baz test PASSED']);
    const nodes = ['n1', 'n2', 'n3'];
    for (const n of nodes) cl.start(n);

    // Phase 1: everything wanted and eligible runs exactly once.
    const phase1 = Date.now();
    const where: Record<string, string> = {};
    for (const [g, level] of [['foo', 'start'], ['bar', '2'], ['baz', 'start'], ['new', 'start']] as const) where[g] = await cl.waitRunning(g, level, 30_000, nodes);
    measured('5010 phase 1 (all groups up)', Date.now() - phase1);
    console.log(`[5010] placement: ${JSON.stringify(where)}`);
    // The failing test ran (and failed) somewhere, and bad was stopped there.
    await waitFor('bad test failed somewhere', () => nodes.some((n) => logLines(cl.monitors.get(n)!.output()).some((l) => l.group === 'bad' && l.reason === 'test failed here')), 20_000);
    expect(cl.placements(nodes).get('del')).toBeUndefined();
    // pln is wanted but has no cltab entries: reported, never told.
    await waitFor('hastat reports pln', () => nodes.every((n) => (cl.hastat(n)?.errors ?? []).some((e) => e.includes('pln'))), 5_000);

    // Phase 2: hactl rewritten to just `del start` (the admin copy in DIR).
    const phase2 = Date.now();
    cl.writeRoot('hactl', 'del start\n');
    await cl.waitRunning('del', 'start', 20_000, nodes);
    await waitFor(
      'bad, foo, bar, baz, new gone everywhere',
      () => ['bad', 'foo', 'bar', 'baz', 'new'].every((g) => cl.placements(nodes).get(g) === undefined),
      20_000,
    );
    measured('5010 phase 2 (hactl → del start)', Date.now() - phase2);

    // Phase 3: foo appended with `peerha set`.
    const phase3 = Date.now();
    const r = await cl.set('foo', 'start', 30);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await cl.waitRunning('foo', 'start', 20_000, nodes);
    await cl.waitRunning('del', 'start', 1_000, nodes);
    measured('5010 phase 3 (peerha set foo start --wait)', Date.now() - phase3);

    // Phase 4: an edit made in one node's folder is just as good (newest valid copy wins).
    const phase4 = Date.now();
    const tmp = join(cl.root, 'nodes', 'n3', '.hactl.edit');
    writeFileSync(tmp, 'foo stop\ndel start\nnew start\n');
    renameSync(tmp, join(cl.root, 'nodes', 'n3', 'hactl'));
    await cl.waitRunning('new', 'start', 20_000, nodes);
    await waitFor('foo stopped everywhere', () => cl.placements(nodes).get('foo') === undefined, 20_000);
    await waitFor("n3's edit replicated to every node", () => nodes.every((n) => cl.hastat(n)?.groups.foo?.want === 'stop'), 5_000);
    await cl.waitRunning('del', 'start', 1_000, nodes);
    measured('5010 phase 4 (edit in nodes/n3/hactl)', Date.now() - phase4);

    // bad never reached its start level anywhere; nobody ever ran a group twice.
    for (const n of nodes) expect(cl.monitors.get(n)!.output()).not.toMatch(/decide: bad → start/);
    expect(existsSync(join(cl.dir, 'locks', 'bad.owner'))).toBe(false);
    expect(cl.overlaps()).toEqual([]);
    for (const n of nodes) expect(cl.monitors.get(n)!.exitCode()).toBeUndefined();
  }, 120_000);

  it('kill -9 of the whole node running web (monitor, watchdog, groups): a survivor runs it within timeout + 2 s', async () => {
    const nodes = ['n1', 'n2', 'n3'];
    const { c: cl, owner } = await webCluster(nodes);
    expect((await cl.settledPgids(owner)).length).toBeGreaterThan(0);
    expect(cl.watchdogPids(owner).length).toBe(1);
    const k = await cl.killNode(owner);
    const survivors = nodes.filter((n) => n !== owner);
    const next = await cl.waitRunning('web', 'start', 20_000, survivors);
    const ms = Date.now() - k.at;
    measured(`failover after kill -9 of ${owner} (timeout ${TIMEOUT_MS} ms)`, ms);
    expect(next).not.toBe(owner);
    expect(ms).toBeLessThanOrEqual(TIMEOUT_MS + 4_000);
    expect(cl.overlaps()).toEqual([]);
  }, 60_000);

  // Frozen between cycles, or in the middle of one (after it decided and published, before it
  // pets its watchdog: the resumed cycle must not pet, or the node never notices the freeze).
  for (const when of ['between cycles', 'mid-cycle'] as const) {
    it(`SIGSTOP of the monitor running web (${when}) for 3 × timeout: its watchdog stops web before a survivor starts it; once afterwards`, async () => {
      // Four nodes, so the three survivors keep (adaptive) quorum.
      const nodes = ['n1', 'n2', 'n3', 'n4'];
      const { c: cl, owner } = await webCluster(nodes);
      const ownerPgids = await cl.settledPgids(owner);
      expect(ownerPgids.length).toBeGreaterThan(0);
      const survivors = nodes.filter((n) => n !== owner);

      if (when === 'mid-cycle') await cl.freezeMidCycle(owner);
      else cl.freeze(owner);
      const t0 = Date.now();
      const seqFrozen = cl.clstat(owner)?.header?.seq ?? -1;
      const next = await cl.waitRunning('web', 'start', 20_000, survivors);
      measured(`takeover while ${owner}'s monitor is SIGSTOPped (${when})`, Date.now() - t0);
      // The frozen node's web is gone (its watchdog), and its watchdog said so before the takeover.
      expect(cl.anyAlive(ownerPgids)).toBe(false);
      const fenceAt = logLines(cl.monitors.get(owner)!.output()).find((l) => String(l.msg).startsWith('self-fence: killed'))?.time as number | undefined;
      const startAt = logLines(cl.monitors.get(next)!.output()).find((l) => l.msg === 'decide: web → start')?.time as number | undefined;
      expect(fenceAt, 'watchdog self-fence log line').toBeDefined();
      expect(startAt, `${next} told web start`).toBeDefined();
      expect(fenceAt!).toBeLessThan(startAt!);
      measured('watchdog self-fence → survivor tells start', startAt! - fenceAt!);
      const nextPgids = await cl.settledPgids(next);

      // Stay frozen for 3 × timeout in all (the duration of the fault, not a wait for a condition).
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + 3 * TIMEOUT_MS - Date.now())));
      cl.thaw(owner);
      const thawAt = Date.now();
      // From the first clstat it writes after SIGCONT on, the thawed node must not claim web (a
      // fresh seq with an old claim would count as a live instance and could win the conflict),
      // and web keeps running on the node that took it over, never restarted.
      // For 3 × timeout, counted in the survivor's cycles.
      let rejoinedAt = 0;
      await cl.duringCycles(next, Math.ceil((3 * TIMEOUT_MS) / CYCLE_MS), () => {
        const h = cl.clstat(owner);
        if (h?.header && h.header.seq > seqFrozen) {
          expect(cl.placements([owner]).get('web'), `${owner} claims web after SIGCONT (seq ${h.header.seq})`).toBeUndefined();
          if (!rejoinedAt && survivors.every((n) => cl.hastat(n)?.nodes[owner]?.state === 'up')) rejoinedAt = Date.now();
        }
        expect(cl.runningOn('web', 'start', survivors)).toBe(next);
      }, 20);
      expect(rejoinedAt, `${owner} rejoined (heartbeats, seen up by every survivor)`).toBeGreaterThan(0);
      measured(`${owner} seen up again after SIGCONT`, rejoinedAt - thawAt);
      expect(cl.runningOn('web', 'start', nodes)).toBe(next);
      expect(cl.pgids(next)).toEqual(nextPgids);
      expect(cl.overlaps()).toEqual([]);
    }, 60_000);
  }

  it('SIGTERM to the monitor running web: it leaves (left=1) and web runs elsewhere within about 2 cycles + its stop time', async () => {
    const nodes = ['n1', 'n2', 'n3'];
    const { c: cl, owner } = await webCluster(nodes);
    const survivors = nodes.filter((n) => n !== owner);
    const m = cl.monitors.get(owner)!;
    const t0 = Date.now();
    m.proc.kill('SIGTERM');
    let leftAt = 0;
    const next = await waitFor('web on a survivor', () => {
      if (!leftAt && cl.clstat(owner)?.header?.left) leftAt = Date.now();
      return cl.runningOn('web', 'start', survivors);
    }, 20_000, 20);
    const runAt = Date.now();
    expect(await m.exited).toBe(0);
    const header = cl.clstat(owner)?.header;
    expect(header?.left).toBe(true);
    expect(cl.clstat(owner)?.groups).toEqual([]);
    if (!leftAt) leftAt = runAt; // the left marker appeared between two polls
    measured(`${owner} stop time (SIGTERM → left=1)`, leftAt - t0);
    measured(`web running on ${next} after left=1`, runAt - leftAt);
    measured('SIGTERM → web running elsewhere', runAt - t0);
    expect(next).not.toBe(owner);
    // Generous bound (no tight wall-clock assertions): stop time + 2 cycles + 3 s.
    expect(runAt - t0).toBeLessThanOrEqual(leftAt - t0 + 2 * CYCLE_MS + 3_000);
    expect(cl.overlaps()).toEqual([]);
  }, 60_000);

  it('duplicate node id: a second monitor with the same --node refuses to start (exit 1) while the first heartbeats', async () => {
    const { c: cl, owner } = await webCluster(['n1']);
    expect(owner).toBe('n1');
    const pg = await cl.settledPgids('n1');
    // A different state_dir, so only the shared directory can tell.
    const dup = cl.start('n1-dup', {}, { node: 'n1', stateDir: join(cl.dir, 'state-dup') });
    expect(await dup.exited).toBe(1);
    expect(dup.output()).toMatch(/duplicate node id/);
    // The same state_dir: refused by the local pid lock.
    const dup2 = cl.start('n1-dup2', {}, { node: 'n1' });
    expect(await dup2.exited).toBe(1);
    expect(dup2.output()).toMatch(/another monitor for node n1/);
    // The first one is untouched and keeps heartbeating.
    const seq = cl.clstat('n1')!.header!.seq;
    await waitFor('n1 heartbeats', () => (cl.clstat('n1')?.header?.seq ?? 0) > seq + 2, 5_000);
    expect(cl.monitors.get('n1')!.exitCode()).toBeUndefined();
    expect(cl.runningOn('web', 'start', ['n1'])).toBe('n1');
    expect(cl.pgids('n1')).toEqual(pg);
    expect(cl.overlaps()).toEqual([]);
  }, 30_000);
});

describe('state_dir', () => {
  it('inside the shared directory: refused at start (exit 1), nothing made there', async () => {
    c = new Cluster();
    for (const stateDir of [join(c.root, 'state'), c.root]) {
      const m = c.start('n1', {}, { stateDir });
      expect(await m.exited).toBe(1);
      expect(m.output()).toMatch(/state_dir .* is inside the shared directory .*must stay on local disk/);
    }
    expect(existsSync(join(c.root, 'state'))).toBe(false);
    expect(existsSync(join(c.root, 'nodes'))).toBe(false);
  }, 30_000);

  it('on a disk filesystem: a warning at start naming it (the record rewritten at every process start waits on writeback there); on a tmpfs: none', async () => {
    c = new Cluster();
    const onDisk = join(process.cwd(), 'node_modules', '.peerha-test-state');
    const inMemory = mkdtempSync('/dev/shm/peerha-test-state-');
    try {
      const memoryFs = (dir: string): boolean => MEMORY_FS.has(statfsSync(dir).type);
      expect(memoryFs(inMemory)).toBe(true);
      const said = /state_dir is not on a tmpfs/;
      const a = c.start('n1', {}, { stateDir: inMemory });
      await waitFor('n1 heartbeats', () => (c!.clstat('n1')?.header?.seq ?? 0) > 1, 10_000);
      expect(a.output()).not.toMatch(said);
      const b = c.start('n2', {}, { stateDir: onDisk });
      await waitFor('n2 heartbeats', () => (c!.clstat('n2')?.header?.seq ?? 0) > 1, 10_000);
      if (memoryFs(onDisk)) expect(b.output()).not.toMatch(said);
      else expect(b.output()).toMatch(said);
    } finally {
      await c.stopAll();
      rmSync(inMemory, { recursive: true, force: true });
      rmSync(onDisk, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('peerha halt', () => {
  it('dissolves the cluster: groups stop, monitors leave (exit 0), new monitors wait until --undo', async () => {
    c = new Cluster();
    c.writeRoot('cltab', webCltab(c));
    c.writeRoot('hactl', 'web start\n');
    for (const n of ['n1', 'n2', 'n3']) c.start(n);
    await c.waitRunning('web');
    const r = await c.cli(['halt', '--root', c.root, '--wait=20']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/every node has left/);
    for (const n of ['n1', 'n2', 'n3']) expect(await c.monitors.get(n)!.exited).toBe(0);
    expect(c.placements().size).toBe(0);
    // a monitor started while halted does not join...
    const late = c.start('n4');
    await waitFor('n4 sees the halt', () => /cluster halted/.test(late.output()), 10_000);
    expect(c.clstat('n4')).toBeNull();
    // ...until the halt is undone
    expect((await c.cli(['halt', '--undo', '--root', c.root])).code).toBe(0);
    await c.waitRunning('web', 'start', 20_000, ['n4']);
    expect(c.overlaps()).toEqual([]);
  }, 60_000);
});
