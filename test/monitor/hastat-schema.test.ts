// `peerha status --json` from a real cluster validates against docs/hastat.schema.json.
import { afterEach, expect, it } from 'vitest';
import { Cluster, lockedWorkload, waitFor } from '../helpers/cluster.js';
import { hastatSchema, validate } from '../helpers/schema.js';

let c: Cluster | null = null;
afterEach(async () => {
  await c?.cleanup();
  c = null;
});

it('status --json (the hastat) validates against the documented schema, including after a failover', async () => {
  const schema = hastatSchema();
  c = new Cluster();
  c.writeRoot('cltab', `web:web-test:test:test:true\nweb:web-run:start:respawn:${lockedWorkload(c.dir, 'web')}\n`);
  c.writeRoot('hactl', 'web start\nghost start\n');
  for (const n of ['n1', 'n2', 'n3']) c.start(n);
  const owner = await c.waitRunning('web');
  await c.killNode(owner);
  const alive = ['n1', 'n2', 'n3'].filter((n) => n !== owner);
  await c.waitRunning('web', 'start', 15_000, alive);
  await waitFor('a view that shows the dead node stale', () => alive.every((n) => c!.hastat(n)?.nodes[owner]?.state === 'stale'), 10_000);
  const r = await c.cli(['status', '--root', c.root, '--json']);
  expect(r.code, r.stderr).toBe(0);
  const h = JSON.parse(r.stdout) as { groups: Record<string, { failovers?: number }>; errors: string[] };
  expect(validate(h, schema)).toEqual([]);
  expect(h.errors.join()).toMatch(/ghost/);
  for (const n of alive) expect(validate(c.hastat(n), schema)).toEqual([]);
  // and the validator itself rejects what it should
  expect(validate({ ...h, version: 2, extra: 1 }, schema)).toEqual(['$: expected 1'.replace('$', '$.version'), '$: unexpected extra']);
}, 60_000);
