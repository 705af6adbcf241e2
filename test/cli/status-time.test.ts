// Issue 15 item 4: `peerha status` tells the truth about time. Real `peerha` processes; views
// written by the test (ages set through the files' mtimes), and one real cluster halted.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { clusterPerTest, lockedWorkload, waitFor } from '../helpers/cluster.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'peerha');

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function root(): string {
  dir = mkdtempSync(join(tmpdir(), 'peerha-status-'));
  for (const n of ['n1', 'n2', 'n3']) mkdirSync(join(dir, 'nodes', n), { recursive: true });
  writeFileSync(join(dir, 'cltab'), 'web:w:start:respawn:sleep 9\ndb:d:start:respawn:sleep 9\n');
  return dir;
}

/** `node`'s view, written `ageMs` ago (its mtime), showing every node up at that moment. */
function view(r: string, node: string, ageMs: number, extra: Record<string, unknown> = {}): void {
  const at = new Date(Date.now() - ageMs);
  const nodes = Object.fromEntries(['n3', 'n1', 'n2'].map((n) => [n, { state: 'up', seq: 7, lastChange: at.toISOString() }]));
  const h = {
    version: 1, node, time: at.toISOString(),
    quorum: { ok: true, live: 3, expected: null, policy: 'adaptive', reason: '3 live' },
    detection: 'failover ≈ timeout 1500 ms',
    nodes,
    groups: {
      web: { want: 'start', nodes: null, instances: { n3: { level: 'start', state: 'DONE' } }, failovers: 0, ...(node === 'n3' ? { notes: ['running here'] } : {}) },
      db: { want: 'start', nodes: null, instances: { n1: { level: 'start', state: 'DONE' } }, failovers: 0 },
    },
    errors: [],
    memory: { settings: { timeoutMs: 5000 } },
    ...extra,
  };
  const file = join(r, 'nodes', node, 'hastat');
  writeFileSync(file, JSON.stringify(h));
  utimesSync(file, at, at);
}

function peerha(args: string[], onOut?: (all: string) => boolean): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (onOut?.(stdout)) p.kill('SIGTERM');
    });
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('status shows how old its view is', () => {
  it('a live view: its age in the header, exit 0', async () => {
    const r = root();
    view(r, 'n1', 200);
    const res = await peerha(['status', '--root', r]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/view of n1, \d\.\d s old \(written /); // 0.2 s, and however long this process took to start
  });

  it('no monitor wrote for its timeout: says so, ages every age in the view, exits non-zero', async () => {
    const r = root();
    view(r, 'n1', 27_000);
    view(r, 'n2', 40_000);
    const res = await peerha(['status', '--root', r]);
    expect(res.code).toBe(3);
    // 27 s, or a little more on a loaded machine (the time this process took to start)
    expect(res.stderr).toMatch(/no live monitor: newest view from n1, 2[789] s old/);
    expect(res.stdout).toMatch(/^no live monitor: newest view from n1, 2[789] s old/);
    expect(res.stdout).not.toMatch(/0\.0s ago/);
    expect(res.stdout).toMatch(/n3\s+up\s+2[789]\.\ds ago/);
    const json = await peerha(['status', '--json', '--root', r]);
    expect(json.code).toBe(3);
    expect(json.stderr).toMatch(/no live monitor/);
  });
});

describe('status GROUP and --json GROUP', () => {
  it('--json GROUP prints only that group', async () => {
    const r = root();
    view(r, 'n1', 100);
    const res = await peerha(['status', '--json', 'web', '--root', r]);
    expect(res.code, res.stderr).toBe(0);
    expect(Object.keys((JSON.parse(res.stdout) as { groups: object }).groups)).toEqual(['web']);
  });

  it('an unknown group exits 1 with a clear message', async () => {
    const r = root();
    view(r, 'n1', 100);
    for (const args of [['status', 'nosuch'], ['status', '--json', 'nosuch']]) {
      const res = await peerha([...args, '--root', r]);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/no group "nosuch": not in cltab, not in hactl, running nowhere/);
    }
    expect((await peerha(['status', 'db', '--root', r])).code).toBe(0);
  });
});

describe('status --watch', () => {
  it('keeps to one node\'s view while it is live, with rows in one order', async () => {
    const r = root();
    // a long timeout: n3's view stays live however slow this machine is
    const slow = { memory: { settings: { timeoutMs: 60_000 } } };
    view(r, 'n3', 100, slow);
    view(r, 'n1', 2_000, slow);
    let rewrote = false;
    const frames = (out: string): string[] => out.split(/^(?=cluster )/m).filter((f) => f.startsWith('cluster '));
    const res = await peerha(['status', '--watch', '--root', r], (out) => {
      const n = frames(out).length;
      // after the first frame, n1's view becomes the freshest: the watch stays with n3's
      if (n >= 1 && !rewrote) {
        rewrote = true;
        view(r, 'n1', 0, slow);
      }
      return n >= 4;
    });
    expect(res.stderr).toBe('');
    const shown = frames(res.stdout).slice(0, 4);
    for (const f of shown) {
      expect(f).toMatch(/view of n3, /);
      expect(f).toMatch(/running here/);
      // node rows by name, whatever order the view lists them in
      expect(f.split('\n').filter((l) => /^n\d /.test(l)).map((l) => l.slice(0, 2))).toEqual(['n1', 'n2', 'n3']);
    }
  }, 20_000);
});

describe('status after halt (every monitor gone)', () => {
  const cluster = clusterPerTest();

  it('says no live monitor and exits non-zero; never "up 0.0s ago"', async () => {
    const cl = cluster();
    cl.writeRoot('cltab', `web:web-run:start:respawn:${lockedWorkload(cl.dir, 'web')}\n`);
    cl.writeRoot('hactl', 'web start\n');
    for (const n of ['n1', 'n2', 'n3']) cl.start(n);
    await cl.waitRunning('web');
    const halt = await cl.cli(['halt', '--root', cl.root, '--wait=30']);
    expect(halt.code, halt.stdout + halt.stderr).toBe(0);
    for (const m of cl.monitors.values()) await m.exited;
    let last = { code: 0 as number | null, stdout: '', stderr: '' };
    await waitFor('status to see no live monitor', async () => {
      last = await peerha(['status', '--root', cl.root]);
      return last.code === 3;
    }, 20_000);
    expect(last.stdout).toMatch(/^no live monitor: newest view from n\d, [\d.]+ s old/);
    expect(last.stdout).not.toMatch(/up\s+0\.\ds ago/);
  }, 60_000);
});
