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

import type { FileRead, FileSignature, SharedStore, StoreOp, StoreResult } from '../cluster/store.js';
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
  json?: unknown;
  readonly mtimeMs: number;
  readonly ino: number;
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

const NO_FAULTS: ReadFaults = { torn: 0, missing: 0, reorder: 0 };

/** Where a stuck view keeps the peer's beat name it froze. */
const FROZEN_BEAT = 'beats/';

export class SimStore {
  private readonly files = new Map<string, Version[]>();
  private readonly dirs = new Map<string, number>();
  /** reader → file → the newest version index it has read (reads are monotonic per reader). */
  private readonly seen = new Map<string, Map<string, number>>();
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

  /** Heal a partition: hung operations complete (after their latency), in order. */
  heal(node: string): void {
    const s = this.state(node);
    s.partition = null;
    const hung = s.hung.splice(0);
    for (const fn of hung) fn();
  }

  private opLatency(node: string): number {
    const s = this.state(node);
    let ms = this.rng.uniform(this.latency[0], this.latency[1]);
    if (s.slow) ms += this.rng.uniform(s.slow[0], s.slow[1]);
    return ms;
  }

  /** One operation of `node`: `body(ok)` runs when it completes (ok=false: it failed). */
  op(node: string, body: (ok: boolean) => void): void {
    const run = (): void => {
      this.sched.after(this.opLatency(node), () => {
        const s = this.state(node);
        if (s.partition === 'hang') {
          s.hung.push(() => body(true));
          return;
        }
        body(s.partition !== 'fail');
      });
    };
    const s = this.state(node);
    if (s.partition === 'hang') s.hung.push(run);
    else run();
  }

  /** The store as `node`'s monitor sees it: one batch, one operation's latency, all results at once. */
  forNode(node: string): SharedStore {
    return {
      perform: (ops, done) =>
        this.op(node, (ok) => {
          if (ok && this.rng.chance(this.state(node).ioError)) {
            this.failedBatches++;
            return done(null, 'EIO (simulated)');
          }
          done(ops.map((op) => this.apply(node, op, ok)));
        }),
    };
  }

  private apply(node: string, op: StoreOp, ok: boolean): StoreResult {
    switch (op.op) {
      case 'list':
        return { op: 'list', names: ok ? (op.dir === 'claims' ? this.listClaims() : op.dir === 'beats' ? this.listBeats(node) : this.listNodes()) : null };
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
        if (ok && this.links.has(op.path)) return { op: 'read', read: null, error: 'a symlink: refused' };
        const read = ok ? this.read(node, op.path) : null;
        return read ? { op: 'read', read } : { op: 'read', read: null, error: ok ? 'ENOENT' : 'EIO (partition)' };
      }
      case 'stat':
        return { op: 'stat', sig: ok && !this.links.has(op.path) ? this.stat(node, op.path) : null };
      case 'heartbeat': {
        // As FsStore: the clstat (in place on a full filesystem), then the beat renamed at once.
        const written = this.apply(node, { op: 'write', path: op.path, text: op.text }, ok);
        if (written.op !== 'write' || written.error !== null) return { op: 'heartbeat', error: written.op === 'write' ? written.error : 'write failed' };
        const from = op.from === null || this.latest(`beats/${op.from}`)?.text == null ? null : `beats/${op.from}`;
        if (from === null && this.full) return { op: 'heartbeat', error: 'ENOSPC (simulated)' };
        if (from !== null && from !== `beats/${op.to}`) this.put(from, null);
        this.put(`beats/${op.to}`, '');
        return written.degraded ? { op: 'heartbeat', error: null, degraded: written.degraded } : { op: 'heartbeat', error: null };
      }
      case 'write':
      case 'writeJson': {
        if (!ok) return { op: op.op, error: 'EIO (partition)' };
        // As FsStore: on a full filesystem only an existing heartbeat or hastat is rewritten in place.
        const inPlace = this.full && /^nodes\/[^/]+\/(clstat|hastat)$/.test(op.path) && this.latest(op.path)?.text != null;
        if (this.full && !inPlace) return { op: op.op, error: 'ENOSPC (simulated)' };
        if (op.op === 'write') this.put(op.path, op.text, op.mtimeMs);
        else this.put(op.path, '', undefined, op.value);
        return inPlace ? { op: op.op, error: null, degraded: `ENOSPC: the shared filesystem is full; ${op.path} rewritten in place` } : { op: op.op, error: null };
      }
      case 'mkdir':
        if (ok && this.full && !this.dirs.has(op.path)) return { op: 'mkdir', error: 'ENOSPC (simulated)' };
        if (ok) this.mkdir(op.path);
        return { op: 'mkdir', error: ok ? null : 'EIO (partition)' };
    }
  }

  // ------------------------------------------------------------------ contents

  mkdir(path: string): void {
    if (!this.dirs.has(path)) this.dirs.set(path, this.sched.now);
  }

  /** A completed write (or removal, text null): visible from now on, subject to each reader's lag. */
  put(path: string, text: string | null, mtimeMs?: number, json?: unknown): void {
    this.writes++;
    let vs = this.files.get(path);
    if (!vs) {
      vs = [];
      this.files.set(path, vs);
    }
    const idx = this.nextIdx++;
    vs.push({ idx, at: this.sched.now, text, mtimeMs: mtimeMs ?? Math.round(EPOCH_MS + this.sched.now), ino: idx, ...(json !== undefined ? { json } : {}) });
    // Keep what a read may still return: everything inside the lag window plus the newest before it.
    const horizon = this.sched.now - this.lagMs - 1;
    let drop = 0;
    while (drop + 1 < vs.length && vs[drop + 1]!.at <= horizon) drop++;
    if (drop > 0) vs.splice(0, drop);
  }

  /** The newest version as of now, ignoring lag (what the writer knows it wrote). */
  latest(path: string): Version | null {
    const vs = this.files.get(path);
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
    for (const [path, vs] of this.files) {
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
  listBeats(reader: string): string[] {
    const views = this.nodes.get(reader)?.views;
    const names = this.listFolder('beats/', this.sched.now - this.rng.uniform(0, this.lagMs));
    if (!views?.size) return names.sort();
    const out = names.filter((n) => !views.has(n.slice(0, n.indexOf('@'))));
    for (const view of views.values()) if (view !== 'lost' && view.has(FROZEN_BEAT)) out.push(view.get(FROZEN_BEAT)!.text!);
    return out.sort();
  }

  listNodes(): string[] {
    const t = this.sched.now - this.rng.uniform(0, this.lagMs);
    const out: string[] = [];
    for (const [d, at] of this.dirs) if (at <= t && d.startsWith('nodes/')) out.push(d.slice('nodes/'.length));
    return out.sort();
  }

  /** Start or end a one-sided view fault: `reader` loses `peer`'s folder, or sees it frozen as now. */
  setView(reader: string, peer: string, mode: 'lost' | 'stuck' | null): void {
    const views = this.state(reader).views;
    if (mode === null) views.delete(peer);
    else if (mode === 'lost') views.set(peer, 'lost');
    else {
      const frozen = new Map<string, Version>();
      for (const [p, idx] of this.seen.get(reader) ?? []) {
        const v = p.startsWith(`nodes/${peer}/`) ? this.files.get(p)?.find((x) => x.idx === idx) : undefined;
        if (v) frozen.set(p, v);
      }
      // Its heartbeat stands still too, at the last seq this reader saw (never ahead of the clstat).
      const beat = this.listFolder('beats/', this.sched.now - this.lagMs).filter((n) => n.startsWith(`${peer}@`)).sort((a, b) => Number(a.split('@')[1]) - Number(b.split('@')[1])).pop();
      if (beat !== undefined) frozen.set(FROZEN_BEAT, { idx: 0, at: this.sched.now, text: beat, mtimeMs: 0, ino: 0 });
      views.set(peer, frozen);
    }
  }

  private stat(reader: string, path: string): FileSignature | null {
    const v = this.visible(reader, path, NO_FAULTS);
    return v?.text == null ? null : { mtimeMs: v.mtimeMs, size: v.json !== undefined ? -1 : v.text.length, ino: v.ino };
  }

  /** One read by `reader`; clstat reads are subject to the torn/missing/reordered read faults. */
  read(reader: string, path: string): FileRead | null {
    this.reads++;
    this.onRead?.(reader, path);
    const f = path.endsWith('/clstat') ? this.faults : NO_FAULTS;
    if (f.missing > 0 && this.rng.chance(f.missing)) return null;
    const v = this.visible(reader, path, f);
    if (!v || v.text === null) return null;
    if (v.json !== undefined) {
      v.text = JSON.stringify(v.json, null, 1) + '\n';
      delete v.json;
    }
    if (f.torn > 0 && v.text.length > 1 && this.rng.chance(f.torn)) return { text: v.text.slice(0, this.tearAt(v.text)), mtimeMs: v.mtimeMs };
    return { text: v.text, mtimeMs: v.mtimeMs };
  }

  /** Where a torn read ends: anywhere, or (as often) right after a line, where it looks whole. */
  private tearAt(text: string): number {
    const ends: number[] = [];
    for (let i = text.indexOf('\n'); i >= 0 && i < text.length - 1; i = text.indexOf('\n', i + 1)) ends.push(i + 1);
    return ends.length && this.rng.chance(0.5) ? this.rng.pick(ends) : this.rng.int(1, text.length - 1);
  }

  private visible(reader: string, path: string, f: ReadFaults): Version | undefined {
    const vs = this.files.get(path);
    if (!vs || vs.length === 0) return undefined;
    const view = path.startsWith('nodes/') ? this.nodes.get(reader)?.views.get(path.split('/')[1]!) : undefined;
    if (view === 'lost') return undefined;
    const frozen = view?.get(path);
    if (frozen !== undefined) return frozen;
    const now = this.sched.now;
    let seen = this.seen.get(reader);
    if (!seen) {
      seen = new Map();
      this.seen.set(reader, seen);
    }
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
    const last = seen.get(path);
    if (last !== undefined && (!v || v.idx < last)) v = vs.find((x) => x.idx === last) ?? v;
    if (v) seen.set(path, v.idx);
    return v;
  }
}
