// A planned leave must not take the service down: with adaptive quorum, SIGTERM of one node of
// two leaves the survivor with quorum, and it runs the group (a crash still costs quorum).

import { expect, it } from 'vitest';
import { clusterPerTest, lockedWorkload, waitFor } from '../helpers/cluster.js';

const newCluster = clusterPerTest();

it('SIGTERM of one node of two (adaptive quorum): the survivor keeps quorum and runs the group', async () => {
  const cl = newCluster({ cycle: '250ms', timeout: '1000ms' });
  cl.writeRoot('cltab', `W:w:start:respawn:${lockedWorkload(cl.dir, 'W')}\n`);
  cl.writeRoot('hactl', 'W start n1,n2\n');
  await cl.startHeartbeating('n1');
  cl.start('n2');
  await waitFor('W on n1, both nodes seen', () => cl.runningOn('W') === 'n1' && cl.hastat('n2')?.quorum.reason.includes('of 2'), 20_000);
  const n1 = cl.monitors.get('n1')!;
  n1.proc.kill('SIGTERM');
  expect(await n1.exited).toBe(0);
  await waitFor('W on n2', () => cl.runningOn('W') === 'n2', 15_000);
  await cl.cyclesPass('n2', 8);
  const h = cl.hastat('n2')!;
  expect(h.quorum.ok, h.quorum.reason).toBe(true);
  expect(h.quorum.reason).toMatch(/1 live ≥ 60 % of 1/);
  expect(cl.runningOn('W')).toBe('n2');
  expect(cl.overlaps()).toEqual([]);
}, 60_000);
