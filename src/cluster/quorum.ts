// Quorum: a pure function of how many monitors heartbeat and what the policy says.

import type { QuorumConfig } from '../config/monitor.js';

export type { QuorumConfig, QuorumPolicy } from '../config/monitor.js';

export interface QuorumMemory {
  /** `adaptive`: the node count at the last successful check. */
  readonly base: number;
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
 * the last successful check, which then becomes the new base. none: always.
 */
export function quorum(live: number, cfg: QuorumConfig, mem: QuorumMemory): QuorumResult {
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
      const ok = live * 5 >= mem.base * 3; // ≥ 60 %, in integers
      return {
        ...base,
        ok,
        reason: ok ? `${live} live ≥ 60 % of ${mem.base}` : `${live} live < 60 % of ${mem.base}`,
        memory: { allSeen, base: ok ? live : mem.base },
      };
    }
  }
}
