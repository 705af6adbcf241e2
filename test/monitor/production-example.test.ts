// examples/production as documented, with stand-ins for ip, arping, mount, mountpoint, umount and
// nginx that keep their state in marker files: the VIP and the mount follow the service, and a
// failover (kill -9 of the owner's monitor) releases both on the old node before the new one
// takes them.

import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterPerTest, waitFor, type Cluster } from '../helpers/cluster.js';

const newCluster = clusterPerTest();
const EXAMPLE = join(import.meta.dirname, '../../examples/production');

/** A resource marker (vip or mount) per holder; taking one another node holds is a double. */
const take = (kind: string): string => `for f in "$S"/${kind}.*; do [ -e "$f" ] && [ "$f" != "$S/${kind}.$PEERHA_NODE" ] && echo "${kind} $PEERHA_NODE found $f" >> "$S/doubles"; done; touch "$S/${kind}.$PEERHA_NODE"`;

const STAND_INS: Record<string, string> = {
  ip: `case "$1 $2" in
"link show") exit 0 ;;
"addr replace") ${take('vip')} ;;
"addr del") [ -e "$S/vip.$PEERHA_NODE" ] || exit 2; rm -f "$S/vip.$PEERHA_NODE" ;;
*) exit 1 ;;
esac`,
  arping: 'exit 0',
  mount: take('mount'),
  mountpoint: '[ -e "$S/mount.$PEERHA_NODE" ]',
  umount: 'rm -f "$S/mount.$PEERHA_NODE"',
  nginx: 'exec sleep 100000',
  'report-loop': 'exec sleep 100000',
};

function setUp(cl: Cluster): Record<string, string> {
  const bin = join(cl.dir, 'bin');
  const state = join(cl.dir, 'res');
  mkdirSync(bin, { recursive: true });
  mkdirSync(state, { recursive: true });
  mkdirSync(join(cl.dir, 'srv', 'www'), { recursive: true });
  for (const [name, body] of Object.entries(STAND_INS)) {
    writeFileSync(join(bin, name), `#!/bin/sh\nS=${state}\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  }
  // The example as shipped; only its absolute paths are moved into the test directory.
  const cltab = readFileSync(join(EXAMPLE, 'cltab'), 'utf8').replaceAll('/srv/www', join(cl.dir, 'srv', 'www')).replaceAll('/usr/local/bin/report-loop', join(bin, 'report-loop'));
  cl.writeRoot('cltab', cltab);
  cl.writeRoot('hactl', readFileSync(join(EXAMPLE, 'hactl'), 'utf8'));
  return { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` };
}

function markers(cl: Cluster): string[] {
  return readdirSync(join(cl.dir, 'res')).filter((f) => f !== 'doubles').sort();
}

function doubles(cl: Cluster): string[] {
  const f = join(cl.dir, 'res', 'doubles');
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
}

describe('examples/production with stand-ins for ip and mount', () => {
  it('web takes its VIP and mount on node1; kill -9 of its monitor moves all three to node2 with cleanup; everything is released at the end', async () => {
    const cl = newCluster({ cycle: '200ms', timeout: '1500ms' });
    const env = setUp(cl);
    await cl.startHeartbeating('node1', env);
    await cl.startHeartbeating('node2', env);
    await cl.startHeartbeating('node3', env);
    expect(await cl.waitRunning('web', 'start', 30_000)).toBe('node1');
    await cl.waitRunning('reports', 'start', 30_000);
    await waitFor('node1 holds the VIP and the mount', () => markers(cl).join() === 'mount.node1,vip.node1', 15_000);

    cl.monitors.get('node1')!.proc.kill('SIGKILL');
    expect(await cl.waitRunning('web', 'start', 30_000, ['node2', 'node3'])).toBe('node2');
    await waitFor('node2 holds the VIP and the mount', () => markers(cl).join() === 'mount.node2,vip.node2', 15_000);
    expect(doubles(cl)).toEqual([]);

    await cl.stopAll();
    expect(markers(cl)).toEqual([]);
    expect(doubles(cl)).toEqual([]);
  }, 120_000);
});
