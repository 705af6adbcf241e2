// Quorum: a pure function of how many monitors heartbeat and what the policy says.

import type { QuorumConfig } from '../config/monitor.js';

export type { QuorumConfig, QuorumPolicy } from '../config/monitor.js';

export interface QuorumMemory {
  /** `adaptive`: the node count at the last successful check. */
  readonly base: number;
  /** `adaptive`: how many nodes had left in order at that check (absent: 0). */
  readonly leftAtBase?: number;
  /** `wait_for_all`: every expected node has been seen live since start. */
  readonly allSeen: boolean;
}

export const FRESH_QUORUM: QuorumMemory = { base: 0, allSeen: false };

export interface QuorumResult {
  readonly ok: boolean;
  readonly live: number;
  readonly expected: number | null;
  readonly reason: string;
  readonly memory: QuorumMemory;
}

/**
 * majority: live > expected/2. adaptive (the original §4.6 rule): live ≥ 60 % of the count at
 * the last successful check, which then becomes the new base; a node that left in order since
 * (`left`: how many peers show the left marker now) no longer counts in that base, so the last
 * nodes standing keep quorum one orderly leave at a time (a crash still counts). none: always.
 */
export function quorum(live: number, cfg: QuorumConfig, mem: QuorumMemory, left = 0): QuorumResult {
  const expected = cfg.expected ?? null;
  const allSeen = mem.allSeen || (expected !== null && live >= expected);
  const base: QuorumResult = { ok: true, live, expected, reason: '', memory: { ...mem, allSeen } };
  if (cfg.waitForAll && expected !== null && !allSeen) {
    return { ...base, ok: false, reason: `waiting for all ${expected} nodes at cold start (${live} live)` };
  }
  switch (cfg.policy) {
    case 'none':
      return { ...base, reason: 'quorum policy none' };
    case 'majority': {
      const n = expected ?? live;
      const ok = live * 2 > n;
      return { ...base, ok, reason: `${live} of ${n} live ${ok ? '>' : '≤'} half` };
    }
    case 'adaptive': {
      const of = Math.max(0, mem.base - Math.max(0, left - (mem.leftAtBase ?? 0)));
      const ok = live * 5 >= of * 3; // ≥ 60 %, in integers
      const gone = of < mem.base ? ` (${mem.base - of} left in order)` : '';
      return {
        ...base,
        ok,
        reason: ok ? `${live} live ≥ 60 % of ${of}${gone}` : `${live} live < 60 % of ${of}${gone}`,
        memory: ok ? { allSeen, base: live, leftAtBase: left } : { allSeen, base: mem.base, leftAtBase: mem.leftAtBase ?? 0 },
      };
    }
  }
}
