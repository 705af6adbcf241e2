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
 * The copy the cluster follows: the newest by generation (pickNewest), unless a hand edit was made
 * since — a valid copy that says something else without a higher generation: the admin copy
 * (`adminSource`, DIR/file, only ever written by an admin) with an mtime not older than the
 * winner's, or a node's copy written by hand (no generation line) with a newer one (replicas keep
 * their source's mtime, so a stale one is never newer). That edit wins as the next generation (the text the nodes then
 * replicate): no hand edit is lost, whatever the timestamp granularity.
 */
export function chooseCopy(cands: readonly Judged[], adminSource: string): Judged | null {
  const best = pickNewest(cands);
  if (!best) return null;
  const gen = generationOf(best.text);
  const body = withoutGeneration(best.text);
  let edit: Judged | null = null;
  for (const c of cands) {
    if (c === best || c.errors.length > 0 || generationOf(c.text) > gen || withoutGeneration(c.text) === body) continue;
    const admin = c.source === adminSource;
    // Not an edit: an old read of the admin copy; a copy a monitor wrote (it carries a generation).
    if (admin ? c.mtimeMs < best.mtimeMs : c.mtimeMs <= best.mtimeMs || generationOf(c.text) > 0) continue;
    if (!edit || c.mtimeMs > edit.mtimeMs || (c.mtimeMs === edit.mtimeMs && admin)) edit = c;
  }
  if (!edit) return best;
  const text = withGeneration(edit.text, gen + 1);
  return { ...edit, text, hash: contentHash(text) };
}
