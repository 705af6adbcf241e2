// Liveness, skew-proof: a peer is alive while the `seq` in its clstat keeps changing, as seen
// on OUR monotonic clock. Peers' timestamps and file mtimes are never compared with our clock.
// Unreadable is not dead: a peer once read is stale only when a read that succeeded a full
// timeout after its last change still shows the old seq. Silent only because we could not read
// it, it is `unknown`: its groups still count as running (no takeover), it is not fenced, it does
// not count towards quorum, and no plan moves on while it cannot be read.

export type NodeLiveness = 'up' | 'stale' | 'unknown' | 'left';

export interface PeerObservation {
  /** The seq read from the peer's clstat, or null when unreadable this cycle. */
  readonly seq: number | null;
  /** The peer published an orderly-exit marker. */
  readonly left: boolean;
}

export interface PeerMemory {
  readonly seq: number | null;
  /** Our monotonic time when we last saw its seq change (or first saw it). */
  readonly lastChange: number;
  /** Our monotonic time of the last read of its clstat that succeeded (-Infinity: none yet). */
  readonly lastRead: number;
  readonly left: boolean;
}

export interface LivenessView {
  readonly state: NodeLiveness;
  readonly seq: number | null;
  /** Milliseconds since its seq last changed, on our clock. */
  readonly silentMs: number;
}

/**
 * Fold one cycle's observations into the memory. A peer seen for the first time counts as
 * having just changed (it must then stay silent for a full timeout to be stale).
 */
export function observe(
  memory: ReadonlyMap<string, PeerMemory>,
  seen: ReadonlyMap<string, PeerObservation>,
  now: number,
): Map<string, PeerMemory> {
  const next = new Map<string, PeerMemory>();
  for (const [node, obs] of seen) {
    const prev = memory.get(node);
    const read = obs.seq !== null;
    if (!prev) {
      next.set(node, { seq: obs.seq, lastChange: now, lastRead: read ? now : Number.NEGATIVE_INFINITY, left: obs.left });
      continue;
    }
    const changed = read && obs.seq !== prev.seq;
    next.set(node, {
      seq: obs.seq ?? prev.seq,
      lastChange: changed ? now : prev.lastChange,
      lastRead: read ? now : prev.lastRead,
      left: read ? obs.left : prev.left,
    });
  }
  // A folder that vanished keeps its memory: its groups may still run somewhere.
  for (const [node, prev] of memory) if (!next.has(node)) next.set(node, prev);
  return next;
}

export function liveness(memory: ReadonlyMap<string, PeerMemory>, now: number, timeoutMs: number): Map<string, LivenessView> {
  const out = new Map<string, LivenessView>();
  for (const [node, m] of memory) {
    const silentMs = Math.max(0, now - m.lastChange);
    // Stale only on evidence: a read that worked a timeout after its last change. A folder never
    // read at all stays unknown: it may be a live node this one cannot see (a mount hiding it,
    // a cut), whose groups would run twice; an empty folder left by a monitor that died before
    // its first heartbeat holds plans back until it is removed (status says so).
    const evidence = m.lastRead - m.lastChange >= timeoutMs;
    const state: NodeLiveness = m.left ? 'left' : silentMs < timeoutMs ? 'up' : evidence ? 'stale' : 'unknown';
    out.set(node, { state, seq: m.seq, silentMs });
  }
  return out;
}
