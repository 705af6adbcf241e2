import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readHastats, renderStatus, setWant } from '../../src/cli/cluster.js';
import { chooseCopy, contentHash, pickNewest } from '../../src/cluster/replicate.js';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function root(): string {
  dir = mkdtempSync(join(tmpdir(), 'peerha-cli-'));
  for (const n of ['n1', 'n2']) mkdirSync(join(dir, 'nodes', n), { recursive: true });
  // set refuses groups and levels the cltab does not have
  writeFileSync(join(dir, 'cltab'), ['web', 'db', ...Array.from({ length: 9 }, (_, i) => `g${i + 1}`)].map((g) => `${g}:${g}:start:respawn:sleep 9\n`).join(''));
  return dir;
}

describe('peerha set', () => {
  it('edits the newest hactl and writes the next generation, which wins over a replica from a fast clock', async () => {
    const r = root();
    const future = new Date(Date.now() + 60_000);
    writeFileSync(join(r, 'nodes', 'n1', 'hactl'), 'web start\ndb 2\n');
    utimesSync(join(r, 'nodes', 'n1', 'hactl'), future, future); // a replica from a fast clock
    const text = await setWant(r, 'web', 'stop', null);
    expect(text).toBe('# generation 1\nweb stop\ndb 2\n');
    // every node then picks DIR/hactl, though its mtime is older
    const cands = [join(r, 'hactl'), join(r, 'nodes', 'n1', 'hactl')].map((p) => {
      const t = readFileSync(p, 'utf8');
      return { source: p, text: t, mtimeMs: statSync(p).mtimeMs, hash: contentHash(t), errors: [] };
    });
    expect(cands[0]!.mtimeMs).toBeLessThan(future.getTime());
    expect(pickNewest(cands)?.source).toBe(join(r, 'hactl'));
  });

  it('concurrent sets from separate processes lose no edit; the lock is a file (never a folder: mkdir races split-brained GlusterFS), gone afterwards', async () => {
    const r = root();
    const { spawn } = await import('node:child_process');
    const run = (g: string): Promise<number> =>
      new Promise((resolve) => spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'peerha'), 'set', g, 'start', '--root', r], { stdio: 'ignore' }).on('exit', (c) => resolve(c ?? 1)));
    const groups = Array.from({ length: 8 }, (_, i) => `g${i + 1}`);
    expect(await Promise.all(groups.map(run))).toEqual(groups.map(() => 0));
    const text = readFileSync(join(r, 'hactl'), 'utf8');
    for (const g of groups) expect(text).toMatch(new RegExp(`^${g} start$`, 'm'));
    expect(text.startsWith('# generation 8\n')).toBe(true);
    expect(existsSync(join(r, '.hactl.lock'))).toBe(false);
    // a lock folder an older version left behind (stale) is removed as a folder
    mkdirSync(join(r, '.hactl.lock'));
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(r, '.hactl.lock'), old, old);
    await setWant(r, 'g9', 'start', null);
    expect(readFileSync(join(r, 'hactl'), 'utf8')).toMatch(/^g9 start$/m);
  }, 60_000);

  it('adds allowed nodes and removes a group', async () => {
    const r = root();
    await setWant(r, 'web', 'start', ['n2', 'n1']);
    expect(readFileSync(join(r, 'hactl'), 'utf8')).toBe('# generation 1\nweb start n2,n1\n');
    await setWant(r, 'web', null, null);
    expect(readFileSync(join(r, 'hactl'), 'utf8')).toBe('# generation 2\n');
  });
});

describe('no edit is lost, whatever the timestamps (whole seconds, as over SFTP)', () => {
  const judge = (source: string, text: string, mtimeMs: number) => ({ source, text, mtimeMs, hash: contentHash(text), errors: [] });
  const SECOND = 1_764_000_000_000;

  it('set writes the next generation, which wins over copies of the same second (or a later one)', async () => {
    const r = root();
    for (const n of ['n1', 'n2']) {
      writeFileSync(join(r, 'nodes', n, 'hactl'), '# generation 3\nweb start\n');
      utimesSync(join(r, 'nodes', n, 'hactl'), new Date(SECOND + 1000), new Date(SECOND + 1000));
    }
    await setWant(r, 'web', 'stop', null);
    utimesSync(join(r, 'hactl'), new Date(SECOND), new Date(SECOND)); // even an older timestamp
    const copies = ['hactl', 'nodes/n1/hactl', 'nodes/n2/hactl'].map((p) => judge(p, readFileSync(join(r, p), 'utf8'), statSync(join(r, p)).mtimeMs));
    expect(chooseCopy(copies, 'hactl')?.text).toBe('# generation 4\nweb stop\n');
  });

  it('a hand edit of DIR/hactl wins as the next generation, even with the same mtime as the copies; then stays', () => {
    const replicas = ['n1', 'n2'].map((n) => judge(`nodes/${n}/hactl`, '# generation 4\nweb start\n', SECOND));
    // the editor kept the old generation line, or dropped it: either way it is a new edit
    for (const edited of ['# generation 4\nweb stop\n', 'web stop\n']) {
      const w = chooseCopy([judge('hactl', edited, SECOND), ...replicas], 'hactl');
      expect(w?.text).toBe('# generation 5\nweb stop\n');
      // once a node replicated it, it is the newest copy and DIR/hactl agrees: nothing changes
      const after = [judge('hactl', edited, SECOND), judge('nodes/n1/hactl', w!.text, SECOND), replicas[1]!];
      expect(chooseCopy(after, 'hactl')?.text).toBe('# generation 5\nweb stop\n');
    }
    // a read of the admin copy older than the winner (a lagging cache) is no edit
    expect(chooseCopy([judge('hactl', 'web stop\n', SECOND - 1000), ...replicas], 'hactl')?.text).toBe('# generation 4\nweb start\n');
    // an admin copy that says what the newest copy says changes nothing
    expect(chooseCopy([judge('hactl', 'web start\n', SECOND + 5000), ...replicas], 'hactl')?.text).toBe('# generation 4\nweb start\n');
  });
});

describe('peerha status --root', () => {
  it('reads the freshest hastat, skipping torn ones, and renders aligned tables', async () => {
    const r = root();
    const h = {
      version: 1, node: 'n2', time: '2026-11-22T05:00:00.000Z',
      quorum: { ok: true, live: 2, expected: null, policy: 'adaptive', reason: '2 live ≥ 60 % of 2' },
      detection: 'failover ≈ timeout 1000 ms + plan window 500 ms + start time',
      nodes: { n1: { state: 'up', seq: 5, lastChange: 'x' }, n2: { state: 'stale', seq: 9, lastChange: 'y' } },
      groups: { web: { want: 'start', nodes: null, instances: { n1: { level: 'start', state: 'DONE' } } } },
      errors: [],
    };
    writeFileSync(join(r, 'nodes', 'n1', 'hastat'), '{"version":1,"node":"n1","ti');
    writeFileSync(join(r, 'nodes', 'n2', 'hastat'), JSON.stringify(h));
    const all = await readHastats(r);
    expect(all.map((x) => x.node)).toEqual(['n2']);
    const out = renderStatus(all[0]!);
    expect(out).toMatch(/^cluster DEGRADED: 1 of 2 nodes up/);
    expect(out).toMatch(/NODE\s+STATE\s+HEARTBEAT\s+SEQ\s+GROUPS/);
    expect(out).toMatch(/web\s+start\s+n1\s+start\s+DONE\s+0\s+-/);
    expect(out).not.toMatch(/\u001b\[/); // no colour unless asked
  });
});

describe('status notes from other nodes', () => {
  it('names the node a failed test or a respawn backoff happened on', async () => {
    const { remoteNotes } = await import('../../src/cli/cluster.js');
    const base = { version: 1, time: 't', detection: 'd', errors: [], quorum: { ok: true, live: 2, expected: null, policy: 'adaptive', reason: 'r' } };
    const nodes = { n1: { state: 'up', seq: 1, lastChange: 't' }, n2: { state: 'up', seq: 1, lastChange: 't' } };
    const h1 = { ...base, node: 'n1', nodes, groups: { web: { want: 'start', instances: {}, notes: ['needed; skipped this cycle (p=0.75)'] } } };
    const h2 = { ...base, node: 'n2', nodes, groups: { web: { want: 'start', instances: {}, notes: ['test failed here; not planning for 9 s'] }, db: { want: 'start', instances: {}, notes: ['d1: respawn backoff 8s'] } } };
    const m = remoteNotes([h1, h2] as never, h1 as never);
    expect(m.get('web')).toEqual(['test failed on n2']);
    expect(m.get('db')).toEqual(['d1: respawn backoff 8s (on n2)']);
  });
});
