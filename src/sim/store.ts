// The simulated shared directory. Every file keeps its recent versions, each stamped with the
// (global, virtual) time its write completed. A reader sees, per read, the newest version that was
// visible `d` ms ago with `d` drawn up to the store's visibility lag (an attribute cache), never
// older than what it saw before (monotonic per reader and file) unless a "reordered reads" fault is
// on. Faults per read: missing (ENOENT while a rename lands), torn (a prefix of the text), reordered
// (any version visible within the lag window, older ones included).
//
// Per node: a partition makes its operations fail (reads return nothing, writes throw) or hang
// (complete only after the partition heals: a write queued before it lands late); a slow store adds
// latency to every operation of that node.

import type { Rng } from './rng.js';
import type { Scheduler } from './scheduler.js';

export interface Version {
  readonly idx: number;
  /** Global time its write completed (visible from then on, to a reader with no lag). */
  readonly at: number;
  readonly text: string;
  /** Parse cache shared by every reader of this version. */
  cache?: unknown;
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
  /** Hung operations, completed when the partition heals. */
  hung: Array<() => void>;
}

const NO_FAULTS: ReadFaults = { torn: 0, missing: 0, reorder: 0 };

export type ReadResult = { readonly text: string; readonly version: Version | null } | null;

export class SimStore {
  private readonly files = new Map<string, Version[]>();
  private readonly dirs = new Map<string, number>();
  /** reader → file → the newest version index it has read (reads are monotonic per reader). */
  private readonly seen = new Map<string, Map<string, number>>();
  private nextIdx = 1;
  readonly nodes = new Map<string, NodeStoreState>();
  readonly faults: ReadFaults = { torn: 0, missing: 0, reorder: 0 };
  writes = 0;
  reads = 0;

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
      s = { partition: null, slow: null, hung: [] };
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

  /**
   * One operation of `node`: `body(ok)` runs when it completes (ok=false: it failed). `alive()` is
   * asked at completion: a node that crashed meanwhile gets no callback (a write that reached the
   * server still lands, see write()).
   */
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

  // ------------------------------------------------------------------ contents

  mkdir(node: string): void {
    if (!this.dirs.has(node)) this.dirs.set(node, this.sched.now);
  }

  /** A completed write: the new version is visible from now on (subject to each reader's lag). */
  put(key: string, text: string): void {
    this.writes++;
    let vs = this.files.get(key);
    if (!vs) {
      vs = [];
      this.files.set(key, vs);
    }
    vs.push({ idx: this.nextIdx++, at: this.sched.now, text });
    // Keep what a read may still return: everything inside the lag window plus the newest before it.
    const horizon = this.sched.now - this.lagMs - 1;
    let drop = 0;
    while (drop + 1 < vs.length && vs[drop + 1]!.at <= horizon) drop++;
    if (drop > 0) vs.splice(0, drop);
  }

  /** The newest version as of now, ignoring lag (what the writer knows it wrote). */
  latest(key: string): Version | null {
    const vs = this.files.get(key);
    return vs?.[vs.length - 1] ?? null;
  }

  listNodes(): string[] {
    const t = this.sched.now - this.rng.uniform(0, this.lagMs);
    const out: string[] = [];
    for (const [n, at] of this.dirs) if (at <= t) out.push(n);
    return out.sort();
  }

  /** One read by `reader`; `faulty` = subject to the torn/missing/reordered read faults (clstat files). */
  read(reader: string, key: string, faulty: boolean): ReadResult {
    this.reads++;
    const vs = this.files.get(key);
    if (!vs || vs.length === 0) return null;
    const now = this.sched.now;
    const f = faulty ? this.faults : NO_FAULTS;
    if (f.missing > 0 && this.rng.chance(f.missing)) return null;
    let v: Version | undefined;
    let seen = this.seen.get(reader);
    if (!seen) {
      seen = new Map();
      this.seen.set(reader, seen);
    }
    if (f.reorder > 0 && this.rng.chance(f.reorder)) {
      // Any version that was the newest at some moment of the lag window.
      const horizon = now - this.lagMs;
      const cands = vs.filter((x, i) => x.at <= now && (x.at > horizon || vs[i + 1] === undefined || vs[i + 1]!.at > horizon));
      v = cands.length ? this.rng.pick(cands) : undefined;
    } else {
      const t = now - this.rng.uniform(0, this.lagMs);
      for (let i = vs.length - 1; i >= 0; i--) {
        if (vs[i]!.at <= t) {
          v = vs[i];
          break;
        }
      }
      const last = seen.get(key);
      if (last !== undefined && (!v || v.idx < last)) {
        for (let i = vs.length - 1; i >= 0; i--) {
          if (vs[i]!.idx === last) {
            v = vs[i];
            break;
          }
        }
      }
      if (v) seen.set(key, v.idx);
    }
    if (!v) return null;
    if (f.torn > 0 && v.text.length > 1 && this.rng.chance(f.torn)) {
      return { text: v.text.slice(0, this.rng.int(1, v.text.length - 1)), version: null };
    }
    return { text: v.text, version: v };
  }
}
