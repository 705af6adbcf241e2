// Claims: names every node derives alike, content that says who holds one, when one stands, and
// the store's exclusive create on a real directory.

import { mkdtempSync, readdirSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { claimName, claimReleased, formatClaimHolder, latestClaims, parseClaimHolder, parseClaimName, type HolderView } from '../../src/cluster/claims.js';
import { FsStore, type StoreOp, type StoreResult } from '../../src/cluster/store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function perform(store: FsStore, ops: StoreOp[]): Promise<readonly StoreResult[]> {
  return new Promise((resolve, reject) => store.perform(ops, (r, e) => (r ? resolve(r) : reject(new Error(e)))));
}

describe('claim names and content', () => {
  it('round-trip; anything else in the folder is not a claim', () => {
    expect(parseClaimName(claimName('web', 7))).toEqual({ group: 'web', epoch: 7 });
    expect(parseClaimName(claimName('a.b-c', 1))).toEqual({ group: 'a.b-c', epoch: 1 });
    for (const bad of ['web', 'web:0', 'web:', ':3', 'a:b:3', '.web:1.tmp', 'web:01']) expect(parseClaimName(bad), bad).toBeNull();
    const h = { node: 'n1', inc: '3ivir8', seq: 42 };
    expect(parseClaimHolder(formatClaimHolder(h))).toEqual(h);
    for (const torn of ['', 'n1 3ivir8', 'n1 3ivir8 42', 'n1 3ivir8 4x\n']) expect(parseClaimHolder(torn), torn).toBeNull();
  });

  it('the latest epoch of each group, and the older ones', () => {
    const { latest, older } = latestClaims(['web:1', 'web:3', 'web:2', 'db:1', 'junk', 'x:y:1']);
    expect([...latest]).toEqual([['web', { epoch: 3, name: 'web:3' }], ['db', { epoch: 1, name: 'db:1' }]]);
    expect(older.get('web')!.sort()).toEqual(['web:1', 'web:2']);
    expect(older.has('db')).toBe(false);
  });
});

describe('claimReleased', () => {
  const holder = { node: 'n1', inc: 'a', seq: 10 };
  const up = (x: Partial<HolderView>): HolderView => ({ known: true, released: false, unknown: false, seq: 10, showsGroup: true, ...x });
  it('stands while its holder shows the group, or has not published since the claim, or cannot be read', () => {
    expect(claimReleased(holder, up({}), 0, 1000)).toBe(false);
    expect(claimReleased(holder, up({ seq: 9, showsGroup: false }), 0, 1000)).toBe(false); // the clstat from before the claim
    expect(claimReleased(holder, up({ unknown: true, showsGroup: false, seq: 20 }), 0, 1000)).toBe(false);
  });
  it('is released when the holder dropped the group (also after a restart: seqs keep growing), left or is past its bound, or its folder is gone', () => {
    expect(claimReleased(holder, up({ showsGroup: false }), 0, 1000)).toBe(true);
    expect(claimReleased(holder, up({ seq: 1_796_000_000_000, showsGroup: false }), 0, 1000)).toBe(true);
    expect(claimReleased(holder, up({ released: true }), 0, 1000)).toBe(true);
    expect(claimReleased(holder, up({ released: true, left: true, seq: 11, showsGroup: false }), 0, 1000)).toBe(true);
    // a leave seen before the claim (the node came back and claimed; we cannot read it now): stands
    expect(claimReleased(holder, up({ released: true, left: true, seq: 9, showsGroup: false }), 0, 1000)).toBe(false);
    expect(claimReleased(holder, { ...up({}), known: false }, 0, 1000)).toBe(true);
  });
  it('an unreadable claim stands for a timeout (its creator died between create and write), then is released', () => {
    expect(claimReleased(null, null, 999, 1000)).toBe(false);
    expect(claimReleased(null, null, 1000, 1000)).toBe(true);
  });
});

describe('FsStore claims on a real directory', () => {
  it('of many concurrent creates of one name exactly one wins; the others hear EEXIST; the content is whole', async () => {
    const root = mkdtempSync(join(tmpdir(), 'peerha-claims-'));
    dirs.push(root);
    const stores = ['n1', 'n2', 'n3', 'n4'].map((n) => new FsStore(root, n));
    await perform(stores[0]!, [{ op: 'mkdir', path: 'claims' }]);
    for (let epoch = 1; epoch <= 50; epoch++) {
      const path = `claims/${claimName('web', epoch)}`;
      const results = await Promise.all(stores.map((s, i) => perform(s, [{ op: 'create', path, text: formatClaimHolder({ node: `n${i + 1}`, inc: 'x', seq: epoch }) }])));
      const won = results.filter((r) => r[0]?.op === 'create' && r[0].error === null && !r[0].exists);
      const lost = results.filter((r) => r[0]?.op === 'create' && r[0].exists);
      expect(won, `epoch ${epoch}`).toHaveLength(1);
      expect(lost).toHaveLength(3);
    }
    const [list] = await perform(stores[1]!, [{ op: 'list', dir: 'claims' }]);
    expect(list?.op === 'list' && list.names?.length).toBe(50);
    const [read] = await perform(stores[2]!, [{ op: 'read', path: 'claims/web:50' }]);
    expect(read?.op === 'read' && parseClaimHolder(read.read!.text)?.seq).toBe(50);
    await perform(stores[0]!, [{ op: 'unlink', path: 'claims/web:1' }]);
    expect(readdirSync(join(root, 'claims'))).toHaveLength(49);
  });

  it('refuses anything but a claim path, and a claims folder that is a symlink', async () => {
    const root = mkdtempSync(join(tmpdir(), 'peerha-claims-'));
    dirs.push(root);
    const s = new FsStore(root, 'n1');
    await expect(perform(s, [{ op: 'create', path: 'nodes/n2/clstat', text: 'x\n' }])).rejects.toThrow(/not a claim/);
    await expect(perform(s, [{ op: 'unlink', path: 'hactl' }])).rejects.toThrow(/not a claim/);
    mkdirSync(join(root, 'elsewhere'));
    symlinkSync(join(root, 'elsewhere'), join(root, 'claims'));
    const [r] = await perform(s, [{ op: 'create', path: 'claims/web:1', text: 'n1 x 1\n' }]);
    expect(r?.op === 'create' && r.error).toMatch(/ENOTDIR|ELOOP|symlink/);
    const [l] = await perform(s, [{ op: 'list', dir: 'claims' }]);
    expect(l?.op === 'list' && l.names).toBeNull();
    expect(readdirSync(join(root, 'elsewhere'))).toEqual([]);
  });
});
