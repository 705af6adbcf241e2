// A group's commands learn where they run: PEERHA_NODE (and PEERHA_ROOT) are in their
// environment however the node was named — here only by --node, with PEERHA_NODE unset.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { clusterPerTest, waitFor } from '../helpers/cluster.js';

const newCluster = clusterPerTest();

it('PEERHA_NODE, PEERHA_ROOT, PEERHA_GROUP, PEERHA_TAG and PEERHA_LEVEL reach a command when the node comes from --node', async () => {
  const cl = newCluster({ cycle: '250ms', timeout: '1000ms' });
  const out = join(cl.dir, 'env.out');
  cl.writeRoot('cltab', `E:e:start:respawn:echo "$PEERHA_NODE $PEERHA_ROOT $PEERHA_GROUP $PEERHA_TAG $PEERHA_LEVEL" > ${out}.t && mv ${out}.t ${out}; exec sleep 1000\n`);
  cl.writeRoot('hactl', 'E start\n');
  cl.start('n7', { PEERHA_NODE: '' }); // the harness passes --node n7; the variable is empty
  await waitFor('E running', () => cl.runningOn('E') === 'n7', 20_000);
  const line = await waitFor('the command wrote its environment', () => {
    try {
      return readFileSync(out, 'utf8').trim();
    } catch {
      return null;
    }
  }, 10_000);
  expect(line).toBe(`n7 ${cl.root} E e start`);
});
