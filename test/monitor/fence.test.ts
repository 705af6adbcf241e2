import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, waitFor, webOnN3 } from '../helpers/cluster.js';

let c: Cluster | null = null;
afterEach(async () => {
  await c?.cleanup();
  c = null;
});

/** A fence command that records who fenced whom, and exits with the code in $DIR/fence-rc. */
function fenceScript(cl: Cluster): string {
  const path = join(cl.dir, 'fence.sh');
  writeFileSync(path, `#!/bin/sh\necho "$PEERHA_NODE $1" >> ${join(cl.dir, 'fenced')}\nexit $(cat ${join(cl.dir, 'fence-rc')} 2>/dev/null || echo 0)\n`);
  chmodSync(path, 0o755);
  return path;
}

function fenced(cl: Cluster): string[] {
  const f = join(cl.dir, 'fenced');
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
}

/** n3 is preferred for web and heartbeats before the others start, so it owns web. */
async function setup(selfFence: boolean): Promise<Cluster> {
  const cl = new Cluster({ yaml: `self_fence: ${selfFence}\nquorum:\n  policy: none\nfence:\n  command: $DIR/fence.sh\n  timeout: 2s\n` });
  fenceScript(cl);
  return webOnN3(cl);
}

describe('STOMITH hook', () => {
  it('SIGKILL of a node: exactly one fencer (the lowest live name) fences it once; fence.log and hastat show it', async () => {
    c = await setup(true);
    expect(await c.waitRunning('web', 'start', 20_000)).toBe('n3');
    await c.killNode('n3');
    await waitFor('a fence of n3', () => fenced(c!).length > 0, 15_000);
    await c.waitRunning('web', 'start', 15_000, ['n1', 'n2']);
    // a few more cycles: still exactly one fence for this incident
    await c.cyclesPass('n1', 8);
    expect(fenced(c)).toEqual(['n1 n3']);
    const log = readFileSync(join(c.root, 'nodes', 'n1', 'fence.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { node: string; result: string; fencer: string });
    expect(log.map((l) => [l.fencer, l.node, l.result])).toEqual([['n1', 'n3', 'success']]);
    await waitFor('hastat shows n3 fenced', () => c!.hastat('n1')?.nodes.n3?.state === 'fenced' && c!.hastat('n1')?.nodes.n3?.lastFence?.result === 'success', 5_000);
    expect(c.overlaps()).toEqual([]);
  }, 60_000);

  it('without self-fence, a stale node\'s group is taken over only after a fence succeeded; failures are retried', async () => {
    c = await setup(false);
    writeFileSync(join(c.dir, 'fence-rc'), '1');
    expect(await c.waitRunning('web', 'start', 20_000)).toBe('n3');
    await c.killNode('n3');
    await waitFor('two failed fence attempts', () => fenced(c!).length >= 2, 20_000);
    expect(c.runningOn('web', 'start', ['n1', 'n2'])).toBeNull();
    expect([...(c.placements(['n1', 'n2']).get('web') ?? [])]).toEqual([]);
    writeFileSync(join(c.dir, 'fence-rc'), '0');
    await c.waitRunning('web', 'start', 30_000, ['n1', 'n2']);
    expect(new Set(fenced(c))).toEqual(new Set(['n1 n3']));
    expect(c.overlaps()).toEqual([]);
  }, 90_000);
});
