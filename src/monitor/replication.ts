// Replication of cltab and hactl, as pure steps on what the cycle stat'ed and read: the admin
// copies are stat'ed each cycle, a node's replicas when its beat says it wrote them (and every few
// cycles anyway), only a changed one is read again, the
// newest valid one wins (cluster/replicate.ts), and this node copies the winner into its folder.

import { formatError, halfWritten, parseCltab, type ConfigError } from '../config/cltab.js';
import { parseHactl } from '../config/hactl.js';
import { chooseCopy, contentHash, type Judged } from '../cluster/replicate.js';
import type { FileRead, FileSignature } from '../cluster/store.js';
import type { CopySeen } from './state.js';
import type { Turn } from './turn.js';

export type ReplicatedFile = 'cltab' | 'hactl';
export const REPLICATED: readonly ReplicatedFile[] = ['cltab', 'hactl'];

const PARSE: Record<ReplicatedFile, (text: string, source: string) => readonly ConfigError[]> = {
  cltab: (text, source) => {
    const r = parseCltab(text, source);
    return r.ok ? [] : r.errors;
  },
  hactl: (text, source) => {
    const r = parseHactl(text, source);
    return r.ok ? [] : r.errors;
  },
};

/** Why a copy must not be followed: half-written, or invalid. */
function problems(file: ReplicatedFile, text: string, source: string): string[] {
  // After an edit every node reads every node's copy of the same text: parse a text once (a
  // 1,000-group hactl took ~35 ms a parse); only an invalid one again, for its own file:line.
  const key = `${file}\n${text}`;
  if (VALID_TEXTS.has(key)) return [];
  const cut = halfWritten(text, source);
  const errors = (cut ? [cut] : PARSE[file](text, source)).map(formatError);
  if (errors.length === 0) {
    if (VALID_TEXTS.size >= 16) VALID_TEXTS.delete(VALID_TEXTS.values().next().value!);
    VALID_TEXTS.add(key);
  }
  return errors;
}

/** The last few copy texts that parsed without an error. */
const VALID_TEXTS = new Set<string>();

/** contentHash() memoized on the text (every node hashes the same few texts); at most 256. */
function hashOf(text: string): string {
  let h = HASHES.get(text);
  if (h === undefined) {
    h = contentHash(text);
    if (HASHES.size >= 256) HASHES.delete(HASHES.keys().next().value!);
    HASHES.set(text, h);
  }
  return h;
}

const HASHES = new Map<string, string>();

/** Every copy of every replicated file, as paths relative to DIR: the admin copy first. */
export function copyPaths(names: readonly string[]): readonly string[] {
  const key = names.join('/');
  if (lastPaths?.key !== key) lastPaths = { key, paths: REPLICATED.flatMap((file) => [file, ...names.map((n) => `nodes/${n}/${file}`)]) };
  return lastPaths.paths;
}

/** The node list rarely changes from one cycle to the next: keep the last answer. */
let lastPaths: { key: string; paths: readonly string[] } | null = null;

export function fileOf(path: string): ReplicatedFile {
  return path.endsWith('cltab') ? 'cltab' : 'hactl';
}

/** How a copy is named in errors and logs: its full path. */
export function sourceName(root: string, path: string): string {
  return `${root.replace(/\/+$/, '')}/${path}`;
}

/**
 * The verdict on an unchanged copy without reading it again, null (not a candidate this cycle),
 * or undefined (read it). Only once
 * its signature stood for `settleMs`: a copy replaced within the mtime's granularity (one second
 * over SFTP) with the same size and inode number would look unchanged; it is read until then.
 */
export function unchangedVerdict(copies: Map<string, CopySeen>, path: string, sig: FileSignature | null, now: number, settleMs: number): Judged | null | undefined {
  const seen = copies.get(path);
  if (!sig || !seen?.sig || seen.sig.mtimeMs !== sig.mtimeMs || seen.sig.size !== sig.size || seen.sig.ino !== sig.ino || seen.sig.mode !== sig.mode) {
    // The old verdict goes: kept, it would stand for the new content once the signature settled,
    // whether or not a read of it ever landed (sim seed 4131: every read failed with EIO meanwhile,
    // and a node ran the old cltab for good).
    copies.set(path, { sig, since: now, judged: null });
    // Rewritten in place (same inode: an editor, `printf >`, random bytes) rather than replaced:
    // it may be mid-write (truncated to nothing, half there). Skip it until it stands still for a
    // cycle. peerha's own writes (tmp + rename) are new inodes and count at once.
    if (sig && seen?.sig && seen.sig.ino === sig.ino) return null;
    return undefined;
  }
  if (now - seen.since < settleMs || !seen.judged) return undefined;
  return seen.judged;
}

/**
 * The verdict on a copy just read (parsed again only when its text or mtime changed). A copy the
 * store refused (a symlink, not a regular file) is reported, never followed.
 */
export function judgeRead(copies: Map<string, CopySeen>, path: string, source: string, read: FileRead | null, error?: string): Judged | null {
  const seen = copies.get(path);
  let judged: Judged | null = null;
  const prev = seen?.judged;
  if (read && seen?.sig && (read.mtimeMs !== seen.sig.mtimeMs || (read.size ?? Buffer.byteLength(read.text)) !== seen.sig.size)) {
    // Changed between this cycle's stat and the read (a writer truncating and refilling it):
    // not a candidate until a cycle's stat and read agree.
    copies.set(path, { sig: null, since: seen.since, judged: prev ?? null });
    return null;
  }
  if (!read && error?.endsWith('refused')) judged = { source, text: '', mtimeMs: 0, hash: '', errors: [`${source}: ${error}`] };
  else if (read && prev && prev.mtimeMs === read.mtimeMs && prev.text === read.text) judged = prev;
  else if (read) {
    const hash = hashOf(read.text);
    judged = prev && prev.hash === hash && prev.mtimeMs === read.mtimeMs ? prev : { source, text: read.text, mtimeMs: read.mtimeMs, hash, errors: problems(fileOf(path), read.text, source) };
  }
  copies.set(path, { sig: seen?.sig ?? null, since: seen?.since ?? 0, judged });
  return judged;
}

export interface Replica {
  readonly winner: Judged | null;
  readonly errors: string[];
}

/** The winner among this cycle's verdicts for `file`; copies it into this node's folder if needed (unless a copy is on its way). */
export function replicate(t: Turn, file: ReplicatedFile, verdicts: ReadonlyMap<string, Judged | null>): Replica {
  const judged: Judged[] = [];
  for (const [path, j] of verdicts) if (j && fileOf(path) === file) judged.push(j);
  const winner = chooseCopy(judged, sourceName(t.state.settings.root, file));
  const own = sourceName(t.state.settings.root, t.own(file));
  const mine = judged.find((j) => j.source === own);
  if (winner && (!mine || mine.hash !== winner.hash) && !t.state.replicating.has(file)) {
    t.state.replicating = new Set(t.state.replicating).add(file);
    // Only over the copy judged here: an admin may edit this node's copy by hand meanwhile.
    const ifUnchanged = t.state.copies.get(t.own(file))?.sig ?? null;
    t.io({ kind: 'replica', file, from: winner.source }, [{ op: 'write', path: t.own(file), text: winner.text, mtimeMs: winner.mtimeMs, ifUnchanged }]);
  }
  return { winner, errors: judged.flatMap((j) => [...j.errors]) };
}

/** This node's replica of `file` was written (or not): the next cycle may write it again. */
export function replicaWritten(t: Turn, file: ReplicatedFile, from: string, error: string | null): void {
  const replicating = new Set(t.state.replicating);
  replicating.delete(file);
  t.state.replicating = replicating;
  // Announced in the next beat: peers stat this node's copies only when that number changes.
  t.state.beat = { ...t.state.beat, copies: t.state.seq + 1 };
  if (error === null) t.log('info', 'replicated', { file, from });
  else t.log('warn', 'replication failed; retrying next cycle', { file, err: error });
}
