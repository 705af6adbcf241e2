// The shared directory: `DIR/nodes/<node>/{cltab,hactl,clstat,hastat}` plus admin copies
// `DIR/cltab` and `DIR/hactl`. Peers are found by listing `DIR/nodes` every cycle. Every write
// is tmp + fsync + rename; readers treat missing or unreadable files as "not this cycle".

import fg from 'fast-glob';
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { validNodeName } from '../config/hactl.js';
import { ensureDir, writeFileAtomic } from '../io/atomic.js';
import { contentHash, pickNewest, type Judged } from './replicate.js';

export interface FileRead {
  readonly text: string;
  readonly mtimeMs: number;
}

/** What a stat by path says of a file: enough to tell that it changed. */
export interface FileSignature {
  readonly mtimeMs: number;
  readonly size: number;
  readonly ino: number;
}

/** A regular file's signature, or null (missing, unreadable, not a regular file). Never opens it. */
export async function signatureOf(path: string): Promise<FileSignature | null> {
  try {
    const st = await stat(path);
    return st.isFile() ? { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino } : null;
  } catch {
    return null;
  }
}

export interface Store {
  readonly root: string;
  listNodes(): Promise<string[]>;
  /** A node's file, or null when missing or unreadable right now. */
  /** `consistent`: the mtime must belong to the text read (see readWithStat); costs a stat more. */
  readNodeFile(node: string, file: string, consistent?: boolean): Promise<FileRead | null>;
  /** An admin copy at the root (`DIR/cltab`, `DIR/hactl`). */
  readRootFile(file: string, consistent?: boolean): Promise<FileRead | null>;
  /** Replace one of this node's files; `mtimeMs` preserves a replica's age. */
  writeOwn(file: string, text: string, mtimeMs?: number): Promise<void>;
  ensureOwnDir(): Promise<void>;
}

async function readOnce(path: string, consistent: boolean): Promise<FileRead | 'changed' | null> {
  // O_NONBLOCK and regular files only: anyone can put a FIFO (or a device) where a clstat is
  // expected, and a blocking open() would hang every monitor's cycle for good (and with it the
  // heartbeats: every watchdog self-fences, cluster-wide).
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const st = await fh.stat();
    if (!st.isFile()) return null;
    const bytes = await fh.readFile();
    if (!consistent) return { text: bytes.toString('utf8'), mtimeMs: st.mtimeMs };
    // On FUSE (sshfs) fstat() of an open file goes by path: after a rename over the file it
    // reports the new file's mtime while the read returns the old text, and that pair would win
    // replication over the newer copy. Keep a pair only when a stat by path afterwards agrees.
    const after = await stat(path);
    if (after.mtimeMs !== st.mtimeMs || after.size !== st.size || bytes.length !== st.size) return 'changed';
    return { text: bytes.toString('utf8'), mtimeMs: st.mtimeMs };
  } catch {
    return null; // ENOENT, ESTALE, EIO…: try again next cycle
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

async function readWithStat(path: string, consistent = false): Promise<FileRead | null> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await readOnce(path, consistent);
    if (r !== 'changed') return r;
  }
  return null; // rewritten under every read: next cycle
}

export class FsStore implements Store {
  constructor(
    readonly root: string,
    private readonly me: string,
  ) {}

  nodeDir(node: string): string {
    return join(this.root, 'nodes', node);
  }

  async listNodes(): Promise<string[]> {
    const dirs = await fg('nodes/*', { cwd: this.root, onlyDirectories: true, dot: false, deep: 1, suppressErrors: true, followSymbolicLinks: false });
    return dirs.map((d) => d.slice('nodes/'.length)).filter(validNodeName).sort();
  }

  readNodeFile(node: string, file: string, consistent = false): Promise<FileRead | null> {
    return readWithStat(join(this.nodeDir(node), file), consistent);
  }

  readRootFile(file: string, consistent = false): Promise<FileRead | null> {
    return readWithStat(join(this.root, file), consistent);
  }

  async writeOwn(file: string, text: string, mtimeMs?: number): Promise<void> {
    const path = join(this.nodeDir(this.me), file);
    await writeFileAtomic(path, text, 0o644, mtimeMs);
  }

  async ensureOwnDir(): Promise<void> {
    await ensureDir(this.nodeDir(this.me));
  }
}

/**
 * The copy of `file` (DIR/file and every node folder's copy) the cluster follows: the newest valid
 * one. Also the newest mtime of any copy, valid or not.
 */
export async function newestValid(store: Store, file: string, valid: (text: string, source: string) => boolean): Promise<{ winner: Judged | null; maxMtime: number }> {
  const reads: Array<[string, FileRead | null]> = [[`DIR/${file}`, await store.readRootFile(file, true)]];
  for (const n of await store.listNodes()) reads.push([`nodes/${n}/${file}`, await store.readNodeFile(n, file, true)]);
  let maxMtime = 0;
  const judged: Judged[] = [];
  for (const [source, r] of reads) {
    if (!r) continue;
    maxMtime = Math.max(maxMtime, r.mtimeMs);
    judged.push({ source, text: r.text, mtimeMs: r.mtimeMs, hash: contentHash(r.text), errors: valid(r.text, source) ? [] : ['invalid'] });
  }
  return { winner: pickNewest(judged), maxMtime };
}
