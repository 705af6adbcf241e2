// The shared directory is hostile input: no symlink is followed, nothing outside DIR is read or
// written, names never become paths or lines, a half-written admin file is never acted on.

import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FsStore, groupId, isRefused } from '../../src/cluster/store.js';
import { parseHactl } from '../../src/config/hactl.js';
import { Cluster, lockedWorkload, waitFor } from '../helpers/cluster.js';

const SECRET = 'root:$6$s3cr3t-hash-never-to-be-copied:19000:0:99999:7:::';

let dir = '';
let cl: Cluster | null = null;
afterEach(async () => {
  await cl?.cleanup();
  cl = null;
  rmSync(dir, { recursive: true, force: true });
});

/** DIR with nodes n1, n2 and, beside it (outside DIR), a 0600 secret file. */
function setup(): { root: string; secret: string; outside: string } {
  dir = mkdtempSync(join(tmpdir(), 'peerha-hostile-'));
  const root = join(dir, 'shared');
  for (const n of ['n1', 'n2']) mkdirSync(join(root, 'nodes', n), { recursive: true });
  const outside = join(dir, 'outside');
  mkdirSync(outside);
  const secret = join(outside, 'shadow');
  writeFileSync(secret, `${SECRET}\n`, { mode: 0o600 });
  return { root, secret, outside };
}

/** Every file under `d` that still exists when read, with its text. */
function everything(d: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(d, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    // Beats and tmp files are renamed under a live monitor: gone between the listing and the read.
    try {
      out.set(p, readFileSync(p, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return out;
}

describe('FsStore refuses symlinks and non-regular files', () => {
  it('a symlinked file, a file in a symlinked folder, a FIFO-like non-file: refused with a reason', async () => {
    const { root, secret, outside } = setup();
    symlinkSync(secret, join(root, 'hactl'));
    symlinkSync(outside, join(root, 'nodes', 'n3'));
    writeFileSync(join(outside, 'clstat'), 'seq=1\n');
    mkdirSync(join(root, 'nodes', 'n2', 'clstat'));
    const store = new FsStore(root, 'n1');
    const link = await store.readInside('hactl');
    expect(isRefused(link) && link.error).toMatch(/symlink/);
    const through = await store.readInside('nodes/n3/clstat');
    expect(isRefused(through) && through.error).toMatch(/symlink/);
    const notFile = await store.readInside('nodes/n2/clstat');
    expect(isRefused(notFile) && notFile.error).toMatch(/not a regular file/);
    // a symlinked node folder is not a node
    expect(await store.listNodes()).toEqual(['n1', 'n2']);
  });

  it('never writes through a symlinked folder, and writes owner-only files', async () => {
    const { root, outside } = setup();
    const store = new FsStore(root, 'n1');
    await store.writeOwn('clstat', 'seq=1\n');
    expect(statSync(join(root, 'nodes', 'n1', 'clstat')).mode & 0o777).toBe(0o600);
    rmSync(join(root, 'nodes', 'n1'), { recursive: true });
    symlinkSync(outside, join(root, 'nodes', 'n1'));
    await expect(store.writeOwn('clstat', 'seq=2\n')).rejects.toThrow(/symlink/);
    await expect(store.ensureOwnDir()).rejects.toThrow(/symlink/);
    expect(readdirSync(outside)).toEqual(['shadow']);
    await expect(store.readInside('../outside/shadow')).rejects.toThrow(/outside the shared directory/);
  });

  it('with a shared group, files are 0640 and belong to it (monitoring may read hastat)', async () => {
    const { root } = setup();
    expect(await groupId('root')).toBe(0);
    expect(await groupId('12345')).toBe(12345);
    expect(await groupId('no-such-group-here')).toBeNull();
    const gid = (await groupId('nogroup')) ?? 65534;
    await new FsStore(root, 'n1', gid).writeOwn('hastat', '{}\n');
    const st = statSync(join(root, 'nodes', 'n1', 'hastat'));
    expect(st.mode & 0o777).toBe(0o640);
    expect(st.gid).toBe(gid);
  });

  it("a node's folder appears with its first file in it (never empty to a reader); an existing one is left as it is", async () => {
    const { root } = setup();
    const perform = (store: FsStore, ops: Parameters<FsStore['perform']>[0]): Promise<unknown> => new Promise((resolve) => store.perform(ops, resolve));
    // A hidden leftover of an earlier start that died half-way is cleared.
    mkdirSync(join(root, 'nodes', '.n5.new-1-dead'));
    expect(await perform(new FsStore(root, 'n5'), [{ op: 'mkdir', path: 'nodes/n5', withFile: { name: 'clstat', text: 'born\n' } }])).toEqual([{ op: 'mkdir', error: null, existed: false }]);
    expect(readFileSync(join(root, 'nodes', 'n5', 'clstat'), 'utf8')).toBe('born\n');
    expect(readdirSync(join(root, 'nodes')).sort()).toEqual(['n1', 'n2', 'n5']);
    // There already (a restart): nothing written, and it says so.
    writeFileSync(join(root, 'nodes', 'n1', 'clstat'), 'previous run\n');
    expect(await perform(new FsStore(root, 'n1'), [{ op: 'mkdir', path: 'nodes/n1', withFile: { name: 'clstat', text: 'born\n' } }])).toEqual([{ op: 'mkdir', error: null, existed: true }]);
    expect(readFileSync(join(root, 'nodes', 'n1', 'clstat'), 'utf8')).toBe('previous run\n');
    expect(await new FsStore(root, 'n1').listNodes()).toEqual(['n1', 'n2', 'n5']);
  });

  it('a symlinked DIR/nodes is not listed (a failed listing, not an empty cluster)', async () => {
    const { root, outside } = setup();
    mkdirSync(join(outside, 'n9'));
    rmSync(join(root, 'nodes'), { recursive: true });
    symlinkSync(outside, join(root, 'nodes'));
    const results = await new Promise<unknown>((resolve) => new FsStore(root, 'n1').perform([{ op: 'list' }], resolve));
    expect(results).toEqual([{ op: 'list', names: null }]);
  });
});

describe('hactl: levels and node lists an admin may write', () => {
  it('refuses plan and test, and empty node names', () => {
    for (const [text, msg] of [
      ['X plan\n', /monitor's own step/],
      ['X test\n', /monitor's own step/],
      ['W3 start n3,,n1\n', /none empty/],
      ['W3 start n3,\n', /none empty/],
    ] as const) {
      const r = parseHactl(text, 'hactl');
      expect(r.ok, text).toBe(false);
      if (!r.ok) expect(r.errors[0]!.message).toMatch(msg);
    }
  });
});

describe('the CLI with hostile names', () => {
  it('set refuses whitespace, newline, ":", "/", control characters and monitor levels, and writes nothing', async () => {
    const { root } = setup();
    cl = new Cluster();
    for (const args of [
      ['W', 'start\nevil start'],
      ['a b', 'start'],
      ['a/b', 'start'],
      ['a:b', 'start'],
      ['W\u0007', 'start'],
      ['X', 'plan'],
      ['X', 'test'],
      ['W', 'start', '--nodes', 'n1,,n2'],
      ['W', 'start', '--nodes', '../x'],
    ]) {
      const r = await cl.cli(['set', ...args, '--root', root]);
      expect(r.code, JSON.stringify(args)).toBe(1);
      expect(r.stderr).toMatch(/^peerha set: (group|level|node) /);
      expect(existsSync(join(root, 'hactl')), JSON.stringify(args)).toBe(false);
    }
    const ok = await cl.cli(['set', 'W', 'start', '--root', root, '--force']); // no cltab here
    expect(ok.code).toBe(0);
    expect(readFileSync(join(root, 'hactl'), 'utf8')).toBe('# generation 1\nW start\n');
    expect(statSync(join(root, 'hactl')).mode & 0o777).toBe(0o600);
  }, 90_000); // ten CLI runs: 30 s was too short for their Node start-ups beside the chaos labs in CI

  it('fence confirm never writes outside DIR, nor through a symlinked folder', async () => {
    const { root, outside } = setup();
    cl = new Cluster();
    const before = everything(dir);
    const r = await cl.cli(['fence', 'confirm', '../../x', '--root', root]);
    expect(r.code).toBe(2);
    symlinkSync(outside, join(root, 'fence-confirm'));
    const r2 = await cl.cli(['fence', 'confirm', 'n2', '--root', root]);
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toMatch(/symlink/);
    expect(everything(dir)).toEqual(before);
  });

  it('check refuses a symlinked hactl and a half-written one, naming the file', async () => {
    const { root, secret } = setup();
    cl = new Cluster();
    writeFileSync(join(root, 'cltab'), 'W:w:start:respawn:sleep 100\n', { mode: 0o600 });
    symlinkSync(secret, join(root, 'hactl'));
    const r = await cl.cli(['check', '--root', root]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain(`${join(root, 'hactl')}: cannot read (a symlink: refused)`);
    expect(r.stdout + r.stderr).not.toContain('s3cr3t');
    rmSync(join(root, 'hactl'));
    writeFileSync(join(root, 'hactl'), 'W start\nW2 st');
    const half = await cl.cli(['check', '--root', root]);
    expect(half.code).not.toBe(0);
    expect(half.stdout + half.stderr).toContain(`${join(root, 'hactl')}:2: the last line has no newline`);
  });
});

describe('monitors with hostile admin files', () => {
  it('a hactl symlinked to a root-only file is refused: no secret anywhere, running groups keep running', async () => {
    cl = new Cluster();
    const secret = join(cl.dir, 'shadow');
    writeFileSync(secret, `${SECRET}\n`, { mode: 0o600 });
    cl.writeRoot('cltab', `W:w:start:respawn:${lockedWorkload(cl.dir, 'W')}\n`);
    cl.writeRoot('hactl', 'W start\n');
    for (const n of ['n1', 'n2']) cl.start(n);
    const owner = await waitFor('W running', () => cl!.runningOn('W'), 20_000);
    rmSync(join(cl.root, 'hactl'));
    symlinkSync(secret, join(cl.root, 'hactl'));
    // the cltab too, through a symlinked copy
    rmSync(join(cl.root, 'cltab'));
    symlinkSync(secret, join(cl.root, 'cltab'));
    await waitFor('the refusal in hastat', () => cl!.hastat('n1')?.errors.some((e) => /hactl.*symlink: refused/.test(e)), 15_000);
    for (const n of ['n1', 'n2']) await cl.cyclesPass(n, 8);
    expect(cl.runningOn('W')).toBe(owner);
    const st = await cl.cli(['status', '--root', cl.root]);
    const seen = [...everything(cl.root).values(), ...[...cl.monitors.values()].map((m) => m.output()), st.stdout, st.stderr].join('\n');
    expect(seen).not.toContain('s3cr3t');
    expect(cl.overlaps()).toEqual([]);
    for (const n of ['n1', 'n2']) {
      for (const f of ['clstat', 'hastat', 'hactl', 'cltab']) expect(statSync(join(cl.root, 'nodes', n, f)).mode & 0o777, `${n}/${f}`).toBe(0o600);
    }
  });

  it('a world-writable hactl is refused and shown, never replicated: its edit is not applied, the group keeps running', async () => {
    cl = new Cluster();
    cl.writeRoot('cltab', `W:w:start:respawn:${lockedWorkload(cl.dir, 'W')}\n`);
    cl.writeRoot('hactl', 'W start\n');
    for (const n of ['n1', 'n2']) cl.start(n);
    const owner = await waitFor('W running', () => cl!.runningOn('W'), 20_000);
    // Anyone could have written this one: its edit must not be acted on.
    const tmp = join(cl.root, '.hactl.tmp');
    writeFileSync(tmp, 'W stop\n');
    chmodSync(tmp, 0o666);
    renameSync(tmp, join(cl.root, 'hactl'));
    await waitFor('the refusal in hastat', () => cl!.hastat('n1')?.errors.some((e) => /hactl.*writable by others \(mode 666; chmod o-w\): refused/.test(e)), 15_000);
    const st = await cl.cli(['status', '--root', cl.root]);
    expect(st.stdout + st.stderr).toMatch(/hactl.*writable by others/);
    expect(cl.monitors.get('n1')!.output()).toMatch(/writable by others/);
    for (const n of ['n1', 'n2']) await cl.cyclesPass(n, 8);
    expect(cl.runningOn('W')).toBe(owner);
    for (const n of ['n1', 'n2']) expect(readFileSync(join(cl.root, 'nodes', n, 'hactl'), 'utf8'), `${n}'s replica`).toBe('W start\n');
    // Made safe again, the edit goes through.
    chmodSync(join(cl.root, 'hactl'), 0o600);
    await waitFor('W stopped', () => cl!.runningOn('W') === null && cl!.clstat(owner!)?.groups.some((g) => g.group === 'W' && g.level === 'stop'), 20_000);
    expect(cl.overlaps()).toEqual([]);
  });

  it('a half-written hactl is not acted on until its last line ends', async () => {
    cl = new Cluster();
    cl.writeRoot('cltab', ['W1', 'W2', 'W3'].map((g) => `${g}:${g}w:start:respawn:${lockedWorkload(cl!.dir, g)}`).join('\n') + '\n');
    cl.writeRoot('hactl', 'W1 start\nW2 start\nW3 start\n');
    for (const n of ['n1', 'n2']) cl.start(n);
    const owners = new Map<string, string>();
    for (const g of ['W1', 'W2', 'W3']) owners.set(g, await waitFor(`${g} running`, () => cl!.runningOn(g), 20_000));
    writeFileSync(join(cl.root, 'hactl'), 'W1 start\nW2 start\nW3 st'); // an editor caught mid-write
    await waitFor('the half-written file reported', () => cl!.hastat('n1')?.errors.some((e) => /hactl:3: the last line has no newline/.test(e)), 15_000);
    for (const n of ['n1', 'n2']) await cl.cyclesPass(n, 8);
    for (const g of ['W1', 'W2', 'W3']) expect(cl.runningOn(g), g).toBe(owners.get(g));
    writeFileSync(join(cl.root, 'hactl'), 'W1 start\nW2 start\nW3 stop\n');
    await waitFor('W3 stopped once the file is whole', () => cl!.runningOn('W3') === null, 15_000);
    expect(cl.runningOn('W1')).toBe(owners.get('W1'));
    expect(cl.overlaps()).toEqual([]);
  });
});
