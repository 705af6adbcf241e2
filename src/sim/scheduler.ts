// The simulator's virtual time: one global clock (ms) and a binary heap of events, ordered by
// time and then by the order they were scheduled, so a run is a deterministic function of its seed.

export interface SimEvent {
  readonly t: number;
  readonly s: number;
  readonly fn: () => void;
  cancelled: boolean;
}

export class Scheduler {
  now = 0;
  steps = 0;
  private heap: SimEvent[] = [];
  private seq = 0;

  at(t: number, fn: () => void): SimEvent {
    const ev: SimEvent = { t: Math.max(t, this.now), s: this.seq++, fn, cancelled: false };
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pe = h[p]!;
      if (pe.t < ev.t || (pe.t === ev.t && pe.s < ev.s)) break;
      h[i] = pe;
      i = p;
    }
    h[i] = ev;
    return ev;
  }

  after(ms: number, fn: () => void): SimEvent {
    return this.at(this.now + Math.max(0, ms), fn);
  }

  private pop(): SimEvent | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || last === undefined) return top;
    let i = 0;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      const le = h[l]!;
      if (r < n) {
        const re = h[r]!;
        if (re.t < le.t || (re.t === le.t && re.s < le.s)) c = r;
      }
      const ce = h[c]!;
      if (last.t < ce.t || (last.t === ce.t && last.s < ce.s)) break;
      h[i] = ce;
      i = c;
    }
    h[i] = last;
    return top;
  }

  /** Run events up to time `until` (inclusive) or until `stop()` says so after an event. */
  run(until: number, stop: () => boolean): void {
    for (;;) {
      const top = this.heap[0];
      if (!top || top.t > until) break;
      const ev = this.pop()!;
      if (ev.cancelled) continue;
      this.now = ev.t;
      this.steps++;
      ev.fn();
      if (stop()) return;
    }
    this.now = Math.max(this.now, until);
  }
}
