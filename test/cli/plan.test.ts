import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { planFor } from '../../src/monitor/plan.js';
import { BIN } from '../helpers/daemon.js';

let root = '';
afterEach(() => rmSync(root, { recursive: true, force: true }));

function cluster(): string {
  root = mkdtempSync(join(tmpdir(), 'peerha-plan-'));
  for (const n of ['n1', 'n2', 'n3']) mkdirSync(join(root, 'nodes', n), { recursive: true });
  writeFileSync(join(root, 'cltab'), 'web:w1:start:respawn:sleep 9\ndb:d1:start:respawn:sleep 9\nold:o1:start:respawn:sleep 9\n');
  writeFileSync(join(root, 'hactl'), 'web start\ndb start\nghost start\n');
  writeFileSync(join(root, 'nodes', 'n1', 'clstat'), '# peerha node=n1 pid=1 seq=5 time=x\nCluster::Init::Group web start DONE\n');
  writeFileSync(join(root, 'nodes', 'n2', 'clstat'), '# peerha node=n2 pid=2 seq=9 time=x\nCluster::Init::Group old start DONE\n');
  writeFileSync(join(root, 'nodes', 'n3', 'clstat'), '# peerha node=n3 pid=3 seq=1 time=x\nCluster::Init::Group db start DONE\n');
  const hastat = {
    version: 1, node: 'n2', time: '2026-11-22T05:00:00.000Z',
    quorum: { ok: true, live: 2, expected: null, policy: 'adaptive', reason: 'r' }, detection: 'd',
    nodes: { n1: { state: 'up', seq: 5, lastChange: 'x' }, n2: { state: 'up', seq: 9, lastChange: 'x' }, n3: { state: 'stale', seq: 1, lastChange: 'x' } },
    groups: {}, errors: [],
  };
  writeFileSync(join(root, 'nodes', 'n2', 'hastat'), JSON.stringify(hastat));
  return root;
}

const opts = { cycleMs: 1000, timeoutMs: 5000, visibilityLagMs: 0, balance: 1.5, failCooldownCycles: 10, selfFence: true };

it('plan: runs the real decide() on the view in DIR and explains each group', async () => {
  const r = await planFor(cluster(), 'n2', opts);
  const acts = r.decision.actions.map((a) => `${a.group} ${a.level}`);
  // db ran on n3, which n2 sees stale (self-fence guaranteed): take it over; old is not wanted: stop it.
  expect(acts).toEqual(['db plan', 'old stop']);
  expect(r.decision.notes).toContainEqual({ group: 'web', note: 'running on n1' });
  expect(r.decision.errors.join()).toMatch(/ghost/);
});

it('plan: the CLI prints the actions with reasons and changes nothing', () => {
  const dir = cluster();
  const out = spawnSync(process.execPath, [BIN, 'plan', '--root', dir, '--node', 'n2'], { encoding: 'utf8', env: { ...process.env, PEERHA_NODE: '' } });
  expect(out.status, out.stderr).toBe(0);
  expect(out.stdout).toMatch(/tell db plan\s+# needed and running nowhere/);
  expect(out.stdout).toMatch(/tell old stop\s+# not in hactl/);
  expect(out.stdout).toMatch(/Nothing was changed/);
});
