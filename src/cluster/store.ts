// The shared directory: `DIR/nodes/<node>/{cltab,hactl,clstat,hastat}`, `DIR/beats/` (beats.ts), `DIR/claims/`, plus admin copies
// `DIR/cltab` and `DIR/hactl`. Peers are found by listing `DIR/nodes` every cycle. Every write
// is tmp + rename (+ fsync, except the heartbeat files); readers treat missing or unreadable files
// as "not this cycle".

import { constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, readFile, realpath, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { validNodeName } from '../config/names.js';
import { isFull, realPathOf, rewriteInPlace, writeFileAtomic } from '../io/atomic.js';
import { BEATS_DIR, isOwnBeatPath, parseBeatName, stampedBeat } from './beats.js';
import { CLAIMS_DIR, parseClaimName } from './claims.js';
import { chooseCopy, contentHash, type Judged } from './replicate.js';

/**
 * A node's heartbeat and its derived view, rewritten every cycle. Their readers detect a mixed
 * old/new read (clstat: its checksum; hastat: JSON), so on a full filesystem they are rewritten in
 * place. They are not fsynced: a lost last version is rewritten by the next cycle (and a dead
 * node's last one only has to be read, not to survive a storage crash), while an fsync per
 * heartbeat put the heartbeat's latency at the mercy of the disk (~250 ms under load here).
 */
const HEARTBEAT_FILE = /^nodes\/[^/]+\/(clstat|hastat)$/;

/** Shared files hold what every node runs and who fences whom: owner only (or a configured group: 0640). */
export const SHARED_FILE_MODE = 0o600;

export interface FileRead {
  readonly text: string;
  readonly mtimeMs: number;
  /** Bytes read (the text may be longer or shorter: invalid UTF-8 decodes to U+FFFD). */
  readonly size?: number;
}

/** What a stat by path says of a file: enough to tell that it changed. */
export interface FileSignature {
  readonly mtimeMs: number;
  readonly size: number;
  readonly ino: number;
  /** Permission bits: a chmod (o-w on a refused admin copy) changes nothing else. */
  readonly mode?: number;
}

/** The same file as far as a signature tells (a chmod aside); two nulls: still missing. */
export function sameFile(a: FileSignature | null, b: FileSignature | null): boolean {
  return a === null || b === null ? a === b : a.mtimeMs === b.mtimeMs && a.size === b.size && a.ino === b.ino;
}

/** A regular file's signature, or null (missing, unreadable, a symlink, not a regular file). Never opens it. */
export async function signatureOf(path: string): Promise<FileSignature | null> {
  try {
    const st = await lstat(path);
    return st.isFile() ? { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino, mode: st.mode & 0o777 } : null;
  } catch {
    return null;
  }
}

/** One operation on the shared directory; paths are relative to DIR. */
export type StoreOp =
  /** The node folders, or the claim files, or the heartbeats (beats.ts). */
  | { readonly op: 'list'; readonly dir?: 'claims' | 'beats' }
  /**
   * This node's clstat written, then its beat renamed `from` → `to` (created when `from` is gone).
   * `notAfter` (the writer's monotonic clock): abandoned when it could land only later — what it
   * claims runs here may be dead by then (a process frozen mid-write resumes after its watchdog
   * fired), and a fresh seq with old claims would beat a peer's healthy instance in a conflict.
   */
  /** `to`: the beat's name up to its stamp (beats.ts beatName), which the store adds right before the rename. */
  | { readonly op: 'heartbeat'; readonly path: string; readonly text: string; readonly from: string | null; readonly to: string; readonly notAfter?: number }
  /** A new file that must not exist yet (O_EXCL), written and synced: a claim. */
  | { readonly op: 'create'; readonly path: string; readonly text: string }
  /** Remove a claim (an older epoch of one this node holds) or one of this node's outdated beats. */
  | { readonly op: 'unlink'; readonly path: string }
  | { readonly op: 'read'; readonly path: string; readonly consistent?: boolean }
  | { readonly op: 'stat'; readonly path: string }
  /**
   * `ifUnchanged`: replace the file only while it is still the one the writer judged (null: still
   * missing) — a node's copy an admin edits by hand meanwhile is never renamed over.
   */
  | { readonly op: 'write'; readonly path: string; readonly text: string; readonly mtimeMs?: number; readonly ifUnchanged?: FileSignature | null }
  /** A JSON document (hastat): serialized by the store, so a store nobody reads from may skip it. */
  | { readonly op: 'writeJson'; readonly path: string; readonly value: unknown }
  /**
   * `withFile`: the folder appears with this file already in it (made under a hidden name, filled,
   * renamed into place), so no reader ever sees it empty: a monitor that dies right after making
   * its folder leaves a clstat that says what it is, not a folder every plan waits for.
   */
  | { readonly op: 'mkdir'; readonly path: string; readonly withFile?: { readonly name: string; readonly text: string } };

/** Its result: node names, a file (null = missing or unreadable now), a signature, or an error. */
export type StoreResult =
  /** null: the listing failed (not the same as an empty DIR/nodes). */
  | { readonly op: 'list'; readonly names: readonly string[] | null }
  /** `error`: why `read` is null (missing, a symlink, EIO…), for status and logs. */
  | { readonly op: 'read'; readonly read: FileRead | null; readonly error?: string }
  | { readonly op: 'stat'; readonly sig: FileSignature | null }
  /** `degraded`: written, but not the usual way (the filesystem is full: rewritten in place). */
  | {
      readonly op: 'write' | 'writeJson' | 'mkdir' | 'unlink' | 'heartbeat';
      readonly error: string | null;
      readonly degraded?: string;
      /** mkdir: the folder was there already. */
      readonly existed?: boolean;
      /** heartbeat: the beat's full name (beats.ts stampedBeat) and its stamp, on the monitor's clock. */
      readonly beat?: string;
      readonly at?: number;
    }
  /** `exists`: another node created it first (EEXIST): the claim is theirs. */
  | { readonly op: 'create'; readonly error: string | null; readonly exists?: boolean };

/**
 * The shared directory as a monitor driver uses it: a batch of operations runs at once and one
 * callback gets every result in order (null results: the batch failed as a whole, with `error`).
 * FsStore is the real one; the simulator's store completes batches in virtual time.
 */
export interface SharedStore {
  perform(ops: readonly StoreOp[], done: (results: readonly StoreResult[] | null, error?: string) => void): void;
}

/** `claims/<group>:<epoch>` and nothing else. */
function isClaimPath(rel: string): boolean {
  return rel.startsWith(`${CLAIMS_DIR}/`) && parseClaimName(rel.slice(CLAIMS_DIR.length + 1)) !== null && !rel.slice(CLAIMS_DIR.length + 1).includes('/');
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

/** Why a file was not read: an errno code, or what made it unacceptable. */
export interface ReadRefused {
  readonly error: string;
}

/**
 * One read of a regular file inside DIR. Refused: a symlink at any point of the path (O_NOFOLLOW
 * for the last one, the open file's real path for the folders above it), anything but a regular
 * file. O_NONBLOCK: anyone can put a FIFO where a clstat is expected, and a blocking open() would
 * hang every monitor's cycle for good (and with it the heartbeats: every watchdog self-fences).
 */
async function readOnce(path: string, realPath: string | null, consistent: boolean, adminCopy: boolean): Promise<FileRead | ReadRefused | 'changed'> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    const st = await fh.stat();
    if (!st.isFile()) return { error: 'not a regular file: refused' };
    // Its commands run as root on every node: anyone could have written them.
    if (adminCopy && st.mode & 0o002) return { error: `writable by others (mode ${(st.mode & 0o777).toString(8)}; chmod o-w): refused` };
    if (realPath !== null) {
      const at = await realPathOf(fh);
      if (at !== null && at !== realPath) return { error: `reached through a symlink (${at}): refused` };
    }
    const bytes = await fh.readFile();
    if (!consistent) return { text: bytes.toString('utf8'), mtimeMs: st.mtimeMs, size: bytes.length };
    // On FUSE (sshfs) fstat() of an open file goes by path: after a rename over the file it
    // reports the new file's mtime while the read returns the old text, and that pair would win
    // replication over the newer copy. Keep a pair only when a stat by path afterwards agrees.
    const after = await lstat(path);
    if (after.mtimeMs !== st.mtimeMs || after.size !== st.size || bytes.length !== st.size) return 'changed';
    return { text: bytes.toString('utf8'), mtimeMs: st.mtimeMs, size: bytes.length };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { error: code === 'ELOOP' ? 'a symlink: refused' : (code ?? String(e)) }; // ENOENT, ESTALE, EIO…: next cycle
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

async function readWithStat(path: string, realPath: string | null, consistent = false, adminCopy = false): Promise<FileRead | ReadRefused> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await readOnce(path, realPath, consistent, adminCopy);
    if (r !== 'changed') return r;
  }
  return { error: 'rewritten under every read' }; // next cycle
}

export const isRefused = (r: FileRead | ReadRefused): r is ReadRefused => 'error' in r;

/** The gid of a group given by name or number (from /etc/group), or null when there is none. */
export async function groupId(group: string): Promise<number | null> {
  if (/^\d+$/.test(group)) return Number(group);
  const text = await readFile('/etc/group', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return null;
}

/** A regular file by path, never through a symlink as its last component (for files named on a command line). */
export function readRegularFile(path: string): Promise<FileRead | ReadRefused> {
  return readWithStat(path, null, true);
}

export class FsStore implements Store, SharedStore {
  /** DIR with its own symlinks resolved (an admin may link DIR itself): what /proc shows of files in it. */
  private realRoot: string | null = null;

  private readonly mode: number;

  constructor(
    readonly root: string,
    private readonly me: string,
    /** A group that may read what this store writes (0640), else owner only (0600). */
    private readonly gid?: number,
    /** The monotonic clock a heartbeat's notAfter is on (the monitor's). */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.mode = gid === undefined ? SHARED_FILE_MODE : 0o640;
  }

  perform(ops: readonly StoreOp[], done: (results: readonly StoreResult[] | null, error?: string) => void): void {
    Promise.all(ops.map((op) => this.one(op))).then(
      (results) => done(results),
      (e: unknown) => done(null, String(e)),
    );
  }

  private async one(op: StoreOp): Promise<StoreResult> {
    if (op.op === 'list') return { op: 'list', names: await (op.dir === 'claims' ? this.listClaims() : op.dir === 'beats' ? this.listBeats() : this.listNodesOrFail()).catch(() => null) };
    switch (op.op) {
      case 'create':
        return this.createClaim(op.path, op.text);
      case 'unlink': {
        if (!isClaimPath(op.path) && !isOwnBeatPath(op.path, this.me)) throw new Error(`not a claim or this node's beat: ${op.path}`);
        return unlink(this.inside(op.path)).then(
          () => ({ op: 'unlink', error: null }),
          (e: NodeJS.ErrnoException) => ({ op: 'unlink', error: e.code === 'ENOENT' ? null : String(e) }),
        );
      }
      case 'read': {
        const r = await this.readInside(op.path, op.consistent);
        return isRefused(r) ? { op: 'read', read: null, error: r.error } : { op: 'read', read: r };
      }
      case 'stat':
        return { op: 'stat', sig: await signatureOf(this.inside(op.path)) };
      case 'heartbeat': {
        if (op.path !== `nodes/${this.me}/clstat`) throw new Error(`not this node's clstat: ${op.path}`);
        try {
          const notAfter = op.notAfter;
          const degraded = await this.writeInside(op.path, op.text, undefined, notAfter === undefined ? undefined : () => this.now() <= notAfter);
          // Stamped before the rename: nobody sees the beat before its stamp.
          const at = this.now();
          const beat = stampedBeat(op.to, at);
          await this.beat(op.from, beat);
          return { op: 'heartbeat', error: null, beat, at, ...(degraded ? { degraded } : {}) };
        } catch (e) {
          return { op: 'heartbeat', error: String(e) };
        }
      }
      case 'write':
      case 'writeJson':
      case 'mkdir': {
        // One writer per file: this node writes only inside its own folder (and makes DIR/claims).
        if (!op.path.startsWith(`nodes/${this.me}/`) && op.path !== `nodes/${this.me}` && !(op.op === 'mkdir' && op.path === CLAIMS_DIR)) throw new Error(`not this node's file: ${op.path}`);
        try {
          let degraded: string | null = null;
          let existed = false;
          const was = op.op === 'write' ? op.ifUnchanged : undefined;
          const unchanged = was === undefined ? undefined : async (): Promise<boolean> => sameFile(await signatureOf(this.inside(op.path)), was);
          if (op.op === 'write') degraded = await this.writeInside(op.path, op.text, op.mtimeMs, unchanged);
          else if (op.op === 'writeJson') degraded = await this.writeInside(op.path, JSON.stringify(op.value, null, 1) + '\n');
          else existed = await this.mkdirInside(op.path, op.withFile);
          if (op.op === 'mkdir') return { op: 'mkdir', error: null, existed };
          return degraded ? { op: op.op, error: null, degraded } : { op: op.op, error: null };
        } catch (e) {
          return { op: op.op, error: String(e) };
        }
      }
    }
  }

  /** DIR/rel, for a rel that stays inside DIR (throws otherwise). */
  private inside(rel: string): string {
    if (!insideRoot(rel)) throw new Error(`path outside the shared directory: ${rel}`);
    return join(this.root, rel);
  }

  /** Where DIR/rel must really be; null when DIR itself cannot be resolved now. */
  private async realOf(rel: string): Promise<string | null> {
    this.realRoot ??= await realpath(this.root).catch(() => null);
    return this.realRoot === null ? null : join(this.realRoot, rel);
  }

  /**
   * A file inside DIR, or why not (see readOnce: no symlink anywhere, regular files only; an
   * admin copy at the top, DIR/cltab or DIR/hactl, not writable by others).
   */
  async readInside(rel: string, consistent = false): Promise<FileRead | ReadRefused> {
    const path = this.inside(rel);
    return readWithStat(path, await this.realOf(rel), consistent, !rel.includes('/'));
  }

  /**
   * Replace a file inside DIR (tmp + fsync + rename), never through a symlinked folder. On a full
   * filesystem a heartbeat or hastat is rewritten in place instead (returns why): a full disk must
   * not make every node self-fence.
   */
  async writeInside(rel: string, text: string, mtimeMs?: number, stillValid?: () => boolean | Promise<boolean>): Promise<string | null> {
    const path = this.inside(rel);
    const realPath = (await this.realOf(rel)) ?? undefined;
    try {
      await writeFileAtomic(path, text, { mode: this.mode, mtimeMs, realPath, durable: !HEARTBEAT_FILE.test(rel), ...(this.gid !== undefined ? { gid: this.gid } : {}), ...(stillValid ? { stillValid } : {}) });
      return null;
    } catch (e) {
      if (!isFull(e) || !HEARTBEAT_FILE.test(rel)) throw e;
      await rewriteInPlace(path, text, realPath, stillValid);
      return `${(e as NodeJS.ErrnoException).code}: the shared filesystem is full; ${rel} rewritten in place`;
    }
  }

  /** A folder inside DIR; refused when it (or one above it) is a symlink. True when it was there already. */
  async mkdirInside(rel: string, withFile?: { readonly name: string; readonly text: string }): Promise<boolean> {
    const path = this.inside(rel);
    const created = withFile ? await this.mkdirFilled(path, withFile) : await mkdir(path, { recursive: true, mode: 0o755 });
    const want = await this.realOf(rel);
    const st = await lstat(path);
    if (!st.isDirectory() || (want !== null && (await realpath(path)) !== want)) throw new Error(`refused: ${path} is a symlink or reached through one`);
    return created === undefined;
  }

  /**
   * The folder at `path` made with `file` in it: a hidden sibling (listings skip dot names) is
   * filled and renamed into place. Undefined when it was there already (or appeared meanwhile).
   */
  private async mkdirFilled(path: string, file: { readonly name: string; readonly text: string }): Promise<string | undefined> {
    if (await lstat(path).then(() => true, (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? false : Promise.reject(e)))) return undefined;
    const parent = dirname(path);
    await mkdir(parent, { recursive: true, mode: 0o755 });
    // Leftovers of an earlier start that died half-way (hidden, so harmless): removed.
    const prefix = `.${basename(path)}.new-`;
    for (const name of await readdir(parent).catch(() => [] as string[])) if (name.startsWith(prefix)) await rm(join(parent, name), { recursive: true, force: true }).catch(() => undefined);
    const tmp = join(parent, `${prefix}${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp, { mode: 0o755 });
    try {
      await writeFileAtomic(join(tmp, file.name), file.text, { mode: this.mode, ...(this.gid !== undefined ? { gid: this.gid } : {}) });
      await rename(tmp, path);
      return path;
    } catch (e) {
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      // Made by someone else meanwhile (a duplicate node name): it was there.
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' || (e as NodeJS.ErrnoException).code === 'ENOTEMPTY') return undefined;
      throw e;
    }
  }

  /**
   * A claim: O_EXCL | O_NOFOLLOW create in DIR/claims (never through a symlinked folder), its
   * content written before it counts as won. Exactly one node's create of a name succeeds
   * (measured on GlusterFS replica 3: 300 of 300 races; `mkdir` of one name split-brained the
   * volume, so claims are files). A create that failed half-way removes what it made. Not synced:
   * a cycle waits for its claims before it publishes, and a claim a storage crash loses is
   * covered like any lost claim (a won claim skips the plan window only when every live peer
   * was read; conflicts resolve as ever).
   */
  private async createClaim(rel: string, text: string): Promise<StoreResult> {
    if (!isClaimPath(rel)) throw new Error(`not a claim: ${rel}`);
    const path = this.inside(rel);
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, this.mode);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'EEXIST' ? { op: 'create', error: null, exists: true } : { op: 'create', error: code ?? String(e) };
    }
    try {
      const want = await this.realOf(rel);
      const at = await realPathOf(fh);
      if (want !== null && at !== null && at !== want) throw new Error(`refused: ${CLAIMS_DIR} is reached through a symlink (${at})`);
      if (this.gid !== undefined) await fh.chown(process.getuid?.() ?? 0, this.gid);
      await fh.chmod(this.mode);
      await fh.writeFile(text);
      await fh.close();
      fh = undefined;
      return { op: 'create', error: null };
    } catch (e) {
      await fh?.close().catch(() => undefined);
      // Ours, but not written: remove it, or readers would wait `timeout` on an unreadable claim.
      await unlink(path).catch(() => undefined);
      return { op: 'create', error: String(e) };
    }
  }

  /** Claim file names in DIR/claims; [] when it does not exist yet; throws when it cannot be listed. */
  private listClaims(): Promise<string[]> {
    return this.listFiles(CLAIMS_DIR, (name) => parseClaimName(name) !== null);
  }

  /** Beat file names in DIR/beats; [] when it does not exist yet; throws when it cannot be listed. */
  private listBeats(): Promise<string[]> {
    return this.listFiles(BEATS_DIR, (name) => parseBeatName(name) !== null).catch((e: unknown) => {
      this.beatsChecked = false; // replaced (by a symlink?): checked again before the next beat
      throw e;
    });
  }

  private async listFiles(rel: string, wanted: (name: string) => boolean): Promise<string[]> {
    const dir = join(this.root, rel);
    const st = await lstat(dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    if (st === null) return [];
    if (!st.isDirectory()) throw new Error(`${dir} is not a folder (a symlink?): refused`);
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((d) => d.isFile() && wanted(d.name)).map((d) => d.name).sort();
  }

  /** DIR/beats was made or checked (a real folder inside DIR) since its listing last failed. */
  private beatsChecked = false;

  /**
   * Rename this node's beat to its next name: one atomic operation, so a listing shows the old
   * name or the new one, never neither. Created anew when there is none (first beat, removed).
   */
  private async beat(from: string | null, to: string): Promise<void> {
    for (const name of [from, to]) if (name !== null && !isOwnBeatPath(`${BEATS_DIR}/${name}`, this.me)) throw new Error(`not this node's beat: ${name}`);
    if (!this.beatsChecked) {
      await this.mkdirInside(BEATS_DIR);
      this.beatsChecked = true;
    }
    const target = this.inside(`${BEATS_DIR}/${to}`);
    if (from !== null && from !== to) {
      try {
        return await rename(this.inside(`${BEATS_DIR}/${from}`), target);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    try {
      await (await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, this.mode)).close();
    } catch (e) {
      this.beatsChecked = false;
      throw e;
    }
  }

  nodeDir(node: string): string {
    return join(this.root, 'nodes', node);
  }

  /** Node folders; none when DIR/nodes is missing or cannot be listed right now. */
  async listNodes(): Promise<string[]> {
    return this.listNodesOrFail().catch(() => []);
  }

  /** Node folders (real folders only, no symlinks); [] when DIR/nodes does not exist yet; throws when it cannot be listed. */
  private async listNodesOrFail(): Promise<string[]> {
    const top = await lstat(join(this.root, 'nodes')).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    if (top === null) return [];
    if (!top.isDirectory()) throw new Error(`${join(this.root, 'nodes')} is not a folder (a symlink?): refused`);
    // One readdir (no glob library: loading fast-glob cost every monitor 10 MB of RSS). Only
    // ENOENT (DIR/nodes removed meanwhile) is an empty listing: an I/O error must not look like
    // an empty cluster. Symlinks are not folders here (Dirent does not follow them).
    const entries = await readdir(join(this.root, 'nodes'), { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [];
      throw e;
    });
    return entries.filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name).filter(validNodeName).sort();
  }

  async readNodeFile(node: string, file: string, consistent = false): Promise<FileRead | null> {
    const r = await this.readInside(`nodes/${node}/${file}`, consistent);
    return isRefused(r) ? null : r;
  }

  async readRootFile(file: string, consistent = false): Promise<FileRead | null> {
    const r = await this.readInside(file, consistent);
    return isRefused(r) ? null : r;
  }

  async writeOwn(file: string, text: string, mtimeMs?: number): Promise<void> {
    await this.writeInside(`nodes/${this.me}/${file}`, text, mtimeMs);
  }

  async ensureOwnDir(): Promise<void> {
    await this.mkdirInside(`nodes/${this.me}`);
  }
}

/** The copy of `file` (DIR/file and every node folder's copy) the cluster follows (see chooseCopy). */
export async function newestValid(store: Store, file: string, valid: (text: string, source: string) => boolean): Promise<{ winner: Judged | null }> {
  const reads: Array<[string, FileRead | null]> = [[`DIR/${file}`, await store.readRootFile(file, true)]];
  for (const n of await store.listNodes()) reads.push([`nodes/${n}/${file}`, await store.readNodeFile(n, file, true)]);
  const judged: Judged[] = [];
  for (const [source, r] of reads) {
    if (!r) continue;
    judged.push({ source, text: r.text, mtimeMs: r.mtimeMs, hash: contentHash(r.text), errors: valid(r.text, source) ? [] : ['invalid'] });
  }
  return { winner: chooseCopy(judged, `DIR/${file}`) };
}
