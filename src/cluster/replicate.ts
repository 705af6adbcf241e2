// Replication of cltab/hactl (pure choice): among every copy in the shared directory, the newest
// valid one wins: the highest generation (`# generation N`, the first line), then the newest
// mtime, ties broken by content hash so every node picks the same. Generations make the newest
// edit win whatever the timestamp granularity (whole seconds over SFTP). A copy that does not
// parse is never propagated; its errors are reported.

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

const GENERATION = /^# generation (\d{1,15})\n/;

/** A copy's generation: its `# generation N` first line, 0 without one (a hand-written file). */
export function generationOf(text: string): number {
  const m = GENERATION.exec(text);
  return m ? Number(m[1]) : 0;
}

/** The text without its generation line: what an edit changes. */
export function withoutGeneration(text: string): string {
  return text.replace(GENERATION, '');
}

export function withGeneration(text: string, generation: number): string {
  return `# generation ${generation}\n${withoutGeneration(text)}`;
}

/** The winning candidate, or null when no copy is valid. */
export function pickNewest(cands: readonly Judged[]): Judged | null {
  let best: Judged | null = null;
  let bestGen = -1;
  for (const c of cands) {
    if (c.errors.length > 0) continue;
    const gen = generationOf(c.text);
    if (!best || gen > bestGen || (gen === bestGen && (c.mtimeMs > best.mtimeMs || (c.mtimeMs === best.mtimeMs && c.hash > best.hash)))) {
      best = c;
      bestGen = gen;
    }
  }
  return best;
}

/**
 * The copy the cluster follows. The admin copy (`adminSource`, DIR/file) is only ever written by
 * an admin, so when it is valid and says something else than the newest copy without being of a
 * higher generation, it is a hand edit made since: it wins, as the next generation (the text the
 * nodes then replicate). So no hand edit is lost, whatever the timestamp granularity. Replicas
 * keep their source's mtime, so an admin copy older than the winner is an old read, not an edit.
 */
export function chooseCopy(cands: readonly Judged[], adminSource: string): Judged | null {
  const best = pickNewest(cands);
  const admin = cands.find((c) => c.source === adminSource && c.errors.length === 0);
  if (!best || !admin || admin === best || withoutGeneration(admin.text) === withoutGeneration(best.text)) return best;
  // A read of the admin copy older than the winner (a cache, a read that lagged) is no edit.
  if (admin.mtimeMs < best.mtimeMs) return best;
  const text = withGeneration(admin.text, generationOf(best.text) + 1);
  return { ...admin, text, hash: contentHash(text) };
}
