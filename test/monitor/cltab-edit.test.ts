// A cltab edit reaches running groups under the monitor: each is reconciled at its level like a
// re-tell — new entries start, removed ones stop, edited ones restart, untouched ones keep running.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterPerTest, waitFor } from '../helpers/cluster.js';

const newCluster = clusterPerTest();

/** The pid a respawn entry wrote to $DIR/pid.TAG when it started (its current instance). */
function pidOf(dir: string, tag: string): number | null {
  try {
    return Number(readFileSync(join(dir, `pid.${tag}`), 'utf8').trim()) || null;
  } catch {
    return null;
  }
}

function alive(pid: number | null): boolean {
  if (pid === null) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const entry = (tag: string, arg = '100000'): string => `web:${tag}:start:respawn:echo $$ > $DIR/pid.${tag}; exec sleep ${arg}\n`;

describe('cltab edits reach running groups', () => {
  it('a new entry starts, an edited one restarts, a removed one stops, an untouched one keeps its process', async () => {
    const cl = newCluster({ cycle: '200ms', timeout: '1500ms' });
    cl.writeRoot('cltab', entry('keep') + entry('edit') + entry('drop'));
    cl.writeRoot('hactl', 'web start\n');
    await cl.startHeartbeating('n1');
    await cl.startHeartbeating('n2');
    const owner = await cl.waitRunning('web', 'start', 30_000);
    await waitFor('three entries running', () => ['keep', 'edit', 'drop'].every((t) => alive(pidOf(cl.dir, t))), 15_000);
    const before = { keep: pidOf(cl.dir, 'keep')!, edit: pidOf(cl.dir, 'edit')!, drop: pidOf(cl.dir, 'drop')! };

    cl.writeRoot('cltab', entry('keep') + entry('edit', '99999') + entry('added'));
    await waitFor('the edit reconciled', () => alive(pidOf(cl.dir, 'added')) && !alive(before.drop) && pidOf(cl.dir, 'edit') !== before.edit && alive(pidOf(cl.dir, 'edit')), 20_000);
    expect(pidOf(cl.dir, 'keep')).toBe(before.keep);
    expect(alive(before.keep)).toBe(true);
    expect(alive(before.edit)).toBe(false);
    await cl.cyclesPass(owner, 5);
    expect(cl.runningOn('web')).toBe(owner); // no failover, no stop of the group
  }, 90_000);
});
