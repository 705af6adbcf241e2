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
  readonly state: 'up' | 'stale' | 'left' | 'fenced';
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
  const live = peers.filter((p) => p.state === 'up').map((p) => p.name).sort();
  if (live[0] !== me) return { targets: [], reason: `${live[0] ?? 'nobody'} fences` };
  const targets = stale
    .filter((p) => {
      const inc = incidents.get(p.name);
      return !inc || inc.seq !== p.seq || (!inc.done && inc.nextTry <= now);
    })
    .map((p) => p.name);
  return { targets, reason: 'lowest-named live node' };
}

export function fenceBackoffMs(attempts: number, cycleMs: number): number {
  return Math.min(60_000, cycleMs * 2 ** Math.min(attempts, 16));
}
