// Writes that would land stale are abandoned right before their rename:
// - a heartbeat formatted before a freeze must not land after it: what it claims runs here may
//   have been killed by the watchdog meanwhile, and a fresh seq with old claims would beat a peer's
//   healthy instance in a conflict (notAfter, on the monitor's own monotonic clock);
// - a replica must not replace a node's copy that an admin edited by hand since the monitor
//   judged it (ifUnchanged): the edit would be lost.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FsStore, signatureOf, type StoreOp, type StoreResult } from '../../src/cluster/store.js';
import { rewriteInPlace } from '../../src/io/atomic.js';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function perform(store: FsStore, ops: StoreOp[]): Promise<readonly StoreResult[] | null> {
  return new Promise((resolve) => store.perform(ops, (results) => resolve(results)));
}

describe('FsStore heartbeat with a deadline (notAfter)', () => {
  it('lands before its deadline; past it, it is abandoned: the old clstat and beat stay, no temp file is left', async () => {
    dir = mkdtempSync(join(tmpdir(), 'peerha-stale-'));
    const own = join(dir, 'nodes', 'n1');
    mkdirSync(own, { recursive: true });
    let clock = 1000;
    const store = new FsStore(dir, 'n1', undefined, () => clock);
    // The store stamps the beat with its clock (µs) right before the rename, and says so.
    const beat = (seq: number, from: string | null, notAfter?: number): StoreOp => ({ op: 'heartbeat', path: 'nodes/n1/clstat', text: `seq ${seq}\n`, from, to: `n1@${seq}@1@0@a`, ...(notAfter !== undefined ? { notAfter } : {}) });

    expect(await perform(store, [beat(1, null, 1200)])).toEqual([{ op: 'heartbeat', error: null, beat: 'n1@1@1@0@a@1000000', at: 1000 }]);
    expect(readFileSync(join(own, 'clstat'), 'utf8')).toBe('seq 1\n');

    clock = 1201; // the process resumed after its watchdog may have fired
    const late = await perform(store, [beat(2, 'n1@1@1@0@a@1000000', 1200)]);
    expect(late?.[0]?.op === 'heartbeat' && late[0].error).toMatch(/went stale before it could land/);
    expect(readFileSync(join(own, 'clstat'), 'utf8')).toBe('seq 1\n');
    expect(readdirSync(join(dir, 'beats'))).toEqual(['n1@1@1@0@a@1000000']);
    expect(readdirSync(own)).toEqual(['clstat']);

    // No deadline (it claims nothing): written whenever it gets there.
    expect(await perform(store, [beat(2, 'n1@1@1@0@a@1000000')])).toEqual([{ op: 'heartbeat', error: null, beat: 'n1@2@1@0@a@1201000', at: 1201 }]);
    expect(readFileSync(join(own, 'clstat'), 'utf8')).toBe('seq 2\n');
    expect(readdirSync(join(dir, 'beats'))).toEqual(['n1@2@1@0@a@1201000']);
  });

  it('on a full filesystem (rewritten in place) the deadline holds too', async () => {
    dir = mkdtempSync(join(tmpdir(), 'peerha-stale-'));
    mkdirSync(join(dir, 'nodes', 'n1'), { recursive: true });
    writeFileSync(join(dir, 'nodes', 'n1', 'clstat'), 'seq 1 and room to grow\n');
    await expect(rewriteInPlace(join(dir, 'nodes', 'n1', 'clstat'), 'seq 2\n', undefined, () => false)).rejects.toThrow(/went stale/);
    expect(readFileSync(join(dir, 'nodes', 'n1', 'clstat'), 'utf8')).toBe('seq 1 and room to grow\n');
  });

  it('a replica write over a copy an admin edited since it was judged is abandoned; over the judged one it lands', async () => {
    dir = mkdtempSync(join(tmpdir(), 'peerha-stale-'));
    const own = join(dir, 'nodes', 'n1');
    mkdirSync(own, { recursive: true });
    const copy = join(own, 'hactl');
    writeFileSync(copy, '# generation 3\nweb start\n');
    const store = new FsStore(dir, 'n1');
    const judged = await signatureOf(copy);
    // The admin's edit, made between the stat and the replica's rename.
    writeFileSync(`${copy}.edit`, 'web stop\n');
    renameSync(`${copy}.edit`, copy);
    const lost = await perform(store, [{ op: 'write', path: 'nodes/n1/hactl', text: '# generation 3\nweb start\n', ifUnchanged: judged }]);
    expect(lost?.[0]?.op === 'write' && lost[0].error).toMatch(/went stale/);
    expect(readFileSync(copy, 'utf8')).toBe('web stop\n');
    expect(readdirSync(own)).toEqual(['hactl']);
    // Judged as it is now: replaced. Judged missing (null) while it exists: not.
    expect(await perform(store, [{ op: 'write', path: 'nodes/n1/hactl', text: '# generation 4\nweb stop\n', ifUnchanged: await signatureOf(copy) }])).toEqual([{ op: 'write', error: null }]);
    expect(readFileSync(copy, 'utf8')).toBe('# generation 4\nweb stop\n');
    const missing = await perform(store, [{ op: 'write', path: 'nodes/n1/hactl', text: 'x\n', ifUnchanged: null }]);
    expect(missing?.[0]?.op === 'write' && missing[0].error).toMatch(/went stale/);
  });
});
