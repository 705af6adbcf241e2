// The simulated shared directory, laid out as the real one (paths relative to DIR: `hactl`,
// `nodes/n1/clstat`, `fence-confirm/n2`, …) and driven through the same SharedStore interface as
// FsStore. Every file keeps its recent versions, each stamped with the (global, virtual) time its
// write completed, an mtime and an inode number. A reader sees, per read, the newest version that
// was visible `d` ms ago with `d` drawn up to the store's visibility lag (an attribute cache),
// never older than what it saw before (monotonic per reader and file) unless a "reordered reads"
// fault is on. Faults on clstat reads: missing (ENOENT while a rename lands), torn (a prefix of
// the text), reordered (any version visible within the lag window, older ones included).
//
// Per node: a partition makes its operations fail (listings empty, reads nothing, writes fail) or
// hang (complete only after the partition heals: a write queued before it lands late); a slow
// store adds latency to every operation; an I/O-error fault fails whole batches (as a thrown EIO).
//
// Speed (every node reads every peer's clstat and stats every replica each cycle: O(N²) operations
// per cycle): one map lookup per operation finds the file's entry, which carries what is derived
// from its path (a clstat? whose folder?) and what each reader last saw of it (an array indexed by
// reader); a version carries its read and stat answers, built once and shared by every reader
// (results are read-only to the monitor). The random draws are exactly those of the plain version.

import { sameFile, type FileRead, type SharedStore, type StoreOp, type StoreResult } from '../cluster/store.js';
import { stampedBeat } from '../cluster/beats.js';
import type { Rng } from './rng.js';
import type { Scheduler } from './scheduler.js';

/** mtimes are wall-clock-like: the virtual time plus an epoch (the store's own clock). */
const EPOCH_MS = 1.7e12;

export interface Version {
  readonly idx: number;
  /** Global time its write completed (visible from then on, to a reader with no lag). */
  readonly at: number;
  /** null: the file was removed. A JSON document is serialized when first read. */
  text: string | null;
  json: unknown;
  readonly mtimeMs: number;
  readonly ino: number;
  /** Its answers, built when first asked (a JSON document's stat changes once it is serialized). */
  readResult: StoreResult | null;
  statResult: StoreResult | null;
}

export interface ReadFaults {
  torn: number;
  missing: number;
  reorder: number;
}

export interface NodeStoreState {
  partition: 'fail' | 'hang' | null;
  /** Extra latency per operation: [lo, hi] ms, or null. */
  slow: readonly [number, number] | null;
  /** Probability that a batch fails as a whole (an unexpected EIO). */
  ioError: number;
  /** Hung operations, completed when the partition heals. */
  hung: Array<() => void>;
  /** Peers whose folder this node cannot read (lost) or sees frozen (stuck: path → version index). */
  views: Map<string, 'lost' | Map<string, Version>>;
}

/** One file: its recent versions (oldest first) and what is derived from its path. */
interface FileEntry {
  readonly vs: Version[];
  /** A peer heartbeat: subject to the read faults. */
  readonly clstat: boolean;
  /** `nodes/<peer>/…`: the folder a one-sided view fault hides or freezes. */
  readonly peer: string | undefined;
  /** Reader index → the newest version it has read (reads are monotonic per reader). */
  readonly seen: Array<Version | undefined>;
}

/** A reader (a node's monitor): its index into FileEntry.seen, its state, its SharedStore. */
interface Reader {
  readonly name: string;
  readonly idx: number;
  readonly st: NodeStoreState;
  store: SharedStore | null;
}

/** The process that issues a node's batches, as far as the store must know it. */
export interface StoreClient {
  /** Its monotonic clock (a heartbeat's notAfter is on it). */
  now(): number;
  /**
   * Run `fn` (the rest of a batch: its writes land, its answers return) now, or once the process
   * thaws: a frozen process's I/O threads stop between syscalls too.
   */
  whenRunning(fn: () => void): void;
}

const NO_FAULTS: ReadFaults = { torn: 0, missing: 0, reorder: 0 };
const STAT_NONE: StoreResult = { op: 'stat', sig: null };
const READ_ENOENT: StoreResult = { op: 'read', read: null, error: 'ENOENT' };
const READ_EIO: StoreResult = { op: 'read', read: null, error: 'EIO (partition)' };
const READ_SYMLINK: StoreResult = { op: 'read', read: null, error: 'a symlink: refused' };
const STALE_HEARTBEAT: StoreResult = { op: 'heartbeat', error: 'its content went stale before it could land: not written (simulated)' };

/** Where a stuck view keeps the peer's beat name it froze. */
const FROZEN_BEAT = 'beats/';

export class SimStore {
  private readonly files = new Map<string, FileEntry>();
  private readonly dirs = new Map<string, number>();
  /** The node folders (`nodes/X`), sorted by name as a listing returns them, and the newest one's creation time. */
  private readonly nodeDirs: Array<{ readonly name: string; readonly at: number }> = [];
  private nodeDirsLastAt = Number.NEGATIVE_INFINITY;
  private readonly readers = new Map<string, Reader>();
  private nextIdx = 1;
  readonly nodes = new Map<string, NodeStoreState>();
  readonly faults: ReadFaults = { torn: 0, missing: 0, reorder: 0 };
  /** The filesystem is full: only existing clstat/hastat files can be rewritten (in place). */
  full = false;
  /** Paths that are symlinks now: refused by every read and stat. */
  readonly links = new Set<string>();
  /** Told of every read (the simulated operator watches for awaited confirmations). */
  onRead: ((reader: string, path: string) => void) | null = null;
  writes = 0;
  reads = 0;
  /** Probability that a claim, once created, is later lost by the store. */
  claimLoss = 0;
  /** false: a negative control, a store whose exclusive create never refuses. */
  exclusiveClaims = true;
  claimsCreated = 0;
  claimsLost = 0;
  failedBatches = 0;
  /** Heartbeats a freeze held back past their notAfter: abandoned, as FsStore abandons them. */
  staleHeartbeats = 0;

  constructor(
    private readonly sched: Scheduler,
    private readonly rng: Rng,
    /** The real propagation delay of this store (≤ the monitors' visibility_lag). */
    readonly lagMs: number,
    /** Base latency of one operation: [lo, hi] ms. */
    private readonly latency: readonly [number, number],
  ) {}

  state(node: string): NodeStoreState {
    let s = this.nodes.get(node);
    if (!s) {
      s = { partition: null, slow: null, ioError: 0, hung: [], views: new Map() };
      this.nodes.set(node, s);
    }
    return s;
  }

  private reader(node: string): Reader {
    let r = this.readers.get(node);
    if (!r) {
      r = { name: node, idx: this.readers.size, st: this.state(node), store: null };
      this.readers.set(node, r);
    }
    return r;
  }

  /** Heal a partition: hung operations complete (after their latency), in order. */
  heal(node: string): void {
    const s = this.state(node);
    s.partition = null;
    const hung = s.hung.splice(0);
    for (const fn of hung) fn();
  }

  private opLatency(s: NodeStoreState): number {
    let ms = this.rng.uniform(this.latency[0], this.latency[1]);
    if (s.slow) ms += this.rng.uniform(s.slow[0], s.slow[1]);
    return ms;
  }

  /** One operation of `node`: `body(ok)` runs when it completes (ok=false: it failed). */
  op(node: string, body: (ok: boolean) => void): void {
    this.opOf(this.reader(node).st, body);
  }

  /** `stuck`: it hung half-way (maybe inside its last syscall, past any check before it). */
  private opOf(s: NodeStoreState, body: (ok: boolean, stuck: boolean) => void): void {
    const run = (): void => {
      this.sched.after(this.opLatency(s), () => {
        if (s.partition === 'hang') {
          s.hung.push(() => body(true, true));
          return;
        }
        body(s.partition !== 'fail', false);
      });
    };
    if (s.partition === 'hang') s.hung.push(run);
    else run();
  }

  /** The store as `node`'s monitor sees it: one batch, one operation's latency, all results at once. */
  forNode(node: string, client: StoreClient): SharedStore {
    const r = this.reader(node);
    if (r.store) return r.store;
    const store: SharedStore = {
      perform: (ops, done) => {
        // A heartbeat's stamp, as early as FsStore's could be (a batch applies at once, later).
        const issuedAt = client.now();
        this.opOf(r.st, (ok, stuck) =>
          client.whenRunning(() => {
            if (ok && this.rng.chance(r.st.ioError)) {
              this.failedBatches++;
              return done(null, 'EIO (simulated)');
            }
            const results = new Array<StoreResult>(ops.length);
            for (let i = 0; i < ops.length; i++) {
              const op = ops[i]!;
              // As FsStore: checked right before the rename, which a batch stuck half-way may be past.
              const late = op.op === 'heartbeat' && op.notAfter !== undefined && !stuck && client.now() > op.notAfter;
              if (late) this.staleHeartbeats++;
              results[i] = late ? STALE_HEARTBEAT : this.apply(r, op, ok, issuedAt);
            }
            done(results);
          }),
        );
      },
    };
    r.store = store;
    return store;
  }

  private apply(r: Reader, op: StoreOp, ok: boolean, issuedAt: number): StoreResult {
    switch (op.op) {
      case 'list':
        return { op: 'list', names: ok ? (op.dir === 'claims' ? this.listClaims() : op.dir === 'beats' ? this.listBeats(r) : this.listNodes()) : null };
      case 'create': {
        // The store arbitrates at once, whatever each reader's lag: one create of a name wins.
        if (!ok) return { op: 'create', error: 'EIO (partition)' };
        if (this.exclusiveClaims && this.latest(op.path)?.text != null) return { op: 'create', error: null, exists: true };
        if (this.full) return { op: 'create', error: 'ENOSPC (simulated)' };
        this.put(op.path, op.text);
        this.claimsCreated++;
        if (this.claimLoss > 0 && this.rng.chance(this.claimLoss)) {
          // A store that loses a claim (a heal gone wrong): it vanishes a while after it was made.
          this.sched.after(this.rng.uniform(0, 4 * this.lagMs + 200), () => {
            if (this.latest(op.path)?.text != null) {
              this.put(op.path, null);
              this.claimsLost++;
            }
          });
        }
        return { op: 'create', error: null };
      }
      case 'unlink':
        if (!ok) return { op: 'unlink', error: 'EIO (partition)' };
        if (this.latest(op.path)?.text != null) this.put(op.path, null);
        return { op: 'unlink', error: null };
      case 'read': {
        if (!ok) return READ_EIO;
        if (this.links.has(op.path)) return READ_SYMLINK;
        return this.readOf(r, op.path) ?? READ_ENOENT;
      }
      case 'stat': {
        if (!ok || this.links.has(op.path)) return STAT_NONE;
        const v = this.visible(r, op.path, NO_FAULTS);
        if (!v || v.text === null) return STAT_NONE;
        return (v.statResult ??= { op: 'stat', sig: { mtimeMs: v.mtimeMs, size: v.json !== undefined ? -1 : v.text.length, ino: v.ino } });
      }
      case 'heartbeat': {
        // As FsStore: the clstat (in place on a full filesystem), then the beat renamed at once.
        const written = this.apply(r, { op: 'write', path: op.path, text: op.text }, ok, issuedAt);
        if (written.op !== 'write' || written.error !== null) return { op: 'heartbeat', error: written.op === 'write' ? written.error : 'write failed' };
        const from = op.from === null || this.latest(`beats/${op.from}`)?.text == null ? null : `beats/${op.from}`;
        if (from === null && this.full) return { op: 'heartbeat', error: 'ENOSPC (simulated)' };
        const beat = stampedBeat(op.to, issuedAt);
        if (from !== null && from !== `beats/${beat}`) this.put(from, null);
        this.put(`beats/${beat}`, '');
        return { op: 'heartbeat', error: null, beat, at: issuedAt, ...(written.degraded ? { degraded: written.degraded } : {}) };
      }
      case 'write':
      case 'writeJson': {
        if (!ok) return { op: op.op, error: 'EIO (partition)' };
        // As FsStore: on a full filesystem only an existing heartbeat or hastat is rewritten in place.
        const inPlace = this.full && /^nodes\/[^/]+\/(clstat|hastat)$/.test(op.path) && this.latest(op.path)?.text != null;
        if (this.full && !inPlace) return { op: op.op, error: 'ENOSPC (simulated)' };
        if (op.op === 'write' && op.ifUnchanged !== undefined) {
          const now = this.apply(r, { op: 'stat', path: op.path }, true, issuedAt);
          if (now.op === 'stat' && !sameFile(now.sig, op.ifUnchanged)) return { op: 'write', error: `${op.path} changed since it was judged: not written (simulated)` };
        }
        if (op.op === 'write') this.put(op.path, op.text, op.mtimeMs);
        else this.put(op.path, '', undefined, op.value);
        return inPlace ? { op: op.op, error: null, degraded: `ENOSPC: the shared filesystem is full; ${op.path} rewritten in place` } : { op: op.op, error: null };
      }
      case 'mkdir': {
        const existed = this.dirs.has(op.path);
        if (ok && this.full && !existed) return { op: 'mkdir', error: 'ENOSPC (simulated)' };
        if (!ok) return { op: 'mkdir', error: 'EIO (partition)' };
        // As FsStore: a folder made with a file in it appears with the file, at one instant.
        if (!existed && op.withFile) this.put(`${op.path}/${op.withFile.name}`, op.withFile.text);
        this.mkdir(op.path);
        return { op: 'mkdir', error: null, existed };
      }
    }
  }

  // ------------------------------------------------------------------ contents

  mkdir(path: string): void {
    if (this.dirs.has(path)) return;
    const at = this.sched.now;
    this.dirs.set(path, at);
    if (!path.startsWith('nodes/')) return;
    // Kept sorted by name (what a listing returns), each with the time it was created.
    const name = path.slice('nodes/'.length);
    let i = this.nodeDirs.length;
    while (i > 0 && this.nodeDirs[i - 1]!.name > name) i--;
    this.nodeDirs.splice(i, 0, { name, at });
    this.nodeDirsLastAt = Math.max(this.nodeDirsLastAt, at);
  }

  /** A completed write (or removal, text null): visible from now on, subject to each reader's lag. */
  put(path: string, text: string | null, mtimeMs?: number, json?: unknown): void {
    this.writes++;
    let e = this.files.get(path);
    if (!e) {
      const slash = path.indexOf('/', 6);
      const peer = path.startsWith('nodes/') ? path.slice(6, slash < 0 ? undefined : slash) : undefined;
      e = { vs: [], clstat: path.endsWith('/clstat'), peer, seen: [] };
      this.files.set(path, e);
    }
    const vs = e.vs;
    const idx = this.nextIdx++;
    vs.push({ idx, at: this.sched.now, text, json, mtimeMs: mtimeMs ?? Math.round(EPOCH_MS + this.sched.now), ino: idx, readResult: null, statResult: null });
    // Keep what a read may still return: everything inside the lag window plus the newest before it.
    const horizon = this.sched.now - this.lagMs - 1;
    let drop = 0;
    while (drop + 1 < vs.length && vs[drop + 1]!.at <= horizon) drop++;
    if (drop > 0) vs.splice(0, drop);
  }

  /** The newest version as of now, ignoring lag (what the writer knows it wrote). */
  latest(path: string): Version | null {
    const vs = this.files.get(path)?.vs;
    return vs?.[vs.length - 1] ?? null;
  }

  /** Claim files as a listing `lag` ms old shows them. */
  listClaims(): string[] {
    return this.listFolder('claims/', this.sched.now - this.rng.uniform(0, this.lagMs)).sort();
  }

  /** Names in a folder as of time `t`. */
  private listFolder(prefix: string, t: number): string[] {
    const out: string[] = [];
    const horizon = this.sched.now - this.lagMs - 1;
    for (const [path, { vs }] of this.files) {
      if (!path.startsWith(prefix)) continue;
      // A beat renamed away long enough ago that no listing can show it: forgotten (every
      // heartbeat is a new name; kept, they would make every listing slower).
      const last = vs[vs.length - 1]!;
      if (prefix === 'beats/' && last.text === null && last.at <= horizon) {
        this.files.delete(path);
        continue;
      }
      let v: Version | undefined;
      for (let i = vs.length - 1; i >= 0; i--) {
        if (vs[i]!.at <= t) {
          v = vs[i];
          break;
        }
      }
      if (v && v.text !== null) out.push(path.slice(prefix.length));
    }
    return out;
  }

  /**
   * Beat files as a listing `lag` ms old shows them to `reader`, with its one-sided view faults:
   * a lost peer's beats are missing, a stuck peer's beat stands still where the fault froze it.
   */
  listBeats(r: Reader): string[] {
    const views = r.st.views;
    const names = this.listFolder('beats/', this.sched.now - this.rng.uniform(0, this.lagMs));
    if (!views?.size) return names.sort();
    const out = names.filter((n) => !views.has(n.slice(0, n.indexOf('@'))));
    for (const view of views.values()) if (view !== 'lost' && view.has(FROZEN_BEAT)) out.push(view.get(FROZEN_BEAT)!.text!);
    return out.sort();
  }

  listNodes(): string[] {
    const t = this.sched.now - this.rng.uniform(0, this.lagMs);
    const out: string[] = [];
    if (this.nodeDirsLastAt <= t) {
      for (const d of this.nodeDirs) out.push(d.name);
    } else {
      for (const d of this.nodeDirs) if (d.at <= t) out.push(d.name);
    }
    return out;
  }

  /** Start or end a one-sided view fault: `reader` loses `peer`'s folder, or sees it frozen as now. */
  setView(reader: string, peer: string, mode: 'lost' | 'stuck' | null): void {
    const r = this.reader(reader);
    const views = r.st.views;
    if (mode === null) views.delete(peer);
    else if (mode === 'lost') views.set(peer, 'lost');
    else {
      // What it last read of every file in that folder (a version no longer kept is not frozen).
      const frozen = new Map<string, Version>();
      for (const [p, e] of this.files) {
        const v = e.peer === peer ? e.seen[r.idx] : undefined;
        if (v && v.idx >= e.vs[0]!.idx) frozen.set(p, v);
      }
      // Its heartbeat stands still too, at the last seq this reader saw (never ahead of the clstat).
      const beat = this.listFolder('beats/', this.sched.now - this.lagMs).filter((n) => n.startsWith(`${peer}@`)).sort((a, b) => Number(a.split('@')[1]) - Number(b.split('@')[1])).pop();
      if (beat !== undefined) frozen.set(FROZEN_BEAT, { idx: 0, at: this.sched.now, text: beat, json: undefined, mtimeMs: 0, ino: 0, readResult: null, statResult: null });
      views.set(peer, frozen);
    }
  }

  /** One read by `reader` (not through a batch: no fault of its node applies). */
  read(reader: string, path: string): FileRead | null {
    const res = this.readOf(this.reader(reader), path);
    return res?.op === 'read' ? res.read : null;
  }

  /** One read; clstat reads are subject to the torn/missing/reordered read faults. */
  private readOf(r: Reader, path: string): StoreResult | null {
    this.reads++;
    this.onRead?.(r.name, path);
    const faults = this.faults;
    let f = NO_FAULTS;
    if (faults.missing > 0 || faults.torn > 0 || faults.reorder > 0) {
      const e = this.files.get(path);
      if (e ? e.clstat : path.endsWith('/clstat')) f = faults;
    }
    if (f.missing > 0 && this.rng.chance(f.missing)) return null;
    const v = this.visible(r, path, f);
    if (!v || v.text === null) return null;
    if (v.json !== undefined) {
      v.text = JSON.stringify(v.json, null, 1) + '\n';
      v.json = undefined;
      v.statResult = null;
    }
    const text = v.text;
    if (f.torn > 0 && text.length > 1 && this.rng.chance(f.torn)) return { op: 'read', read: { text: text.slice(0, this.tearAt(text)), mtimeMs: v.mtimeMs } };
    return (v.readResult ??= { op: 'read', read: { text, mtimeMs: v.mtimeMs } });
  }

  /** Where a torn read ends: anywhere, or (as often) right after a line, where it looks whole. */
  private tearAt(text: string): number {
    const ends: number[] = [];
    for (let i = text.indexOf('\n'); i >= 0 && i < text.length - 1; i = text.indexOf('\n', i + 1)) ends.push(i + 1);
    return ends.length && this.rng.chance(0.5) ? this.rng.pick(ends) : this.rng.int(1, text.length - 1);
  }

  private visible(r: Reader, path: string, f: ReadFaults): Version | undefined {
    const e = this.files.get(path);
    if (!e) return undefined;
    const vs = e.vs;
    if (vs.length === 0) return undefined;
    const views = r.st.views;
    if (views.size > 0 && e.peer !== undefined) {
      const view = views.get(e.peer);
      if (view === 'lost') return undefined;
      const frozen = view?.get(path);
      if (frozen !== undefined) return frozen;
    }
    const now = this.sched.now;
    if (f.reorder > 0 && this.rng.chance(f.reorder)) {
      // Any version that was the newest at some moment of the lag window.
      const horizon = now - this.lagMs;
      const cands = vs.filter((x, i) => x.at <= now && (x.at > horizon || vs[i + 1] === undefined || vs[i + 1]!.at > horizon));
      return cands.length ? this.rng.pick(cands) : undefined;
    }
    const t = now - this.rng.uniform(0, this.lagMs);
    let v: Version | undefined;
    for (let i = vs.length - 1; i >= 0; i--) {
      if (vs[i]!.at <= t) {
        v = vs[i];
        break;
      }
    }
    // Never older than what this reader saw before (if that version is still kept).
    const last = e.seen[r.idx];
    if (last !== undefined && (!v || v.idx < last.idx) && last.idx >= vs[0]!.idx) v = last;
    if (v) e.seen[r.idx] = v;
    return v;
  }
}
