// The monitor's fencing duty: for each stale peer it is responsible for (fenceTargets), run the
// configured methods once per incident, after the anti-race delays, retrying with capped
// backoff. Only a success (or an operator's confirmation) marks the peer fenced.

import type { FencedLine } from '../config/clstat.js';
import type { FenceConfig } from './config.js';
import { fenceNode, type FenceRecord } from '../fence/fencer.js';
import { fenceDelayMs, fenceTargets, retryDelayMs, type FenceIncident, type FencePeer } from './fencing.js';

export interface FenceDeps {
  readonly me: string;
  readonly cycleMs: () => number;
  readonly config: () => FenceConfig;
  readonly wallNow: () => Date;
  readonly random: () => number;
  /** The operator's confirmation time for `node` (wall ms), or null. */
  readonly confirmedAt: (node: string) => Promise<number | null>;
  readonly record: (rec: FenceRecord) => void;
  /** Whether `node` is still stale at `seq` (as of the last cycle): a race delay may outlast the silence. */
  readonly stillStale: (node: string, seq: number | null) => boolean;
  readonly log: { warn(o: object, m: string): void; error(o: object, m: string): void; info(o: object, m: string): void };
}

export class FenceIncidents {
  private readonly incidents = new Map<string, FenceIncident & { since: number }>();
  /** Node → what this node publishes about it (`# fenced`): its seq at fence time, when, how. */
  private readonly fenced = new Map<string, FencedLine>();
  private readonly last = new Map<string, FenceRecord>();
  private readonly polling = new Set<string>();

  constructor(private readonly d: FenceDeps) {}

  isFenced(node: string): boolean {
    return this.fenced.has(node);
  }

  lastFence(node: string): FenceRecord | undefined {
    return this.last.get(node);
  }

  /** The nodes this node fenced and that have not restarted since: published in its clstat. */
  fencedLines(): FencedLine[] {
    return [...this.fenced.values()];
  }

  /** A fenced node whose heartbeat moves again restarted cleanly: no longer fenced. */
  forgetRestarted(seqOf: (node: string) => number | null): void {
    for (const [n, f] of this.fenced) if (seqOf(n) !== f.seq) this.fenced.delete(n);
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
      setTimeout(() => {
        if (this.d.stillStale(node, seq)) void this.run(node, seq, attempts, since, incident);
        else {
          this.incidents.delete(node);
          this.d.log.info({ node, incident }, `STOMITH: ${node} heartbeats again; not fencing it`);
        }
      }, delay);
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
    if (ok) this.markFenced(node, seq, final);
    const cycle = this.d.cycleMs();
    // Only a manual method was left waiting: ask again next cycle. After an agent failed or timed
    // out: back off (and meanwhile poll for the operator's confirmation every cycle).
    const onlyWaiting = records.every((r) => r.result === 'waiting');
    const confirmedMeanwhile = this.incidents.get(node)?.done === true && this.fenced.has(node);
    this.incidents.set(node, {
      seq,
      attempts,
      since,
      done: ok || confirmedMeanwhile,
      nextTry: performance.now() + (onlyWaiting ? cycle : retryDelayMs(attempts, cycle, cfg.retryMaxMs)),
    });
    if (waiting && !onlyWaiting) this.pollConfirmation(node, seq, since, incident);
  }

  private markFenced(node: string, seq: number | null, rec: FenceRecord): void {
    this.fenced.set(node, { node, seq, time: rec.time, method: rec.method });
  }

  /** While an incident backs off between agent attempts, an operator's confirmation still counts at once. */
  private pollConfirmation(node: string, seq: number | null, since: number, incident: string): void {
    if (this.polling.has(node)) return;
    this.polling.add(node);
    const poll = async (): Promise<void> => {
      const inc = this.incidents.get(node);
      if (!inc || inc.seq !== seq || inc.done || this.d.config().methods.every((m) => m.kind !== 'manual')) {
        this.polling.delete(node);
        return;
      }
      const at = await this.d.confirmedAt(node);
      if (at !== null && at >= since && !this.incidents.get(node)?.done) {
        const rec: FenceRecord = { time: this.d.wallNow().toISOString(), incident, fencer: this.d.me, node, method: 'manual', action: 'confirm', result: 'success', durationMs: 0, detail: 'confirmed by an operator' };
        this.d.record(rec);
        this.d.log.warn({ ...rec }, `STOMITH ${node}: manual success`);
        this.last.set(node, rec);
        this.markFenced(node, seq, rec);
        this.incidents.set(node, { ...this.incidents.get(node)!, done: true });
        this.polling.delete(node);
        return;
      }
      setTimeout(() => void poll(), this.d.cycleMs());
    };
    setTimeout(() => void poll(), this.d.cycleMs());
  }
}
