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

/** One operation on the shared directory; paths are relative to DIR. */
export type StoreOp =
  | { readonly op: 'list' }
  | { readonly op: 'read'; readonly path: string; readonly consistent?: boolean }
  | { readonly op: 'stat'; readonly path: string }
  | { readonly op: 'write'; readonly path: string; readonly text: string; readonly mtimeMs?: number }
  /** A JSON document (hastat): serialized by the store, so a store nobody reads from may skip it. */
  | { readonly op: 'writeJson'; readonly path: string; readonly value: unknown }
  | { readonly op: 'mkdir'; readonly path: string };

/** Its result: node names, a file (null = missing or unreadable now), a signature, or an error. */
export type StoreResult =
  /** null: the listing failed (not the same as an empty DIR/nodes). */
  | { readonly op: 'list'; readonly names: readonly string[] | null }
  | { readonly op: 'read'; readonly read: FileRead | null }
  | { readonly op: 'stat'; readonly sig: FileSignature | null }
  | { readonly op: 'write' | 'writeJson' | 'mkdir'; readonly error: string | null };

/**
 * The shared directory as a monitor driver uses it: a batch of operations runs at once and one
 * callback gets every result in order (null results: the batch failed as a whole, with `error`).
 * FsStore is the real one; the simulator's store completes batches in virtual time.
 */
export interface SharedStore {
  perform(ops: readonly StoreOp[], done: (results: readonly StoreResult[] | null, error?: string) => void): void;
}

/** A path relative to DIR that stays inside it: no absolute path, no `.`/`..` or empty segment. */
export function insideRoot(rel: string): boolean {
  return rel !== '' && !rel.startsWith('/') && rel.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
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

export class FsStore implements Store, SharedStore {
  constructor(
    readonly root: string,
    private readonly me: string,
  ) {}

  perform(ops: readonly StoreOp[], done: (results: readonly StoreResult[] | null, error?: string) => void): void {
    Promise.all(ops.map((op) => this.one(op))).then(
      (results) => done(results),
      (e: unknown) => done(null, String(e)),
    );
  }

  private async one(op: StoreOp): Promise<StoreResult> {
    if (op.op === 'list') return { op: 'list', names: await this.listNodesOrFail().catch(() => null) };
    if (!insideRoot(op.path)) throw new Error(`path outside the shared directory: ${op.path}`);
    const path = join(this.root, op.path);
    switch (op.op) {
      case 'read':
        return { op: 'read', read: await readWithStat(path, op.consistent) };
      case 'stat':
        return { op: 'stat', sig: await signatureOf(path) };
      case 'write':
      case 'writeJson':
      case 'mkdir': {
        // One writer per file: this node writes only inside its own folder.
        if (!op.path.startsWith(`nodes/${this.me}/`) && op.path !== `nodes/${this.me}`) throw new Error(`not this node's file: ${op.path}`);
        try {
          if (op.op === 'write') await writeFileAtomic(path, op.text, 0o644, op.mtimeMs);
          else if (op.op === 'writeJson') await writeFileAtomic(path, JSON.stringify(op.value, null, 1) + '\n');
          else await ensureDir(path);
          return { op: op.op, error: null };
        } catch (e) {
          return { op: op.op, error: String(e) };
        }
      }
    }
  }

  nodeDir(node: string): string {
    return join(this.root, 'nodes', node);
  }

  /** Node folders; none when DIR/nodes is missing or cannot be listed right now. */
  async listNodes(): Promise<string[]> {
    return this.listNodesOrFail().catch(() => []);
  }

  /** Node folders; [] when DIR/nodes does not exist yet; throws when it cannot be listed. */
  private async listNodesOrFail(): Promise<string[]> {
    // fast-glob suppresses only ENOENT here: an I/O error must not look like an empty cluster.
    const dirs = await fg('nodes/*', { cwd: this.root, onlyDirectories: true, dot: false, deep: 1, suppressErrors: false, followSymbolicLinks: false });
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
