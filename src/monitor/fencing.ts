// STOMITH decisions (pure): who fences which stale node, once per incident, with backoff.

export interface FenceIncident {
  /** The stale node's last seq when the incident began (a new seq ends the incident). */
  readonly seq: number | null;
  readonly attempts: number;
  readonly nextTry: number;
  readonly done: boolean;
}

export interface FencePeer {
  readonly name: string;
  readonly state: 'up' | 'stale' | 'unknown' | 'left' | 'fenced';
  readonly seq: number | null;
}

/**
 * Which stale nodes this node should fence now. Only the live node with the lowest name fences;
 * if every peer turned stale at once, suspect the shared filesystem and fence nobody.
 */
export function fenceTargets(
  me: string,
  peers: readonly FencePeer[],
  incidents: ReadonlyMap<string, FenceIncident>,
  now: number,
): { targets: string[]; reason: string } {
  const others = peers.filter((p) => p.name !== me && p.state !== 'left');
  const stale = others.filter((p) => p.state === 'stale');
  if (stale.length === 0) return { targets: [], reason: 'no stale peer' };
  if (stale.length === others.length && others.length > 1) return { targets: [], reason: 'every peer stale at once: suspecting the shared filesystem, fencing nobody' };
  const first = observerOf(peers);
  if (first !== me) return { targets: [], reason: `${first ?? 'nobody'} fences` };
  const targets = stale
    .filter((p) => {
      const inc = incidents.get(p.name);
      return !inc || inc.seq !== p.seq || (!inc.done && inc.nextTry <= now);
    })
    .map((p) => p.name);
  return { targets, reason: 'lowest-named live node' };
}

/** The live node with the lowest name: it fences, and it alerts node and quorum events. */
export function observerOf(peers: readonly FencePeer[]): string | null {
  let first: string | null = null;
  for (const p of peers) if (p.state === 'up' && (first === null || p.name < first)) first = p.name;
  return first;
}

/** Backoff before retrying a failed fence: cycle × 2^(attempts-1), capped. */
export function retryDelayMs(attempts: number, cycleMs: number, capMs: number): number {
  return Math.min(capMs, cycleMs * 2 ** Math.min(Math.max(0, attempts - 1), 20));
}

export interface FenceDelays {
  readonly delayBaseMs: number;
  readonly delayMaxMs: number;
  readonly priorityDelayMs: number;
}

/**
 * Delay before fencing `target`: base + random up to max, plus the priority delay when the target
 * runs more groups than we do (it should win a two-node fence race).
 */
export function fenceDelayMs(cfg: FenceDelays, random: number, myLoad: number, targetLoad: number): number {
  return cfg.delayBaseMs + Math.round(random * cfg.delayMaxMs) + (targetLoad > myLoad ? cfg.priorityDelayMs : 0);
}
