import { describe, expect, it } from 'vitest';
import { FRESH_QUORUM, quorum, type QuorumMemory } from '../../src/cluster/quorum.js';

describe('quorum', () => {
  it('adaptive reproduces the §5.2 1045quorum sequence (60 % of the last good count)', () => {
    const seq: Array<[number, boolean]> = [
      [3, true], [10, true], [7, true], [6, true], [10, true], [6, true], [20, true], [11, false],
      [11, false], [12, true], [11, true], [3, false], [3, false], [21, true],
    ];
    let mem: QuorumMemory = FRESH_QUORUM;
    for (const [live, ok] of seq) {
      const r = quorum(live, { policy: 'adaptive' }, mem);
      expect([live, r.ok]).toEqual([live, ok]);
      mem = r.memory;
    }
  });

  it('majority: more than half of expected', () => {
    const cases: Array<[number, number, boolean]> = [
      [5, 5, true], [3, 5, true], [2, 5, false], [2, 4, false], [3, 4, true], [1, 1, true], [0, 1, false], [1, 2, false],
    ];
    for (const [live, expected, ok] of cases) {
      expect(quorum(live, { policy: 'majority', expected }, FRESH_QUORUM).ok, `${live}/${expected}`).toBe(ok);
    }
  });

  it('adaptive: an orderly leave no longer counts against the base (the last nodes standing keep quorum); a crash still does', () => {
    let mem = quorum(2, { policy: 'adaptive' }, FRESH_QUORUM).memory; // two nodes
    // one leaves in order: 1 live, 1 left → 1 of a base of 1
    const left = quorum(1, { policy: 'adaptive' }, mem, 1);
    expect(left.ok).toBe(true);
    expect(left.reason).toBe('1 live ≥ 60 % of 1 (1 left in order)');
    // it comes back: 2 live, none left
    mem = quorum(2, { policy: 'adaptive' }, left.memory, 0).memory;
    expect(mem).toMatchObject({ base: 2, leftAtBase: 0 });
    // one crashes instead (stale, not left): 1 of 2 → no quorum, as before
    expect(quorum(1, { policy: 'adaptive' }, mem, 0).ok).toBe(false);
    // five nodes leaving one at a time in order: quorum holds down to the last one
    let m5 = quorum(5, { policy: 'adaptive' }, FRESH_QUORUM).memory;
    for (let live = 4; live >= 1; live--) {
      const r = quorum(live, { policy: 'adaptive' }, m5, 5 - live);
      expect(r.ok, `${live} live`).toBe(true);
      m5 = r.memory;
    }
  });

  it('none: always', () => {
    expect(quorum(0, { policy: 'none' }, FRESH_QUORUM).ok).toBe(true);
  });

  it('wait_for_all holds quorum back until every expected node was seen once', () => {
    const cfg = { policy: 'majority' as const, expected: 3, waitForAll: true };
    const a = quorum(2, cfg, FRESH_QUORUM);
    expect(a.ok).toBe(false);
    const b = quorum(3, cfg, a.memory);
    expect(b.ok).toBe(true);
    expect(quorum(2, cfg, b.memory).ok).toBe(true);
  });
});
