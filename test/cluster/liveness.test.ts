import { describe, expect, it } from 'vitest';
import { liveness, observe, type PeerMemory, type PeerObservation } from '../../src/cluster/liveness.js';

const obs = (entries: Array<[string, number | null, boolean?]>): Map<string, PeerObservation> =>
  new Map(entries.map(([n, seq, left]) => [n, { seq, left: left ?? false }]));

describe('liveness', () => {
  it('a peer stays up while its seq changes and turns stale after timeout of silence', () => {
    let mem = new Map<string, PeerMemory>();
    mem = observe(mem, obs([['a', 1]]), 0);
    mem = observe(mem, obs([['a', 2]]), 1000);
    expect(liveness(mem, 1500, 3000).get('a')!.state).toBe('up');
    mem = observe(mem, obs([['a', 2]]), 3000);
    expect(liveness(mem, 3999, 3000).get('a')!.state).toBe('up');
    mem = observe(mem, obs([['a', 2]]), 4000); // read a full timeout after its last change: still 2
    expect(liveness(mem, 4000, 3000).get('a')!.state).toBe('stale');
    mem = observe(mem, obs([['a', 3]]), 5000);
    expect(liveness(mem, 5000, 3000).get('a')!.state).toBe('up');
  });

  it('is skew-proof: only seq changes on our clock matter, not the peer\'s time', () => {
    // Same observations whatever the peer's wall clock says: nothing else is an input.
    let mem = new Map<string, PeerMemory>();
    for (let t = 0; t <= 10_000; t += 1000) mem = observe(mem, obs([['skewed', t / 1000]]), t);
    expect(liveness(mem, 10_000, 3000).get('skewed')!.state).toBe('up');
  });

  it('unreadable is not dead: a peer silent only because its clstat could not be read is unknown, not stale', () => {
    let mem = observe(new Map(), obs([['a', 5]]), 0);
    mem = observe(mem, obs([['a', null]]), 2000); // torn, missing: neither refreshes nor resets it
    expect(mem.get('a')!.seq).toBe(5);
    mem = observe(mem, obs([['a', null]]), 3000);
    expect(liveness(mem, 3000, 3000).get('a')!.state).toBe('unknown');
    mem = observe(mem, obs([['a', null]]), 9000);
    expect(liveness(mem, 9000, 3000).get('a')!.state).toBe('unknown');
    // A read that succeeds and still shows seq 5 is evidence: stale.
    mem = observe(mem, obs([['a', 5]]), 9100);
    expect(liveness(mem, 9100, 3000).get('a')!.state).toBe('stale');
    // Unreadable again afterwards: what was read last still stands.
    mem = observe(mem, obs([['a', null]]), 9200);
    expect(liveness(mem, 9200, 3000).get('a')!.state).toBe('stale');
  });

  it('a folder whose clstat was never readable stays unknown (it may be a live node this one cannot see), never stale', () => {
    let mem = observe(new Map(), obs([['a', null]]), 0);
    mem = observe(mem, obs([['a', null]]), 3000);
    expect(liveness(mem, 3000, 3000).get('a')!.state).toBe('unknown');
    mem = observe(mem, obs([['a', null]]), 60_000);
    expect(liveness(mem, 60_000, 3000).get('a')!.state).toBe('unknown');
  });

  it('an unreadable read keeps a left marker', () => {
    let mem = observe(new Map(), obs([['a', 3, true]]), 0);
    mem = observe(mem, obs([['a', null]]), 100);
    expect(liveness(mem, 100, 3000).get('a')!.state).toBe('left');
  });

  it('a left marker makes the peer gone at once; a new seq after it brings it back', () => {
    let mem = observe(new Map(), obs([['a', 1]]), 0);
    mem = observe(mem, obs([['a', 1, true]]), 100);
    expect(liveness(mem, 100, 3000).get('a')!.state).toBe('left');
    mem = observe(mem, obs([['a', 2]]), 200);
    expect(liveness(mem, 200, 3000).get('a')!.state).toBe('up');
  });

  it('a vanished folder keeps its memory: unknown, its groups still count, rather than disappearing', () => {
    let mem = observe(new Map(), obs([['a', 1]]), 0);
    mem = observe(mem, obs([]), 1000);
    expect(liveness(mem, 3000, 3000).get('a')!.state).toBe('unknown');
  });
});
