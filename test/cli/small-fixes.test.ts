// Issue 15 item 7 (CLI side): monitor --root refuses a missing directory, fence confirm refuses an
// unknown node, init takes the duration syntax of monitor. Real processes, real temp directories.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/cluster.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'peerha');

let dir = '';
const started: Run[] = [];
afterEach(async () => {
  // a monitor that should have refused to run (before the fix) must not outlive its test
  for (const r of started.splice(0)) {
    r.kill();
    await r.code;
  }
  rmSync(dir, { recursive: true, force: true });
});

function temp(): string {
  return (dir = mkdtempSync(join(tmpdir(), 'peerha-fix-')));
}

interface Run {
  code: Promise<number | null>;
  out: () => string;
  kill: () => void;
}

function run(args: string[]): Run {
  const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const r: Run = { code: new Promise((resolve) => p.on('exit', (c) => resolve(c))), out: () => out, kill: () => p.kill('SIGTERM') };
  started.push(r);
  return r;
}

describe('monitor --root', () => {
  it('refuses a missing directory (an unmounted share) and creates nothing', async () => {
    const d = temp();
    const root = join(d, 'not-mounted');
    writeFileSync(join(d, 'm.yaml'), `state_dir: ${join(d, 'state')}\n`);
    const m = run(['monitor', '--config', join(d, 'm.yaml'), '--root', root, '--node', 'n1', '--cycle', '200ms', '--timeout', '1s']);
    expect(await Promise.race([m.code, waitFor('the monitor to exit', () => false, 10_000)])).toBe(2);
    expect(m.out()).toContain(`peerha monitor: ${root}: no such directory (is the shared filesystem mounted?); --create makes it`);
    expect(existsSync(root)).toBe(false);
  });

  it('--create makes it, and the monitor runs', async () => {
    const d = temp();
    const root = join(d, 'new-root');
    writeFileSync(join(d, 'm.yaml'), `state_dir: ${join(d, 'state')}\n`);
    const m = run(['monitor', '--config', join(d, 'm.yaml'), '--root', root, '--node', 'n1', '--cycle', '200ms', '--timeout', '1s', '--create']);
    try {
      await waitFor('n1 heartbeating in the new root', () => existsSync(join(root, 'nodes', 'n1', 'clstat')), 15_000);
    } finally {
      m.kill();
    }
    expect(await m.code, m.out()).toBe(0);
  }, 30_000);
});

describe('fence confirm', () => {
  it('refuses a node that is not a cluster member, naming the known ones', async () => {
    const d = temp();
    for (const n of ['n1', 'n2']) mkdirSync(join(d, 'nodes', n), { recursive: true });
    writeFileSync(join(d, 'hactl'), 'web start n1,n3\n');
    const bad = run(['fence', 'confirm', 'n9', '--root', d]);
    expect(await bad.code).toBe(2);
    expect(bad.out()).toContain(`n9 is not a node of the cluster in ${d}; known nodes: n1, n2, n3`);
    expect(existsSync(join(d, 'fence-confirm', 'n9'))).toBe(false);
    const ok = run(['fence', 'confirm', 'n3', '--root', d]);
    expect(await ok.code, ok.out()).toBe(0);
    expect(existsSync(join(d, 'fence-confirm', 'n3'))).toBe(true);
  });
});

describe('init --cycle', () => {
  it('takes the duration syntax monitor takes (1s, 500ms); refuses what is no duration', async () => {
    const d = temp();
    writeFileSync(join(d, 'cltab'), 'g:t:1:wait:true\n');
    const clstat = join(d, 'clstat');
    const init = run(['init', '--cltab', join(d, 'cltab'), '--socket', join(d, 'sock'), '--clstat', clstat, '--node', 't', '--cycle', '1s']);
    try {
      await waitFor('init writing its clstat', () => existsSync(clstat), 15_000);
    } finally {
      init.kill();
    }
    expect(await init.code, init.out()).toBe(0);
    const bad = run(['init', '--cltab', join(d, 'cltab'), '--socket', join(d, 'sock'), '--cycle', 'fast']);
    expect(await bad.code).toBe(1);
    expect(bad.out()).toMatch(/--cycle "fast": expected a duration such as 500ms/);
  }, 30_000);
});
