import { describe, expect, it } from 'vitest';
import { fenceBackoffMs, fenceTargets, type FencePeer } from '../../src/monitor/fencing.js';

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

  it('backoff doubles per attempt up to a minute', () => {
    expect([1, 2, 3, 10, 20].map((a) => fenceBackoffMs(a, 1000))).toEqual([2000, 4000, 8000, 60000, 60000]);
  });
});
