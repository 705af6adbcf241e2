// Claims: who may place a homeless group, decided by the store instead of a plan window.
//
// `DIR/claims/<group>:<epoch>` is created with O_EXCL by the node that plans the group, holding
// `<node> <inc> <seq>`: the claimer, its monitor's incarnation, and the seq of its first clstat
// that shows the group. Every node derives the name from the same facts (one more than the highest epoch
// of the group in the listing), so exactly one create succeeds; the others get EEXIST, or see the
// claim in their next listing. Claim k+1 may be tried only once claim k is released: its holder
// left, went stale past its self-fence, was fenced, or published a clstat (seq at least the
// claim's, also after a restart) that no longer shows the group. Group names never contain ':'.

/** A claim as the listing and its (immutable) content show it. */
export interface Claim {
  readonly group: string;
  readonly epoch: number;
  /** The file name inside DIR/claims. */
  readonly name: string;
  /** null: the content could not be read or parsed (yet). */
  readonly holder: ClaimHolder | null;
}

export interface ClaimHolder {
  readonly node: string;
  readonly inc: string;
  readonly seq: number;
}

export const CLAIMS_DIR = 'claims';

export function claimName(group: string, epoch: number): string {
  return `${group}:${epoch}`;
}

/** A claim file name: its group and epoch, or null for anything else (temp files, strays). */
export function parseClaimName(name: string): { group: string; epoch: number } | null {
  const m = /^(.+):([1-9][0-9]{0,14})$/.exec(name);
  if (!m || m[1]!.includes(':')) return null;
  return { group: m[1]!, epoch: Number(m[2]) };
}

export function formatClaimHolder(h: ClaimHolder): string {
  return `${h.node} ${h.inc} ${h.seq}\n`;
}

export function parseClaimHolder(text: string): ClaimHolder | null {
  const m = /^(\S+) ([0-9a-z]{1,16}) ([0-9]{1,15})\n$/.exec(text);
  return m ? { node: m[1]!, inc: m[2]!, seq: Number(m[3]) } : null;
}

/** Per group, the claim with the highest epoch in a listing, and every older one (to remove). */
export function latestClaims(names: readonly string[]): { latest: Map<string, { epoch: number; name: string }>; older: Map<string, string[]> } {
  const latest = new Map<string, { epoch: number; name: string }>();
  const all = new Map<string, Array<{ epoch: number; name: string }>>();
  for (const name of names) {
    const p = parseClaimName(name);
    if (!p) continue;
    const list = all.get(p.group) ?? [];
    list.push({ epoch: p.epoch, name });
    all.set(p.group, list);
    const cur = latest.get(p.group);
    if (!cur || p.epoch > cur.epoch) latest.set(p.group, { epoch: p.epoch, name });
  }
  const older = new Map<string, string[]>();
  for (const [g, list] of all) {
    const top = latest.get(g)!.epoch;
    const old = list.filter((c) => c.epoch < top).map((c) => c.name);
    if (old.length) older.set(g, old);
  }
  return { latest, older };
}

/** What the claimer's node looks like from here, enough to tell whether it released the claim. */
export interface HolderView {
  /** Not among the nodes at all (its folder is gone). */
  readonly known: boolean;
  /** Left, stale past its self-fence, or fenced: nothing of it counts any more. */
  readonly released: boolean;
  /** Released because it left (its last clstat said so). */
  readonly left?: boolean;
  /** Its clstat could not be read lately: its groups still count. */
  readonly unknown: boolean;
  /** Its clstat as last read: seq (null: never read), and whether it shows the group. */
  readonly seq: number | null;
  readonly showsGroup: boolean;
}

/**
 * Whether a claim no longer stands. `unreadableForMs`: how long its content has been unreadable
 * here (a claimer that died between create and write): released after `timeoutMs`, as its node
 * would be stale by then.
 */
export function claimReleased(holder: ClaimHolder | null, view: HolderView | null, unreadableForMs: number, timeoutMs: number): boolean {
  if (holder === null) return unreadableForMs >= timeoutMs;
  if (view === null || !view.known) return true;
  // A leave seen before the claim was made says nothing of it: the node came back and claimed.
  if (view.left) return view.seq !== null && view.seq >= holder.seq;
  // Silent past its self-fence bound, or fenced: whatever it claimed is dead.
  if (view.released) return true;
  if (view.unknown) return false;
  // A clstat at least as new as the claim that does not show the group. Seqs keep growing across
  // a node's restarts (a run goes on from its previous clstat and its old claims), so a restarted
  // holder releases its old run's claims with its first clstat; an older clstat never does.
  return view.seq !== null && view.seq >= holder.seq && !view.showsGroup;
}
