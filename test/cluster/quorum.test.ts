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
