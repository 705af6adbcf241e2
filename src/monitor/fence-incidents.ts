// The monitor's fencing duty: for each stale peer it is responsible for (fenceTargets), run the
// configured methods once per incident, after the anti-race delays, retrying with capped
// backoff. Only a success (or an operator's confirmation) marks the peer fenced.

import type { FenceConfig } from './config.js';
import { fenceNode, type FenceRecord } from '../fence/fencer.js';
import { fenceTargets, type FenceIncident, type FencePeer } from './fencing.js';

export interface FenceDeps {
  readonly me: string;
  readonly cycleMs: () => number;
  readonly config: () => FenceConfig;
  readonly wallNow: () => Date;
  readonly random: () => number;
  /** The operator's confirmation time for `node` (wall ms), or null. */
  readonly confirmedAt: (node: string) => Promise<number | null>;
  readonly record: (rec: FenceRecord) => void;
  readonly log: { warn(o: object, m: string): void; error(o: object, m: string): void; info(o: object, m: string): void };
}

/** Backoff before retrying a failed fence: cycle × 2^(attempts-1), capped. */
export function retryDelayMs(attempts: number, cycleMs: number, capMs: number): number {
  return Math.min(capMs, cycleMs * 2 ** Math.min(Math.max(0, attempts - 1), 20));
}

/**
 * Delay before fencing `target`: base + random up to max, plus the priority delay when the target
 * runs more groups than we do (it should win a two-node fence race).
 */
export function fenceDelayMs(cfg: FenceConfig, random: number, myLoad: number, targetLoad: number): number {
  return cfg.delayBaseMs + Math.round(random * cfg.delayMaxMs) + (targetLoad > myLoad ? cfg.priorityDelayMs : 0);
}

export class FenceIncidents {
  private readonly incidents = new Map<string, FenceIncident & { since: number }>();
  private readonly fenced = new Map<string, number | null>(); // node → seq at fence time
  private readonly last = new Map<string, FenceRecord>();

  constructor(private readonly d: FenceDeps) {}

  isFenced(node: string): boolean {
    return this.fenced.has(node);
  }

  lastFence(node: string): FenceRecord | undefined {
    return this.last.get(node);
  }

  /** A fenced node whose heartbeat moves again restarted cleanly: no longer fenced. */
  forgetRestarted(seqOf: (node: string) => number | null): void {
    for (const [n, seq] of this.fenced) if (seqOf(n) !== seq) this.fenced.delete(n);
  }

  tick(peers: readonly FencePeer[], now: number, loadOf: (node: string) => number): void {
    const cfg = this.d.config();
    if (cfg.methods.length === 0) return;
    const { targets } = fenceTargets(this.d.me, peers, this.incidents, now);
    for (const node of targets) {
      const seq = peers.find((p) => p.name === node)?.seq ?? null;
      const prev = this.incidents.get(node);
      const same = prev && prev.seq === seq;
      const attempts = same ? prev.attempts + 1 : 1;
      const since = same ? prev.since : this.d.wallNow().getTime();
      this.incidents.set(node, { seq, attempts, nextTry: Number.POSITIVE_INFINITY, done: false, since });
      const delay = attempts === 1 ? fenceDelayMs(cfg, this.d.random(), loadOf(this.d.me), loadOf(node)) : 0;
      const incident = `${node}#${seq ?? '-'}`;
      this.d.log.warn({ node, attempt: attempts, delayMs: delay, incident }, `STOMITH: fencing ${node}`);
      setTimeout(() => void this.run(node, seq, attempts, since, incident), delay);
    }
  }

  private async run(node: string, seq: number | null, attempts: number, since: number, incident: string): Promise<void> {
    const cfg = this.d.config();
    let records: FenceRecord[] = [];
    try {
      records = await fenceNode(node, cfg, { fencer: this.d.me, incident, since, confirmedAt: () => this.d.confirmedAt(node), now: this.d.wallNow });
    } catch (e) {
      this.d.log.error({ node, err: String(e) }, 'fencing failed unexpectedly');
    }
    const final = records[records.length - 1];
    const ok = final?.result === 'success';
    const waiting = final?.result === 'waiting';
    for (const r of records) {
      if (r.result !== 'waiting' || attempts === 1) this.d.record(r);
      if (r.result !== 'waiting') this.d.log[r.result === 'success' ? 'warn' : 'error']({ ...r }, `STOMITH ${node}: ${r.method} ${r.result}`);
    }
    if (final) this.last.set(node, final);
    if (ok) this.fenced.set(node, seq);
    const cycle = this.d.cycleMs();
    this.incidents.set(node, {
      seq,
      attempts,
      since,
      done: ok,
      nextTry: performance.now() + (waiting ? cycle : retryDelayMs(attempts, cycle, cfg.retryMaxMs)),
    });
  }
}
