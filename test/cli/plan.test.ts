// `peerha plan` runs one cycle of the monitor's own step() on the state a node's hastat carries,
// against DIR as it is; it changes nothing and refuses a snapshot older than the timeout.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { formatClstat } from '../../src/config/clstat.js';
import { contentHash } from '../../src/cluster/replicate.js';
import type { Hastat, HastatMemory } from '../../src/cluster/hastat.js';
import { planFor } from '../../src/monitor/plan.js';
import { BIN } from '../helpers/daemon.js';

let root = '';
afterEach(() => rmSync(root, { recursive: true, force: true }));

const CLTAB = 'web:w1:start:respawn:sleep 9\ndb:d1:start:respawn:sleep 9\nold:o1:start:respawn:sleep 9\n';
const HACTL = 'web start\ndb start n2,n1\nghost start\n';

const clstat = (node: string, seq: number, groups: string[]): string =>
  formatClstat({ header: { node, pid: seq, seq, time: 'x' }, groups: groups.map((g) => ({ group: g, level: 'start', state: 'DONE' as const })) });

const memory: HastatMemory = {
  settings: { cycleMs: 1000, timeoutMs: 5000, visibilityLagMs: 0, balance: 1.5, failCooldownCycles: 10, selfFence: true, quorum: { policy: 'adaptive' } },
  runningMs: 60_000,
  configVersion: '',
  peers: { n1: { seq: 5, silentMs: 100, left: false }, n3: { seq: 1, silentMs: 9000, left: false } },
  quorum: { base: 3, allSeen: false },
  planned: {},
  failed: {},
  backoff: {},
  homeless: {},
  handovers: {},
  fenced: [],
  claims: {},
};

function cluster(mem: Partial<HastatMemory> = {}): string {
  root = mkdtempSync(join(tmpdir(), 'peerha-plan-'));
  for (const n of ['n1', 'n2', 'n3']) mkdirSync(join(root, 'nodes', n), { recursive: true });
  writeFileSync(join(root, 'cltab'), CLTAB);
  writeFileSync(join(root, 'hactl'), HACTL);
  writeFileSync(join(root, 'nodes', 'n1', 'clstat'), clstat('n1', 5, ['web']));
  writeFileSync(join(root, 'nodes', 'n2', 'clstat'), clstat('n2', 9, ['old']));
  writeFileSync(join(root, 'nodes', 'n3', 'clstat'), clstat('n3', 1, ['db']));
  const hastat: Hastat = {
    version: 1, node: 'n2', time: '2026-11-22T05:00:00.000Z',
    quorum: { ok: true, live: 2, expected: null, policy: 'adaptive', reason: 'r' }, detection: 'd',
    nodes: { n1: { state: 'up', seq: 5, lastChange: 'x' }, n2: { state: 'up', seq: 9, lastChange: 'x' }, n3: { state: 'stale', seq: 1, lastChange: 'x' } },
    groups: {}, errors: [], memory: { ...memory, ...mem },
  };
  writeFileSync(join(root, 'nodes', 'n2', 'hastat'), JSON.stringify(hastat));
  return root;
}

const base = (dir: string) => ({ root: dir, stateDir: '/nonexistent', fence: { timeoutMs: 1000, action: 'off' as const, delayBaseMs: 0, delayMaxMs: 0, priorityDelayMs: 0, retryMaxMs: 1000, methods: [] } });

it("plan: one cycle of the monitor's step() on n2's state: takes over a stale node's group, stops an unwanted one", async () => {
  const r = await planFor(base(cluster()), 'n2');
  const acts = r.decision!.actions.map((a) => `${a.group} ${a.level}`);
  // db ran on n3, which n2 has seen silent for 9 s (self-fence guaranteed): n2, preferred, claims it and tests it at once; old is not wanted.
  expect(acts).toEqual(['db test', 'old stop']);
  expect(r.decision!.notes).toContainEqual({ group: 'web', note: 'running on n1' });
  expect(r.decision!.errors.join()).toMatch(/ghost/);
  expect(r.ageMs).toBeLessThan(5000);
  // Nothing was written: no replica, no clstat change.
  expect(readdirSync(join(root, 'nodes', 'n2')).sort()).toEqual(['clstat', 'hastat']);
});

it('plan: the memory decides — a failed-test cooldown (for this configuration) and a conflict backoff hold the plan back', async () => {
  const version = `${contentHash(CLTAB)}:${contentHash(HACTL)}`;
  const cooling = await planFor(base(cluster({ failed: { db: { forMs: 17_000, count: 1, configVersion: version } } })), 'n2');
  expect(cooling.decision!.actions.map((a) => `${a.group} ${a.level}`)).toEqual(['old stop']);
  expect(cooling.decision!.notes).toContainEqual({ group: 'db', note: 'test failed here; not planning for 17 s' });
  rmSync(root, { recursive: true, force: true });
  // A cooldown for another configuration does not count: cltab or hactl changed since.
  const changed = await planFor(base(cluster({ failed: { db: { forMs: 17_000, count: 1, configVersion: 'older' } } })), 'n2');
  expect(changed.decision!.actions.map((a) => `${a.group} ${a.level}`)).toContain('db test');
  rmSync(root, { recursive: true, force: true });
  const backoff = await planFor(base(cluster({ backoff: { db: 3000 } })), 'n2');
  expect(backoff.decision!.actions.map((a) => `${a.group} ${a.level}`)).toEqual(['old stop']);
  expect(backoff.decision!.notes).toContainEqual({ group: 'db', note: 'backing off after a conflict' });
});

it('plan: the CLI prints the tells with reasons, refuses a stale snapshot, and changes nothing', () => {
  const dir = cluster();
  const run = (...extra: string[]) => spawnSync(process.execPath, [BIN, 'plan', '--root', dir, '--node', 'n2', ...extra], { encoding: 'utf8', env: { ...process.env, PEERHA_NODE: '' } });
  const out = run();
  expect(out.status, out.stderr).toBe(0);
  expect(out.stdout).toMatch(/tell db test\s+# needed and running nowhere.*the claim announces it/);
  expect(out.stdout).toMatch(/tell old stop\s+# not in hactl/);
  expect(out.stdout).toMatch(/s ago\)/);
  expect(out.stdout).toMatch(/Nothing was changed/);
  const old = (Date.now() - 30_000) / 1000;
  utimesSync(join(dir, 'nodes', 'n2', 'hastat'), old, old);
  const stale = run();
  expect(stale.status).toBe(1);
  expect(stale.stderr).toMatch(/hastat is 3\d\.\d s old \(timeout 5 s\)/);
  const anyway = run('--stale-ok');
  expect(anyway.status, anyway.stderr).toBe(0);
  expect(anyway.stdout).toMatch(/warning: the snapshot is 3\d\.\d s old/);
  const none = spawnSync(process.execPath, [BIN, 'plan', '--root', dir, '--node', 'n3'], { encoding: 'utf8' });
  expect(none.status).toBe(3);
  expect(none.stderr).toMatch(/no hastat for n3/);
});
