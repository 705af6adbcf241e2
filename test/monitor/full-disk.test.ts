// A full shared filesystem is not an outage: heartbeats are rewritten in place (no new blocks),
// running groups keep running, and status says why.

import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, lockedWorkload, waitFor } from '../helpers/cluster.js';

let cl: Cluster | null = null;
let mounted = '';
afterEach(async () => {
  await cl?.stopAll();
  if (mounted) execFileSync('umount', ['-l', mounted]);
  mounted = '';
  await cl?.cleanup();
  cl = null;
});

/** Write zeros until the filesystem refuses (ENOSPC). */
function fill(path: string): void {
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${path}`, 'bs=4k'], { stdio: 'pipe' });
  } catch {
    // dd exits 1 on ENOSPC: full, as wanted
  }
}

describe('ENOSPC on the shared filesystem', () => {
  it('keeps every running group running and every heartbeat going; status shows the error', async () => {
    cl = new Cluster({ cycle: '250ms', timeout: '1000ms' });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'peerha-full', cl.root]);
    mounted = cl.root;
    cl.writeRoot('cltab', ['W1', 'W2'].map((g) => `${g}:${g}w:start:respawn:${lockedWorkload(cl!.dir, g)}`).join('\n') + '\n');
    cl.writeRoot('hactl', 'W1 start n1,n2,n3\nW2 start n2,n3,n1\n');
    // Every node heartbeats before the disk fills (claims place groups before a slow start ends).
    for (const n of ['n1', 'n2', 'n3']) await cl.startHeartbeating(n);
    const owner1 = await waitFor('W1 running', () => cl!.runningOn('W1'), 20_000);
    const owner2 = await waitFor('W2 running', () => cl!.runningOn('W2'), 20_000);

    fill(join(cl.root, 'filler'));
    await waitFor('the full filesystem in hastat', () => cl!.hastat('n1')?.errors.some((e) => /ENOSPC: the shared filesystem is full/.test(e)), 15_000);
    // Many timeouts on a full filesystem: heartbeats keep coming, nothing moves, nobody self-fences.
    for (const n of ['n1', 'n2', 'n3']) await cl.cyclesPass(n, 16, 30_000);
    expect(cl.runningOn('W1')).toBe(owner1);
    expect(cl.runningOn('W2')).toBe(owner2);
    for (const n of ['n1', 'n2', 'n3']) expect(cl.hastat('n1')?.nodes[n]?.state, n).toBe('up');
    const logs = [...cl.monitors.values()].map((m) => m.output()).join('\n');
    expect(logs).not.toMatch(/self-fenc|cannot publish clstat/);
    expect(cl.overlaps()).toEqual([]);
    const st = await cl.cli(['status', '--root', cl.root]);
    expect(st.stdout).toMatch(/ENOSPC: the shared filesystem is full/);

    rmSync(join(cl.root, 'filler'));
    await waitFor('normal writes again', () => cl!.hastat('n1') && !cl!.hastat('n1')!.errors.some((e) => /ENOSPC/.test(e)), 15_000);
    expect(cl.runningOn('W1')).toBe(owner1);
    expect(cl.overlaps()).toEqual([]);
  }, 120_000);
});
