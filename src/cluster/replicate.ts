// Replication of cltab/hactl (pure choice): among every copy in the shared directory, the newest
// valid one wins (mtime, ties broken by content hash so every node picks the same). A copy that
// does not parse is never propagated; its errors are reported.

import { createHash } from 'node:crypto';

export interface Candidate {
  /** Where it lives, e.g. `DIR/hactl` or `nodes/n2/hactl`. */
  readonly source: string;
  readonly text: string;
  readonly mtimeMs: number;
}

export interface Judged extends Candidate {
  readonly hash: string;
  readonly errors: readonly string[];
}

export function contentHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The winning candidate, or null when no copy is valid. */
export function pickNewest(cands: readonly Judged[]): Judged | null {
  let best: Judged | null = null;
  for (const c of cands) {
    if (c.errors.length > 0) continue;
    if (!best || c.mtimeMs > best.mtimeMs || (c.mtimeMs === best.mtimeMs && c.hash > best.hash)) best = c;
  }
  return best;
}
