// A wall-clock step (NTP, `date -s`) never self-fences a healthy node: a real monitor, its
// watchdog and its group under libfaketime, whose wall clock the test steps by ±1 h (only the wall
// clock: DONT_FAKE_MONOTONIC, as a real step leaves the monotonic clock alone).

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterPerTest, lockedWorkload, waitFor } from '../helpers/cluster.js';

const LIB = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1'].find((p) => existsSync(p));

const newCluster = clusterPerTest();

describe('wall-clock steps', () => {
  it('±1 h steps of the wall clock: the group keeps running, its processes are never killed, no self-fence', async () => {
    if (!LIB) throw new Error('libfaketime is not installed: apt-get install faketime (.ci/run does)');
    const cl = newCluster({ cycle: '250ms', timeout: '1000ms' });
    const ts = join(cl.dir, 'faketime');
    const step = (offset: string): void => {
      writeFileSync(`${ts}.new`, `${offset}\n`);
      renameSync(`${ts}.new`, ts);
    };
    step('+0');
    // `wall` proves the steps reach the group's processes (they inherit the monitor's clock).
    const wall = join(cl.dir, 'wall');
    cl.writeRoot('cltab', `W:w:start:respawn:${lockedWorkload(cl.dir, 'W')}\nclock:c:start:respawn:while :; do date +%s > ${wall}.t && mv ${wall}.t ${wall}; sleep 0.1; done\n`);
    cl.writeRoot('hactl', 'W start\nclock start\n');
    cl.start('n1', { LD_PRELOAD: LIB, FAKETIME_TIMESTAMP_FILE: ts, FAKETIME_NO_CACHE: '1', DONT_FAKE_MONOTONIC: '1' });
    await waitFor('W and clock running', () => cl.runningOn('W') === 'n1' && cl.runningOn('clock') === 'n1', 20_000);
    const pgids = await cl.settledPgids('n1');
    const seen = (): number => Number(readFileSync(wall, 'utf8').trim() || 0);
    for (const [offset, skew] of [['+3600', 3500], ['-3600', -3500], ['+3600', 3500], ['+0', 0]] as const) {
      step(offset);
      await waitFor(`the group's processes see ${offset} s`, () => {
        const d = seen() - Date.now() / 1000;
        return skew > 0 ? d > skew : skew < 0 ? d < skew : Math.abs(d) < 60;
      }, 10_000);
      await cl.cyclesPass('n1', 8); // 2 × timeout on the stepped clock
      expect(cl.runningOn('W')).toBe('n1');
    }
    expect(cl.pgids('n1')).toEqual(pgids);
    const out = cl.monitors.get('n1')!.output();
    expect(out).not.toMatch(/self-fenc|monitor silent|was frozen/);
    expect(cl.overlaps()).toEqual([]);
  }, 120_000);
});
