// Issue 15 item 3: `peerha set` is safe. Real `peerha` processes on real temp directories; no
// monitor runs (the views `--wait` reads are written by the test).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { editHactl } from '../../src/config/hactl.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'peerha');
const CLTAB = 'web:w:start:respawn:sleep 9\nworker:k:start:respawn:sleep 9\nvip:v:start:respawn:sleep 9\n';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function root(hactl: string | null, cltab: string | null = CLTAB): string {
  dir = mkdtempSync(join(tmpdir(), 'peerha-set-'));
  for (const n of ['n1', 'n2', 'n3']) mkdirSync(join(dir, 'nodes', n), { recursive: true });
  if (cltab !== null) writeFileSync(join(dir, 'cltab'), cltab);
  if (hactl !== null) writeFileSync(join(dir, 'hactl'), hactl);
  return dir;
}

function peerha(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const hactlOf = (r: string): string => readFileSync(join(r, 'hactl'), 'utf8');

describe('set refuses what the cltab cannot run, unless --force', () => {
  it('a typo level (set worker strat --wait=5) exits 1 naming the cltab, before writing anything', async () => {
    const r = root('worker start\n');
    const res = await peerha('set', 'worker', 'strat', '--wait=5', '--root', r);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`level strat of group worker: no entry of ${join(r, 'cltab')} has it`);
    expect(hactlOf(r)).toBe('worker start\n');
  });

  it('an unknown group exits 1 naming the cltab; no cltab at all is refused too', async () => {
    const r = root('worker start\n');
    const res = await peerha('set', 'nosuch', 'start', '--root', r);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`group nosuch has no entries in ${join(r, 'cltab')}`);
    expect(hactlOf(r)).toBe('worker start\n');
    rmSync(join(r, 'cltab'));
    const none = await peerha('set', 'worker', 'stop', '--root', r);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no valid cltab/);
  });

  it('--force writes it anyway; stop and --remove of a known group need no force', async () => {
    const r = root('worker start\n');
    expect((await peerha('set', 'nosuch', 'start', '--root', r, '--force')).code).toBe(0);
    expect((await peerha('set', 'worker', 'stop', '--root', r)).code).toBe(0);
    expect((await peerha('set', 'nosuch', '--remove', '--root', r)).code).toBe(0);
    expect(hactlOf(r)).toBe('# generation 3\nworker stop\n');
  });
});

describe('set edits one line and keeps the rest', () => {
  const HAND = '# what the cluster runs\n\nweb start n1,n2\n\n# the batch worker, stopped for now\nworker stop\n';

  it('an edit changes one line; a new group appends one; comments, blank lines and order stay', async () => {
    const r = root(HAND);
    expect((await peerha('set', 'worker', 'start', '--root', r)).code).toBe(0);
    expect(hactlOf(r)).toBe(`# generation 1\n${HAND.replace('worker stop', 'worker start')}`);
    expect((await peerha('set', 'vip', 'start', '--nodes', 'n3', '--root', r)).code).toBe(0);
    expect(hactlOf(r)).toBe(`# generation 2\n${HAND.replace('worker stop', 'worker start')}vip start n3\n`);
  });

  it('editHactl: the effective (last) line of a group changes; a removal takes every line of it', () => {
    const text = 'web start\n# c\nweb stop n1\ndb start\n';
    expect(editHactl(text, 'web', 'start', ['n2'])).toBe('web start\n# c\nweb start n2\ndb start\n');
    expect(editHactl(text, 'web', null, null)).toBe('# c\ndb start\n');
    expect(editHactl('db start', 'web', 'start', null)).toBe('db start\nweb start\n');
    expect(editHactl('', 'web', 'start', null)).toBe('web start\n');
  });
});

describe('set never writes over a hactl that does not parse', () => {
  it('says where it is broken (file:line) and leaves it, even with no valid replica (web start n1,n2 stays)', async () => {
    const broken = 'web start n1,n2\ndb start now please\n';
    const r = root(broken);
    const res = await peerha('set', 'worker', 'start', '--root', r);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`${join(r, 'hactl')}:2: expected "group level [node1,node2,…]", found 4 field(s)`);
    expect(hactlOf(r)).toBe(broken);
  });

  it('nor replaces it with a valid replica\'s content', async () => {
    const broken = 'web start n1,n2\nweb\n';
    const r = root(broken);
    writeFileSync(join(r, 'nodes', 'n1', 'hactl'), '# generation 4\nworker start\n');
    const res = await peerha('set', 'worker', 'stop', '--root', r);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`${join(r, 'hactl')}:2:`);
    expect(hactlOf(r)).toBe(broken);
  });
});

describe('set --wait with --nodes', () => {
  /** A live view (written now) of vip running on `on`. */
  function view(r: string, on: string): void {
    const h = {
      version: 1, node: 'n1', time: new Date().toISOString(),
      quorum: { ok: true, live: 3, expected: null, policy: 'adaptive', reason: '3 live' },
      detection: 'x',
      nodes: { n1: { state: 'up', seq: 5, lastChange: null }, n2: { state: 'up', seq: 5, lastChange: null }, n3: { state: 'up', seq: 5, lastChange: null } },
      groups: { vip: { want: 'start', nodes: ['n3'], instances: { [on]: { level: 'start', state: 'DONE' } } } },
      errors: [],
    };
    writeFileSync(join(r, 'nodes', 'n1', 'hastat'), JSON.stringify(h));
  }

  it('does not report success while the group runs on a node it may not run on', async () => {
    const r = root('vip start\n');
    view(r, 'n1');
    const res = await peerha('set', 'vip', 'start', '--nodes', 'n3', '--wait=1', '--root', r);
    expect(res.stdout).not.toMatch(/vip start on n1/);
    expect(res.code).toBe(2);
    expect(res.stdout).toMatch(/timed out: vip is n1:start\/DONE/);
  });

  it('succeeds once it runs on an allowed node', async () => {
    const r = root('vip start\n');
    view(r, 'n3');
    const res = await peerha('set', 'vip', 'start', '--nodes', 'n3', '--wait=5', '--root', r);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/vip start on n3/);
  });
});
