// decide(): what this node should do now, as a pure function of what it sees. The monitor loop,
// the simulator and `peerha plan` all call exactly this. Every action carries its reason.

import { isRunning, isSettled, type GroupState } from '../config/clstat.js';
import type { HactlWant } from '../config/hactl.js';

/** A group as one node's clstat shows it. */
export interface Instance {
  readonly level: string;
  readonly state: GroupState;
}

/** `unknown`: silent, but only because its clstat could not be read; its groups still count. */
export type NodeState = 'up' | 'stale' | 'unknown' | 'left' | 'fenced';

export interface NodeView {
  readonly name: string;
  readonly state: NodeState;
  /**
   * Its groups no longer count as running: it left, or it is stale and past its guaranteed
   * self-fence or was fenced. Until then a stale node's groups still count.
   */
  readonly released: boolean;
  readonly groups: ReadonlyMap<string, Instance>;
}

export interface DecideMemory {
  /** Group → monotonic time since when our own `plan DONE` was seen with no other instance. */
  readonly planSince: ReadonlyMap<string, number>;
  /**
   * Group → failed test: no re-plan until `until` unless the configuration changed. `count`
   * consecutive failures here (same configuration) double the cooldown each time (up to
   * MAX_FAIL_DOUBLINGS): a node whose test keeps failing must not keep the group from an eligible
   * node by re-planning it every cooldown. Kept after `until` (to count), dropped on a pass or a
   * configuration change.
   */
  readonly failed: ReadonlyMap<string, { readonly until: number; readonly configVersion: string; readonly count?: number }>;
  /** Group → no plan before this time (after losing a conflict). */
  readonly backoffUntil: ReadonlyMap<string, number>;
  /** Group → since when it has been needed and running nowhere, as seen here. */
  readonly homelessSince?: ReadonlyMap<string, number>;
  /** Group → since when our own test of it is seen here (only with a visibility lag to wait out). */
  readonly testSince?: ReadonlyMap<string, number>;
}

export const EMPTY_MEMORY: DecideMemory = { planSince: new Map(), failed: new Map(), backoffUntil: new Map(), homelessSince: new Map(), testSince: new Map() };

/**
 * The failed-test cooldown doubles with each consecutive failure, up to this many times (or more,
 * up to the time every other live candidate needs to probe the group once).
 */
export const MAX_FAIL_DOUBLINGS = 3;

export interface View {
  readonly me: string;
  /** Every known node including this one (this node's groups come from its engine). */
  readonly nodes: ReadonlyMap<string, NodeView>;
  readonly wants: ReadonlyMap<string, HactlWant>;
  /** Groups that have cltab entries. */
  readonly cltabGroups: ReadonlySet<string>;
  /** Groups with a `test` entry: their test may bar nodes, so they are not shared out evenly. */
  readonly testedGroups?: ReadonlySet<string>;
  /** Groups with a `plan` entry: their plan level must run, so a won claim does not skip it. */
  readonly plannedGroups?: ReadonlySet<string>;
  /** Changes whenever cltab or hactl content changes (clears failed-test memory). */
  readonly configVersion: string;
  readonly quorum: boolean;
  readonly memory: DecideMemory;
  /** Just started: peers may not be visible yet, so plan nothing (balance at cold start). */
  readonly settling?: boolean;
  /** Group → the node a leaving node handed it to (only while that handover is fresh). */
  readonly handovers?: ReadonlyMap<string, string>;
  /**
   * The latest claim of each group (DIR/claims): who placed it last, and whether that claim
   * still stands. Absent: no claims at all (a store without them; `peerha plan`).
   */
  readonly claims?: ReadonlyMap<string, ClaimView>;
  /**
   * Every live peer's clstat was read this cycle (default true). A plan may only move on to test
   * in a cycle that saw every live peer: a node cut off from the store (reads failing) must not
   * take its unchanged, stale view for a plan that stood unchallenged.
   */
  readonly complete?: boolean;
}

export interface ClaimView {
  readonly epoch: number;
  /** The claimer (null: its content could not be read yet). */
  readonly holder: string | null;
  /** This monitor run holds it. */
  readonly mine: boolean;
  /** It no longer stands (see claimReleased): the next epoch may be claimed. */
  readonly released: boolean;
}

export interface DecideConfig {
  readonly cycleMs: number;
  /** How long a plan must stand unchallenged before testing. */
  readonly planWindowMs: number;
  readonly balance: number;
  readonly failCooldownMs: number;
  /**
   * How long a write may take to be seen by every peer (visibility_lag; default 0). A test that
   * passed moves on to the group's level only once its clstat line has been out this long.
   */
  readonly visibilityLagMs?: number;
  /**
   * At most this many new plans per cycle (default unlimited): a thousand homeless groups are
   * taken on in slices, so that no cycle runs a thousand tells in one go. Stops are never held back.
   */
  readonly maxPlansPerCycle?: number;
}

/**
 * `claim`: first claim the group's next epoch; the level is told only if the claim is won.
 * `unclaimed`: the level to tell instead when the store cannot create claims (default: the same).
 */
export type Action =
  | { readonly type: 'tell'; readonly group: string; readonly level: string; readonly reason: string; readonly claim?: number; readonly unclaimed?: string };

export interface Decision {
  readonly actions: readonly Action[];
  readonly memory: DecideMemory;
  /** Problems to publish (e.g. wanted groups missing from cltab). */
  readonly errors: readonly string[];
  /** Why groups that need nothing now are as they are (for `peerha plan`). */
  readonly notes: ReadonlyArray<{ readonly group: string; readonly note: string }>;
}

/** The levels the monitor itself uses: announce, check eligibility, stop. */
export type ControlLevel = 'plan' | 'test' | 'stop';
export const PLAN: ControlLevel = 'plan';
export const TEST: ControlLevel = 'test';
export const STOP: ControlLevel = 'stop';

/** Whether a clstat line means the group is (being) run there. */
export function isActive(i: Instance): boolean {
  if (i.state === 'CONFIGURED') return false;
  if (i.level === STOP && isSettled(i.state)) return false;
  return true;
}

/**
 * Whether a group here may hold resources its stop level must release: it reached (or is leaving)
 * a real level. Plans and tests acquire nothing; a stop level that finished released everything.
 */
export function holdsResources(i: Instance): boolean {
  return isActive(i) && i.level !== PLAN && i.level !== TEST;
}

/**
 * How far along an instance is: the one furthest along survives a conflict. FAILED at a real level
 * (given up there) is on its way out, like a stop: it never makes a healthy instance give way.
 */
export function rank(i: Instance): number {
  if (i.level === PLAN) return 1;
  if (i.level === TEST) return 2;
  if (i.level === STOP) return 0;
  if (i.state === 'FAILED') return 0;
  return 3;
}

interface Holder {
  readonly node: string;
  readonly instance: Instance;
}

/** The instance that stays when several nodes have a group: furthest along, then preference, then name. */
export function conflictWinner(holders: readonly Holder[], preference: readonly string[] | null): Holder | undefined {
  const pref = (n: string): number => {
    const i = preference?.indexOf(n) ?? -1;
    return i < 0 ? Number.MAX_SAFE_INTEGER : i;
  };
  return [...holders].sort(
    (a, b) => rank(b.instance) - rank(a.instance) || pref(a.node) - pref(b.node) || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0),
  )[0];
}

/** FNV-1a: a stable hash, the same on every node, to spread groups over equally loaded nodes. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * The node that plans a homeless group first: the first live node in the hactl preference list,
 * or else the least loaded live node, ties broken by a rendezvous hash of (group, node).
 */
export function designatedPlanner(group: string, allowed: readonly string[] | null, nodes: ReadonlyMap<string, NodeView>, load: ReadonlyMap<string, number>): string | undefined {
  if (allowed) return allowed.find((n) => nodes.get(n)?.state === 'up');
  let best: { node: string; load: number; hash: number } | undefined;
  for (const n of nodes.values()) {
    if (n.state !== 'up') continue;
    const c = { node: n.name, load: load.get(n.name) ?? 0, hash: hash32(`${group}\0${n.name}`) };
    if (!best || c.load < best.load || (c.load === best.load && (c.hash > best.hash || (c.hash === best.hash && c.node < best.node)))) best = c;
  }
  return best?.node;
}

/** A homeless group's designated planner, and how many of its other designated groups come first. */
export interface Designated {
  readonly node: string;
  readonly rank: number;
}

/**
 * Fair shares: W free groups (wanted, in cltab, no preference list, no test entry) over the L
 * live nodes: W div L each, and one more for the W mod L nodes with the fewest other (pinned or
 * tested) groups, ties ranked by a hash of (W, node). Every node with the same hactl, live set and
 * pinned load computes the same shares, and they sum to W: a node that never holds more free
 * groups than its share (its own count is exact, its view of the others lags) leaves the cluster
 * within ±1 of W/L, never short of room for all of them.
 */
export function fairShares(free: number, live: readonly string[], pinnedLoad: ReadonlyMap<string, number> = new Map()): Map<string, number> {
  const base = Math.floor(free / Math.max(1, live.length));
  const extra = free - base * live.length;
  const ranked = live.map((n) => ({ n, pinned: pinnedLoad.get(n) ?? 0, hash: hash32(`${free}\0${n}`) }));
  ranked.sort((a, b) => a.pinned - b.pinned || b.hash - a.hash || (a.n < b.n ? -1 : a.n > b.n ? 1 : 0));
  return new Map(ranked.map(({ n }, i) => [n, base + (i < extra ? 1 : 0)]));
}

/**
 * Designated planners for every homeless group at once, so that a cold start of G groups on N
 * equal nodes spreads them within ±1 of G/N: groups in name order, each to the live node with the
 * fewest active plus already assigned groups (ties: rendezvous hash) among those below their
 * fair share for a free group. A group with a preference list goes to its first live node, and
 * counts there. Every node with the same view computes the same assignment.
 */
export function designatedPlanners(
  groups: readonly string[],
  wants: ReadonlyMap<string, HactlWant>,
  nodes: ReadonlyMap<string, NodeView>,
  load: ReadonlyMap<string, number>,
  fair?: { readonly isFree: (group: string) => boolean; readonly shares: ReadonlyMap<string, number>; readonly freeLoad: ReadonlyMap<string, number> },
): Map<string, Designated> {
  const assigned = new Map(load);
  const freeAssigned = new Map(fair?.freeLoad ?? []);
  const ranks = new Map<string, number>();
  const out = new Map<string, Designated>();
  let roomy: Map<string, NodeView> | undefined;
  for (const group of groups) {
    const free = fair?.isFree(group) === true;
    if (free && !roomy) roomy = new Map([...nodes].filter(([n]) => (freeAssigned.get(n) ?? 0) < (fair!.shares.get(n) ?? 0)));
    const among = free && roomy!.size > 0 ? roomy! : nodes;
    const node = designatedPlanner(group, wants.get(group)?.nodes ?? null, among, assigned);
    if (node === undefined) continue;
    const rank = ranks.get(node) ?? 0;
    ranks.set(node, rank + 1);
    out.set(group, { node, rank });
    assigned.set(node, (assigned.get(node) ?? 0) + 1);
    if (free) {
      const f = (freeAssigned.get(node) ?? 0) + 1;
      freeAssigned.set(node, f);
      if (f >= (fair!.shares.get(node) ?? 0)) roomy?.delete(node);
    }
  }
  return out;
}

/** How long the other nodes leave a homeless group to its designated planner: its cycle, the lag, ours. */
export function planGraceMs(cfg: DecideConfig): number {
  return cfg.planWindowMs + cfg.cycleMs;
}

export function decide(view: View, cfg: DecideConfig, now: number, random: () => number): Decision {
  const actions: Action[] = [];
  const errors: string[] = [];
  const notes: Array<{ group: string; note: string }> = [];
  const planSince = new Map(view.memory.planSince);
  const failed = new Map(view.memory.failed);
  const backoffUntil = new Map(view.memory.backoffUntil);
  const homelessBefore = view.memory.homelessSince ?? new Map<string, number>();
  const homelessSince = new Map<string, number>();
  const testSince = new Map<string, number>();
  const lagMs = cfg.visibilityLagMs ?? 0;
  const me = view.nodes.get(view.me);
  const mine = me?.groups ?? new Map<string, Instance>();
  const tell = (group: string, level: string, reason: string): void => {
    actions.push({ type: 'tell', group, level, reason });
  };
  /**
   * A plan, claiming the group's next epoch first when the store keeps claims. The claim is the
   * announcement: a node that wins it tests at once, unless the group has `plan` entries to run or
   * a live peer could not be read this cycle (then the plan and its window). A store that cannot
   * create the claim gets the plan and its window.
   */
  const plan = (group: string, reason: string): void => {
    plans++;
    if (isFree(group)) myFree++;
    if (!view.claims) return tell(group, PLAN, reason);
    const claim = (view.claims.get(group)?.epoch ?? 0) + 1;
    if (view.complete !== false && !view.plannedGroups?.has(group)) actions.push({ type: 'tell', group, level: TEST, reason: `${reason}; the claim announces it`, claim, unclaimed: PLAN });
    else actions.push({ type: 'tell', group, level: PLAN, reason, claim });
  };
  const note = (group: string, text: string): void => {
    notes.push({ group, note: text });
  };
  /**
   * Remember that the group failed here (a test, or FAILED at its level): no plan here for a
   * cooldown that doubles with each failure in a row. Returns how many in a row.
   */
  const recordFailure = (group: string, allowed: readonly string[] | null): number => {
    const count = (failed.get(group)?.count ?? 0) + 1;
    // Long enough at most for every other candidate to probe the group once in between.
    const candidates = allowed ? allowed.filter((n) => view.nodes.get(n)?.state === 'up').length : liveCount;
    const cap = Math.max(cfg.failCooldownMs * 2 ** MAX_FAIL_DOUBLINGS, candidates * (cfg.planWindowMs + 4 * cfg.cycleMs));
    const cooldown = Math.min(cfg.failCooldownMs * 2 ** (count - 1), cap);
    failed.set(group, { until: now + cooldown, configVersion: view.configVersion, count });
    return count;
  };

  // Failed-test memory does not survive a configuration change.
  for (const [g, f] of failed) if (f.configVersion !== view.configVersion) failed.delete(g);
  for (const [g, t] of backoffUntil) if (t <= now) backoffUntil.delete(g);

  const groups = new Set<string>([...view.wants.keys()]);
  for (const n of view.nodes.values()) for (const [g, i] of n.groups) if (isActive(i)) groups.add(g);
  const liveCount = [...view.nodes.values()].filter((n) => n.state === 'up').length;
  // Load = active groups per live node, for a bias towards the least loaded.
  // Free groups are shared out evenly (fairShares); each node counts its own exactly.
  const isFree = (g: string): boolean => {
    const w = view.wants.get(g);
    return w !== undefined && w.level !== STOP && !w.nodes && view.cltabGroups.has(g) && !view.testedGroups?.has(g);
  };
  const load = new Map<string, number>();
  const freeLoad = new Map<string, number>();
  const pinnedLoad = new Map<string, number>();
  for (const n of view.nodes.values()) {
    if (n.state !== 'up') continue;
    let free = 0;
    let pinned = 0;
    for (const [g, i] of n.groups) if (isActive(i)) isFree(g) ? free++ : pinned++;
    load.set(n.name, free + pinned);
    freeLoad.set(n.name, free);
    pinnedLoad.set(n.name, pinned);
  }

  const sorted = [...groups].sort();
  // Homeless and plannable: wanted at a level, in cltab, active nowhere (a plan or test counts).
  const activeSomewhere = new Set<string>();
  for (const n of view.nodes.values()) {
    if (n.released && n.name !== view.me) continue;
    const groupsThere = n.name === view.me ? mine : n.groups;
    for (const [g, i] of groupsThere) if (isActive(i)) activeSomewhere.add(g);
  }
  let freeWanted = 0;
  for (const g of view.wants.keys()) if (isFree(g)) freeWanted++;
  const shares = fairShares(freeWanted, [...load.keys()], pinnedLoad);
  // A standing claim counts on its holder before its clstat shows the group: the designations
  // of the next homeless groups then agree with what the holder itself computes.
  for (const [g, c] of view.claims ?? []) {
    if (c.released || c.holder === null || c.holder === view.me || activeSomewhere.has(g) || !load.has(c.holder)) continue;
    activeSomewhere.add(g);
    load.set(c.holder, load.get(c.holder)! + 1);
    if (isFree(g)) freeLoad.set(c.holder, (freeLoad.get(c.holder) ?? 0) + 1);
  }
  let myFree = freeLoad.get(view.me) ?? 0;
  const myShare = shares.get(view.me) ?? 0;
  const planners = designatedPlanners(
    sorted.filter((g) => {
      const w = view.wants.get(g);
      return w !== undefined && w.level !== STOP && view.cltabGroups.has(g) && !activeSomewhere.has(g);
    }),
    view.wants,
    view.nodes,
    load,
    { isFree, shares, freeLoad },
  );
  let plans = 0;
  const planBudgetLeft = (): boolean => plans < (cfg.maxPlansPerCycle ?? Number.POSITIVE_INFINITY);

  for (const group of sorted) {
    const want = view.wants.get(group);
    const local = mine.get(group);
    const localActive = local !== undefined && isActive(local);
    const allowed = want?.nodes ?? null;
    const others: Holder[] = [];
    for (const n of view.nodes.values()) {
      if (n.name === view.me || n.released) continue;
      const i = n.groups.get(group);
      if (i && isActive(i)) others.push({ node: n.name, instance: i });
    }
    if (!localActive) planSince.delete(group);

    if (!view.quorum) {
      if (localActive && local.level !== STOP) tell(group, STOP, 'no quorum: stopping local groups');
      else note(group, 'no quorum');
      continue;
    }

    if (want && !view.cltabGroups.has(group)) errors.push(`group ${group} is wanted in hactl (line ${want.line}) but has no cltab entries`);

    // 1. Not wanted (any more), wanted stopped, or not allowed here: stop it.
    if (localActive && local.level !== STOP) {
      if (!want) {
        tell(group, STOP, 'not in hactl');
        continue;
      }
      if (want.level === STOP) {
        tell(group, STOP, 'hactl wants it stopped');
        continue;
      }
      if (allowed && !allowed.includes(view.me)) {
        tell(group, STOP, `hactl allows only ${allowed.join(',')}`);
        continue;
      }
    }
    if (!want || want.level === STOP) {
      note(group, want ? 'wanted stopped' : 'not in hactl');
      continue;
    }
    if (!view.cltabGroups.has(group)) {
      note(group, 'not in cltab');
      continue;
    }
    // Homeless: wanted, and at its level nowhere (plans and tests in flight do not count).
    if (!(localActive && local.level === want.level) && !others.some((o) => o.instance.level === want.level)) {
      homelessSince.set(group, homelessBefore.get(group) ?? now);
    }

    // FAILED at its level (the engine gave it up after too many restarts, or a test entry of the
    // level failed): a failed test here. Stop it so that another node takes it over, and do not
    // plan it here again for the cooldown. Before the conflict rule: a node that plans it meanwhile
    // must not give way to this instance.
    if (localActive && local.level === want.level && local.state === 'FAILED' && local.level !== PLAN && local.level !== TEST && local.level !== STOP) {
      const count = recordFailure(group, allowed);
      planSince.delete(group);
      tell(group, STOP, `FAILED at ${local.level} here${count > 1 ? ` (${count} times in a row)` : ''}: stopping it so that another node takes it`);
      continue;
    }

    // 2. Conflict: the instance furthest along stays; only the others stop and back off.
    const claimHere = view.claims?.get(group);
    let contested = false;
    if (localActive && others.length > 0 && local.level === PLAN && claimHere?.mine && !claimHere.released && others.every((o) => rank(o.instance) <= rank(local))) {
      // Plans without this claim lose: theirs are failed creates or stale views.
      note(group, `conflict with ${others.map((o) => o.node).join(',')}: this node holds the claim`);
    } else if (localActive && others.length > 0) {
      const winner = conflictWinner([{ node: view.me, instance: local }, ...others], allowed);
      // A plan from a node whose test of this group failed before gives way to any other plan:
      // the name order would otherwise let it beat an eligible node every time it probes again.
      const yields = local.level === PLAN && failed.has(group) && others.some((o) => o.instance.level === PLAN);
      if ((winner && winner.node !== view.me) || yields) {
        const by = winner && winner.node !== view.me ? winner : others[0]!;
        tell(group, STOP, `conflict: ${by.node} has it at ${by.instance.level} ${by.instance.state}${yields ? ' (its test failed here before)' : ''}`);
        backoffUntil.set(group, now + cfg.cycleMs * (1 + 3 * random()));
        planSince.delete(group);
        continue;
      }
      planSince.delete(group); // a plan must stand unchallenged for a full window
      note(group, `conflict with ${others.map((o) => o.node).join(',')}: this node stays`);
      if (local.level === PLAN) continue;
      contested = true;
    }

    if (localActive && local.level === TEST) {
      if (local.state === 'FAILED') {
        const count = recordFailure(group, allowed);
        tell(group, STOP, count > 1 ? `test failed here (${count} times in a row)` : 'test failed here');
        continue;
      }
      if (isRunning(local.state)) {
        // Start only where no other instance is seen: of two nodes testing at once (a claim the
        // store lost), the one that sees the other waits until it gave way, so one of them always
        // sees the other before starting (with every write seen by all once visibility_lag passed).
        const since = lagMs > 0 ? (view.memory.testSince?.get(group) ?? now) : now;
        if (lagMs > 0) testSince.set(group, since);
        if (contested) note(group, `test passed; waiting for ${others.map((o) => o.node).join(',')} to give way`);
        else if (view.complete === false) note(group, 'test passed, but not every live peer could be read this cycle');
        else if (now - since < lagMs) note(group, 'test passed; waiting out visibility_lag');
        else {
          failed.delete(group);
          tell(group, want.level, 'test passed');
        }
        continue;
      }
      note(group, 'testing');
      continue;
    }

    if (localActive && local.level === PLAN) {
      const claim = view.claims?.get(group);
      if (claim && !claim.mine && !claim.released) {
        tell(group, STOP, `claim lost: ${claim.holder ?? 'another node'} holds ${group}:${claim.epoch}`);
        planSince.delete(group);
        continue;
      }
      if (local.state !== 'DONE') {
        note(group, 'planning');
        continue;
      }
      if (claim?.mine && view.complete !== false) {
        // The store gave this node the group's claim: nobody else can place it now, no window
        // needed. Unless a live peer could not be read this cycle: a store can lose a claim, and a
        // peer we cannot see may run the group; then the plan window (and its rule) applies.
        planSince.delete(group);
        tell(group, TEST, `claim ${group}:${claim.epoch} won`);
        continue;
      }
      // The window starts at the first cycle that sees our plan, i.e. after the clstat carrying it
      // was written (a slow store can delay that write past a window counted from the tell); the
      // monitor runs that cycle right after the one that told plan.
      const since = planSince.get(group) ?? now;
      planSince.set(group, since);
      if (now - since >= cfg.planWindowMs) {
        if (view.complete === false) {
          // The window counts again once every live peer was read (or is held stale, which the
          // stale claim in our clstat tells it): a peer we cannot see must get the whole window.
          planSince.set(group, now);
          note(group, 'plan window over, but not every live peer could be read this cycle');
          continue;
        }
        planSince.delete(group);
        tell(group, TEST, `plan stood unchallenged for ${Math.round(now - since)} ms`);
      } else note(group, 'plan window');
      continue;
    }

    if (localActive) {
      if (local.level !== want.level && isSettled(local.state)) {
        tell(group, want.level, `hactl level changed from ${local.level} to ${want.level}`);
      } else if (!isSettled(local.state)) note(group, `in transition (${local.state})`);
      else note(group, 'running here');
      continue;
    }

    // 3. Needed and running nowhere: plan it (balanced), unless barred here.
    if (others.length > 0) {
      note(group, `running on ${others.map((o) => o.node).join(',')}`);
      continue;
    }
    const standing = view.claims?.get(group);
    if (standing && !standing.released && !standing.mine) {
      note(group, `claimed by ${standing.holder ?? 'a node whose claim cannot be read yet'} (${group}:${standing.epoch})`);
      continue;
    }
    if (allowed && !allowed.includes(view.me)) {
      note(group, `not allowed here (only ${allowed.join(',')})`);
      continue;
    }
    if (view.settling) {
      note(group, 'starting up: looking at the cluster before planning');
      continue;
    }
    const heir = view.handovers?.get(group);
    if (heir !== undefined && heir !== view.me && view.nodes.get(heir)?.state === 'up') {
      note(group, `handed over to ${heir}`);
      continue;
    }
    const f = failed.get(group);
    if (f && f.until > now) {
      note(group, `test failed here; not planning for ${Math.ceil((f.until - now) / 1000)} s`);
      continue;
    }
    const b = backoffUntil.get(group);
    if (b !== undefined) {
      note(group, 'backing off after a conflict');
      continue;
    }
    if (heir === view.me) {
      // The leaving owner chose this node: no plan round needed (a late planner loses to test). It
      // claims the group first, so that a node that cannot see this one still cannot place it.
      if (view.claims) actions.push({ type: 'tell', group, level: TEST, reason: 'handed over by its leaving owner', claim: (view.claims.get(group)?.epoch ?? 0) + 1 });
      else tell(group, TEST, 'handed over by its leaving owner');
      continue;
    }
    // One designated planner plans at once, so that a takeover or a cold start costs no random
    // draws and (when views agree) no collision. Every other node leaves it the time for its plan
    // to be seen, then plans with the balance probability: that covers a designated node that
    // cannot (its test failed there, it backs off, its view differs); collisions resolve as conflicts.
    if (!planBudgetLeft()) {
      note(group, `needed; ${plans} groups planned here this cycle already (the rest next cycle)`);
      continue;
    }
    const d = planners.get(group);
    const designated = d?.node ?? designatedPlanner(group, allowed, view.nodes, load);
    const free = isFree(group);
    const roomHere = !free || myFree < myShare;
    if (designated === view.me && !failed.has(group) && roomHere) {
      plan(group, allowed ? 'needed and running nowhere; preferred node' : 'needed and running nowhere; designated planner (least loaded)');
      continue;
    }
    const homelessFor = now - (homelessSince.get(group) ?? now);
    // A planner places at most maxPlansPerCycle groups a cycle: the others wait their turn in its
    // backlog (two cycles a batch, for a busy one) before planning at random, which unbalances.
    const backlogMs = d ? Math.floor(d.rank / (cfg.maxPlansPerCycle ?? Number.POSITIVE_INFINITY)) * 2 * cfg.cycleMs : 0;
    if (designated !== undefined && homelessFor < planGraceMs(cfg) + backlogMs) {
      note(group, `needed; leaving it to ${designated} first`);
      continue;
    }
    // A group homeless for longer than a failed test's cooldown plus a plan window may have no
    // eligible idle node (their tests fail): then busier nodes plan it at the full probability.
    const starving = homelessFor >= cfg.failCooldownMs + cfg.planWindowMs + 2 * cfg.cycleMs;
    if (!roomHere && !starving) {
      note(group, `needed; this node holds its share (${myShare} of ${freeWanted} groups on ${shares.size} nodes)`);
      continue;
    }
    if (free && roomHere && view.claims && !failed.has(group)) {
      // Below its share, past the designated planner's turn: the claim settles any collision.
      plan(group, `needed and running nowhere; ${designated ?? 'no node'} did not take it (this node is below its share)`);
      continue;
    }
    const eligible = allowed ? allowed.filter((n) => view.nodes.get(n)?.state === 'up').length : liveCount;
    const eligibleLoads = [...load].filter(([n]) => !allowed || allowed.includes(n)).map(([, l]) => l);
    const busier = !starving && (load.get(view.me) ?? 0) > Math.min(...eligibleLoads, Number.POSITIVE_INFINITY);
    // A node whose test of this group failed before probes it again, but rarely: others go first.
    const failedBefore = failed.has(group);
    const p = Math.min(1, cfg.balance / Math.max(1, eligible)) * (busier || failedBefore ? 0.25 : 1);
    if (random() < p) plan(group, `needed and running nowhere (planning with p=${p.toFixed(2)})`);
    else note(group, `needed; skipped this cycle (p=${p.toFixed(2)})`);
  }

  return { actions, memory: { planSince, failed, backoffUntil, homelessSince, testSince }, errors, notes };
}
