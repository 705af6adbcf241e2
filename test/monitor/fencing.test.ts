import { describe, expect, it } from 'vitest';
import { formatClstat, parseClstat } from '../../src/config/clstat.js';
import { fenceDelayMs, fenceTargets, retryDelayMs, type FencePeer } from '../../src/monitor/fencing.js';
import { fencedPeers, readPeerClstat } from '../../src/monitor/view.js';

const p = (name: string, state: FencePeer['state'], seq: number | null = 1): FencePeer => ({ name, state, seq });

describe('fenceTargets', () => {
  it('only the live node with the lowest name fences', () => {
    const peers = [p('a', 'up'), p('b', 'up'), p('c', 'stale')];
    expect(fenceTargets('a', peers, new Map(), 0).targets).toEqual(['c']);
    expect(fenceTargets('b', peers, new Map(), 0).targets).toEqual([]);
  });

  it('once per incident; retried after the backoff; a new seq is a new incident', () => {
    const peers = [p('a', 'up'), p('b', 'up'), p('c', 'stale', 7)];
    const running = new Map([['c', { seq: 7, attempts: 1, nextTry: Number.POSITIVE_INFINITY, done: false }]]);
    expect(fenceTargets('a', peers, running, 0).targets).toEqual([]);
    const failed = new Map([['c', { seq: 7, attempts: 1, nextTry: 500, done: false }]]);
    expect(fenceTargets('a', peers, failed, 499).targets).toEqual([]);
    expect(fenceTargets('a', peers, failed, 500).targets).toEqual(['c']);
    const done = new Map([['c', { seq: 7, attempts: 1, nextTry: 0, done: true }]]);
    expect(fenceTargets('a', peers, done, 10_000).targets).toEqual([]);
    expect(fenceTargets('a', [p('a', 'up'), p('b', 'up'), p('c', 'stale', 8)], done, 10_000).targets).toEqual(['c']);
  });

  it('every peer stale at once: suspect the shared filesystem, fence nobody', () => {
    const r = fenceTargets('a', [p('a', 'up'), p('b', 'stale'), p('c', 'stale')], new Map(), 0);
    expect(r.targets).toEqual([]);
    expect(r.reason).toMatch(/shared filesystem/);
  });

  it('backoff doubles per attempt up to the cap; race delays', () => {
    expect([1, 2, 3, 7, 20].map((a) => retryDelayMs(a, 1000, 60_000))).toEqual([1000, 2000, 4000, 60000, 60000]);
    expect(retryDelayMs(5, 1000, 10_000)).toBe(10_000);
    // base + random share of max, + the priority delay only when the target runs more groups
    expect(fenceDelayMs({ delayBaseMs: 100, delayMaxMs: 1000, priorityDelayMs: 5000 }, 0.5, 2, 1)).toBe(600);
    expect(fenceDelayMs({ delayBaseMs: 100, delayMaxMs: 1000, priorityDelayMs: 5000 }, 0.5, 1, 2)).toBe(5600);
  });
});

describe('shared fence results', () => {
  const line = (node: string, seq: number | null, time = '2026-12-01T08:00:00.000Z') => ({ node, seq, time, method: 'fence_dummy' });

  it('a fencer publishes `# fenced` lines in its clstat; readers get them back', () => {
    const text = formatClstat({ header: { node: 'a', pid: 1, seq: 5, time: 't' }, groups: [], fenced: [line('c', 7), line('d', null)] });
    expect(text).toContain('# fenced c 7 2026-12-01T08:00:00.000Z fence_dummy\n');
    expect(text).toContain('# fenced d - ');
    expect(parseClstat(text).fenced).toEqual([line('c', 7), line('d', null)]);
    expect(readPeerClstat(text).fenced).toEqual([line('c', 7), line('d', null)]);
    expect(readPeerClstat(formatClstat({ header: { node: 'a', pid: 1, seq: 5, time: 't' }, groups: [] })).fenced).toEqual([]);
    // junk lines are skipped, a torn copy is unread
    expect(parseClstat('# peerha node=a pid=1 seq=2 time=t\n# fenced c x y\n').fenced).toBeUndefined();
    expect(readPeerClstat(text.slice(0, -3)).fenced).toBeNull();
  });

  it('a claim holds while the target is at the seq it was fenced at; own fences and the newest claim win', () => {
    const seqs = new Map<string, number | null>([['c', 7], ['d', 3], ['e', null]]);
    const seqOf = (n: string) => seqs.get(n) ?? null;
    const claims = new Map([
      ['b', [line('c', 7), line('d', 2)]],
      ['x', [line('c', 7, '2026-12-01T09:00:00.000Z'), line('e', null), line('x', 1)]],
    ]);
    const f = fencedPeers('a', [], claims, seqOf);
    expect([...f.keys()].sort()).toEqual(['c', 'e']); // d restarted since (seq 3 ≠ 2); x cannot fence itself
    expect(f.get('c')?.by).toBe('x');
    expect(fencedPeers('a', [line('d', 3)], claims, seqOf).get('d')?.by).toBe('a');
    // a claim about this node itself is never taken: it knows it is alive
    expect(fencedPeers('c', [], claims, seqOf).has('c')).toBe(false);
  });
});
