import { describe, expect, it } from 'vitest';
import { toGroupState } from '../../src/config/clstat.js';
import type { HactlWant } from '../../src/config/hactl.js';
import { conflictWinner, decide, designatedPlanner, designatedPlanners, EMPTY_MEMORY, fairShares, isActive, planGraceMs, type DecideMemory, type NodeView, type View } from '../../src/monitor/decide.js';
import { freshHandovers, handoverTtlMs, isReleased, isSettling, liveCount, nextHandover, petAfterCycle, readComplete, readPeerClstat, selfFenceState, spawnRefused } from '../../src/monitor/view.js';

const cfg = { cycleMs: 1000, planWindowMs: 2000, balance: 1.5, failCooldownMs: 10_000 };

type Groups = Record<string, string>; // group → "level STATE"

function node(name: string, groups: Groups, state: NodeView['state'] = 'up', released = false): NodeView {
  return {
    name,
    state,
    released,
    groups: new Map(Object.entries(groups).map(([g, ls]) => {
      const [level, st] = ls.split(' ');
      return [g, { level: level!, state: toGroupState(st!) }];
    })),
  };
}

function wants(spec: Record<string, string>): Map<string, HactlWant> {
  return new Map(
    Object.entries(spec).map(([g, v], i) => {
      const [level, nodes] = v.split(' ');
      return [g, { group: g, level: level!, nodes: nodes ? nodes.split(',') : null, line: i + 1 }];
    }),
  );
}

function view(me: string, nodes: NodeView[], w: Record<string, string>, extra: Partial<View> = {}): View {
  const cltabGroups = new Set(['foo', 'bar', 'baz', 'new', 'bad', 'del', 'web', 'db']);
  return { me, nodes: new Map(nodes.map((n) => [n.name, n])), wants: wants(w), cltabGroups, configVersion: 'v1', quorum: true, memory: EMPTY_MEMORY, ...extra };
}

const always = (): number => 0;
const never = (): number => 0.999;

function tells(v: View, now = 10_000, random = always): string[] {
  return decide(v, cfg, now, random).actions.map((a) => `${a.group} ${a.level}`);
}

describe('decide: the §5.2 1100compile_metrics fixture, as node 1 (fixed semantics)', () => {
  // node 1: foo start DONE, bar start DONE, del start DONE, pln plan DONE, bad test FAILED
  // node 2: bar stop RUNNING (counts as present), baz test PASSED
  const n1 = node('1', { foo: 'start DONE', bar: 'start DONE', del: 'start DONE', pln: 'plan DONE', bad: 'test FAILED' });
  const n2 = node('2', { foo: 'stop DONE', bar: 'stop RUNNING', baz: 'test PASSED' });
  const n3 = node('3', {});
  const w = { foo: 'start', bar: '2', baz: 'start', pln: 'start', bad: 'start', new: 'start' };
  const d = decide(view('1', [n1, n2, n3], w), cfg, 10_000, always);
  const byGroup = Object.fromEntries(d.actions.map((a) => [a.group, a.level]));

  it('foo runs here at its level: nothing to do', () => expect(byGroup.foo).toBeUndefined());
  it('bar: conflict with node 2 stopping it; node 1 is further along and stays, then moves to its hactl level', () => {
    expect(byGroup.bar).toBe('2');
  });
  it('del is not in hactl: stop it', () => expect(byGroup.del).toBe('stop'));
  it('bad failed its test: stop it', () => expect(byGroup.bad).toBe('stop'));
  it('new is needed and runs nowhere: node 1 (busiest) leaves it to the least loaded node 3, which plans it at once', () => {
    expect(byGroup.new).toBeUndefined();
    expect(d.notes).toContainEqual({ group: 'new', note: 'needed; leaving it to 3 first' });
    expect(decide(view('3', [n1, n2, n3], w), cfg, 10_000, never).actions.find((a) => a.group === 'new')?.level).toBe('plan');
  });
  it('pln is wanted but has no cltab entries: an error, never planned or tested', () => {
    // (the local engine halts and drops groups removed from cltab, so nothing to tell here)
    expect(byGroup.pln).toBeUndefined();
    expect(d.errors.some((e) => e.includes('pln'))).toBe(true);
  });
  it('baz runs on node 2 (test PASSED): not planned here', () => expect(byGroup.baz).toBeUndefined());
  it('foo on node 2 is `stop DONE`: inactive', () => expect(isActive({ level: 'stop', state: 'DONE' })).toBe(false));
});

describe('decide: lifecycle plan → test → level', () => {
  it('plans only after nobody has it; tests only after a full unchallenged plan window', () => {
    const me = node('a', { web: 'plan DONE' });
    const first = decide(view('a', [me, node('b', {})], { web: 'start' }), cfg, 10_000, always);
    expect(first.actions).toEqual([]);
    const later = decide(view('a', [me, node('b', {})], { web: 'start' }, { memory: first.memory }), cfg, 12_000, always);
    expect(later.actions.map((a) => a.level)).toEqual(['test']);
  });

  it('test PASSED or DONE → the hactl level; FAILED → stop and remember', () => {
    expect(tells(view('a', [node('a', { web: 'test PASSED' })], { web: 'start' }))).toEqual(['web start']);
    expect(tells(view('a', [node('a', { web: 'test DONE' })], { web: 'start' }))).toEqual(['web start']);
    const d = decide(view('a', [node('a', { web: 'test FAILED' })], { web: 'start' }), cfg, 10_000, always);
    expect(d.actions.map((a) => a.level)).toEqual(['stop']);
    // failed-test memory: not planned again during the cooldown...
    const again = decide(view('a', [node('a', { web: 'stop DONE' })], { web: 'start' }, { memory: d.memory }), cfg, 12_000, always);
    expect(again.actions).toEqual([]);
    // ...unless cltab/hactl changed
    const changed = decide(view('a', [node('a', { web: 'stop DONE' })], { web: 'start' }, { memory: d.memory, configVersion: 'v2' }), cfg, 12_000, always);
    expect(changed.actions.map((a) => a.level)).toEqual(['plan']);
    // ...and after it
    const after = decide(view('a', [node('a', { web: 'stop DONE' })], { web: 'start' }, { memory: d.memory }), cfg, 20_001, always);
    expect(after.actions.map((a) => a.level)).toEqual(['plan']);
  });

  it('a hactl level change is told directly', () => {
    expect(tells(view('a', [node('a', { web: 'start DONE' })], { web: 'maint' }))).toEqual(['web maint']);
  });

  it('wanted stop or removed from hactl → stop; stop DONE is left alone', () => {
    expect(tells(view('a', [node('a', { web: 'start DONE' })], { web: 'stop' }))).toEqual(['web stop']);
    expect(tells(view('a', [node('a', { web: 'start DONE' })], {}))).toEqual(['web stop']);
    expect(tells(view('a', [node('a', { web: 'stop DONE' })], {}))).toEqual([]);
  });

  it('groups wanted but missing from cltab are errors and never planned', () => {
    const d = decide(view('a', [node('a', {})], { ghost: 'start' }), cfg, 10_000, always);
    expect(d.actions).toEqual([]);
    expect(d.errors[0]).toMatch(/ghost/);
  });
});

describe('decide: conflicts (§6 item 28 fixed)', () => {
  it('a healthy running group is never stopped because a newcomer planned it', () => {
    expect(tells(view('a', [node('a', { web: 'start DONE' }), node('b', { web: 'plan DONE' })], { web: 'start' }))).toEqual([]);
    expect(tells(view('b', [node('a', { web: 'start DONE' }), node('b', { web: 'plan DONE' })], { web: 'start' }))).toEqual(['web stop']);
  });

  it('equal progress: the lowest node name stays, only the other stops and backs off', () => {
    const both = [node('a', { web: 'plan DONE' }), node('b', { web: 'plan DONE' })];
    expect(tells(view('a', both, { web: 'start' }))).toEqual([]);
    const d = decide(view('b', both, { web: 'start' }), cfg, 10_000, always);
    expect(d.actions.map((x) => x.level)).toEqual(['stop']);
    expect(d.memory.backoffUntil.get('web')).toBeGreaterThan(10_000);
  });

  it('the winner restarts its plan window after a collision', () => {
    const mem: DecideMemory = { ...EMPTY_MEMORY, planSince: new Map([['web', 0]]) };
    const d = decide(view('a', [node('a', { web: 'plan DONE' }), node('b', { web: 'plan DONE' })], { web: 'start' }, { memory: mem }), cfg, 10_000, always);
    expect(d.actions).toEqual([]);
    expect(d.memory.planSince.has('web')).toBe(false);
  });

  it('conflictWinner: wanted level > test > plan, then preference, then name', () => {
    const h = (node: string, level: string) => ({ node, instance: { level, state: 'DONE' as const } });
    expect(conflictWinner([h('a', 'plan'), h('b', 'test')], null)?.node).toBe('b');
    expect(conflictWinner([h('a', 'test'), h('b', 'start')], null)?.node).toBe('b');
    expect(conflictWinner([h('a', 'start'), h('b', 'start')], null)?.node).toBe('a');
    expect(conflictWinner([h('a', 'start'), h('b', 'start')], ['b', 'a'])?.node).toBe('b');
  });
});

describe('decide: takeover safety, quorum, balance, allowed nodes', () => {
  it('a stale node\'s groups count as running until released', () => {
    const stale = node('b', { web: 'start DONE' }, 'stale', false);
    expect(tells(view('a', [node('a', {}), stale], { web: 'start' }))).toEqual([]);
    const released = node('b', { web: 'start DONE' }, 'stale', true);
    expect(tells(view('a', [node('a', {}), released], { web: 'start' }))).toEqual(['web plan']);
  });

  it('no quorum: every local group stops and nothing is planned', () => {
    const v = view('a', [node('a', { web: 'start DONE', db: 'stop DONE' })], { web: 'start', new: 'start' }, { quorum: false });
    expect(tells(v)).toEqual(['web stop']);
  });

  it('one designated planner plans at once: the least loaded live node, ties spread by a hash of (group, node)', () => {
    const nodes = ['a', 'b', 'c', 'd'].map((n) => node(n, {}));
    const v = view('a', nodes, { web: 'start' });
    const load = new Map(nodes.map((n) => [n.name, 0]));
    const first = designatedPlanner('web', null, v.nodes, load)!;
    // a group with a test entry goes by the hash; a free one to the node with the free share
    const tested = { ...v, testedGroups: new Set(['web']) };
    for (const n of nodes) expect(tells({ ...tested, me: n.name }, 10_000, never)).toEqual(n.name === first ? ['web plan'] : []);
    const sharer = [...fairShares(1, ['a', 'b', 'c', 'd'])].find(([, k]) => k === 1)![0];
    for (const n of nodes) expect(tells({ ...v, me: n.name }, 10_000, never)).toEqual(n.name === sharer ? ['web plan'] : []);
    // the same on every node, and different groups land on different nodes
    const picks = new Set(Array.from({ length: 40 }, (_, i) => designatedPlanner(`g${i}`, null, v.nodes, load)));
    expect(picks.size).toBe(4);
    // load first: a node with one group less wins over any hash
    expect(designatedPlanner('web', null, v.nodes, new Map([...load, [first, 1]]))).not.toBe(first);
    // stale, fenced and left nodes never are designated
    expect(designatedPlanner('web', null, new Map([['x', node('x', {}, 'stale')], ['y', node('y', {})]]), new Map())).toBe('y');
  });

  it('balanced cold start: G homeless groups on N equal nodes are designated within ±1 of G/N, the same on every node', () => {
    for (const [g, n] of [[10, 3], [1000, 3], [300, 16], [7, 8]] as const) {
      const nodes = Array.from({ length: n }, (_, i) => node(`n${i + 1}`, {}));
      const names = Array.from({ length: g }, (_, i) => `g${i + 1}`);
      const cltabGroups = new Set(names);
      const w = Object.fromEntries(names.map((x) => [x, 'start']));
      const planned = nodes.map((me) => decide({ ...view(me.name, nodes, w), cltabGroups }, cfg, 10_000, never).actions.map((a) => a.group));
      const counts = planned.map((p) => p.length);
      expect(counts.reduce((a, b) => a + b), `${g} groups on ${n} nodes: every group planned once`).toBe(g);
      expect(new Set(planned.flat()).size).toBe(g);
      expect(Math.max(...counts) - Math.min(...counts), `${g} on ${n}: ${counts.join(',')}`).toBeLessThanOrEqual(1);
    }
  });

  describe('claims', () => {
    const claims = (spec: Record<string, Partial<{ epoch: number; holder: string | null; mine: boolean; released: boolean }>>): View['claims'] =>
      new Map(Object.entries(spec).map(([g, c]) => [g, { epoch: 1, holder: 'b', mine: false, released: false, ...c }]));
    const nodes = [node('a', {}), node('b', {})];
    const plans = (v: View): Array<{ group: string; level: string; claim?: number }> => decide(v, cfg, 10_000, always).actions.map(({ group, level, claim }) => ({ group, level, ...(claim !== undefined ? { claim } : {}) }));
    const a = (extra: Partial<View> = {}): View => ({ ...view('a', nodes, { web: 'start a,b' }), ...extra });

    it('a plan claims the next epoch (1 with none yet, one more than a released one) and tests at once: the claim announces it', () => {
      expect(plans(a({ claims: new Map() }))).toEqual([{ group: 'web', level: 'test', claim: 1 }]);
      expect(plans(a({ claims: claims({ web: { epoch: 4, released: true } }) }))).toEqual([{ group: 'web', level: 'test', claim: 5 }]);
      expect(plans(a())).toEqual([{ group: 'web', level: 'plan' }]); // a store without claims: the plan window
      // a store that cannot create the claim: the plan and its window
      expect(decide(a({ claims: new Map() }), cfg, 10_000, always).actions[0]).toMatchObject({ unclaimed: 'plan' });
    });

    it('the plan level still runs first when the group has plan entries, or a live peer was not read', () => {
      expect(plans(a({ claims: new Map(), plannedGroups: new Set(['web']) }))).toEqual([{ group: 'web', level: 'plan', claim: 1 }]);
      expect(plans(a({ claims: new Map(), complete: false }))).toEqual([{ group: 'web', level: 'plan', claim: 1 }]);
    });

    it('a passed test starts the group only where no other instance is seen, every live peer was read, and visibility_lag passed', () => {
      const testing = (b: Record<string, string>, extra: Partial<View> = {}): View => ({ ...view('a', [node('a', { web: 'test DONE' }), node('b', b)], { web: 'start a,b' }), claims: claims({ web: { holder: 'a', mine: true } }), ...extra });
      expect(plans(testing({}))).toEqual([{ group: 'web', level: 'start' }]);
      // b tests it too (a claim the store lost): a wins by name and waits for b to give way
      const d = decide(testing({ web: 'test DONE' }), cfg, 10_000, always);
      expect(d.actions).toEqual([]);
      expect(d.notes).toContainEqual({ group: 'web', note: 'test passed; waiting for b to give way' });
      expect(plans(testing({ web: 'stop STARTING' }))).toEqual([]);
      expect(plans(testing({ web: 'stop DONE' }))).toEqual([{ group: 'web', level: 'start' }]);
      expect(plans(testing({}, { complete: false }))).toEqual([]);
      // visibility_lag: the test's line must have been out that long
      const lag = { ...cfg, visibilityLagMs: 300 };
      const first = decide(testing({}), lag, 10_000, always);
      expect(first.actions).toEqual([]);
      expect(first.memory.testSince?.get('web')).toBe(10_000);
      expect(decide(testing({}, { memory: first.memory }), lag, 10_299, always).actions).toEqual([]);
      expect(decide(testing({}, { memory: first.memory }), lag, 10_300, always).actions.map((x) => x.level)).toEqual(['start']);
    });

    it('a standing claim of another node: no plan', () => {
      const d = decide(a({ claims: claims({ web: { holder: 'b' } }) }), cfg, 10_000, always);
      expect(d.actions).toEqual([]);
      expect(d.notes).toContainEqual({ group: 'web', note: 'claimed by b (web:1)' });
    });

    it('a won claim tests at once (no window); a plan whose claim another holds stops', () => {
      const planning = (c: View['claims']): View => ({ ...view('a', [node('a', { web: 'plan DONE' }), node('b', {})], { web: 'start a,b' }), claims: c });
      expect(plans(planning(claims({ web: { holder: 'a', mine: true } })))).toEqual([{ group: 'web', level: 'test' }]);
      expect(plans(planning(claims({ web: { holder: 'b' } })))).toEqual([{ group: 'web', level: 'stop' }]);
      // a released claim of another (not ours): the plan window as before
      expect(plans(planning(claims({ web: { holder: 'b', released: true } })))).toEqual([]);
    });

    it('among plans, the claim holder stays whatever the preference order', () => {
      const v: View = { ...view('b', [node('a', { web: 'plan DONE' }), node('b', { web: 'plan DONE' })], { web: 'start a,b' }), claims: claims({ web: { holder: 'b', mine: true } }) };
      expect(plans(v)).toEqual([{ group: 'web', level: 'test' }]);
    });
  });

  it('a cycle plans at most maxPlansPerCycle groups; the rest wait for the next cycle, stops are never held back', () => {
    const names = Array.from({ length: 20 }, (_, i) => `g${i + 1}`);
    const v = { ...view('a', [node('a', { web: 'start DONE' })], Object.fromEntries(names.map((x) => [x, 'start']))), cltabGroups: new Set([...names, 'web']) };
    const d = decide(v, { ...cfg, maxPlansPerCycle: 5 }, 10_000, never);
    expect(d.actions.map((a) => a.level).sort()).toEqual(['plan', 'plan', 'plan', 'plan', 'plan', 'stop']);
    expect(d.notes.filter((x) => /planned here this cycle already/.test(x.note))).toHaveLength(15);
  });

  it('balance: the others plan with probability min(1, balance/N) once the designated planner had its chance', () => {
    const nodes = ['a', 'b', 'c', 'd'].map((n) => node(n, {}));
    const v0 = view('a', nodes, { web: 'start' }, { testedGroups: new Set(['web']) }); // free groups go by their shares (below)
    const me = ['a', 'b', 'c', 'd'].find((n) => n !== designatedPlanner('web', null, v0.nodes, new Map()))!;
    const grace = planGraceMs(cfg);
    const since = (t: number): DecideMemory => ({ ...EMPTY_MEMORY, homelessSince: new Map([['web', t]]) });
    expect(tells({ ...v0, me, memory: since(10_000 - grace + 1) }, 10_000, always)).toEqual([]);
    expect(tells({ ...v0, me, memory: since(10_000 - grace) }, 10_000, () => 0.37)).toEqual(['web plan']); // p = 0.375
    expect(tells({ ...v0, me, memory: since(10_000 - grace) }, 10_000, () => 0.38)).toEqual([]);
  });

  it('allowed nodes: others never plan; the first live allowed node plans without the random skip', () => {
    const nodes = [node('a', {}), node('b', {}), node('c', {})];
    expect(tells(view('a', nodes, { web: 'start b,c' }))).toEqual([]);
    expect(tells(view('b', nodes, { web: 'start b,c' }), 10_000, never)).toEqual(['web plan']);
    expect(tells(view('c', nodes, { web: 'start b,c' }), 10_000, never)).toEqual([]);
    const bDown = [node('a', {}), node('b', {}, 'stale', true), node('c', {})];
    expect(tells(view('c', bDown, { web: 'start b,c' }), 10_000, never)).toEqual(['web plan']);
    expect(tells(view('a', [node('a', { web: 'start DONE' })], { web: 'start b,c' }))).toEqual(['web stop']);
  });
});

describe('decide: cold start and handover', () => {
  it('plans nothing while settling (peers may not be visible yet)', () => {
    expect(tells(view('a', [node('a', {})], { web: 'start' }, { settling: true }))).toEqual([]);
  });

  it('the heir named by a leaving owner goes straight to test; the others wait for it', () => {
    const nodes = [node('a', {}), node('b', {}), node('gone', { web: 'start DONE' }, 'left', true)];
    const handovers = new Map([['web', 'b']]);
    expect(tells(view('b', nodes, { web: 'start' }, { handovers }), 10_000, never)).toEqual(['web test']);
    expect(tells(view('a', nodes, { web: 'start' }, { handovers }), 10_000, always)).toEqual([]);
  });

  it('a handover to a node that is not up is ignored', () => {
    const nodes = [node('a', {}), node('b', {}, 'stale', true)];
    expect(tells(view('a', nodes, { web: 'start' }, { handovers: new Map([['web', 'b']]) }), 10_000, always)).toEqual(['web plan']);
  });

  it('a busier node leaves a homeless group to the idle one, then plans with a quarter of the probability', () => {
    const nodes = [node('a', { db: 'start DONE' }), node('b', {})];
    const testedGroups = new Set(['web']); // a free group goes by shares instead (below)
    expect(tells(view('b', nodes, { web: 'start', db: 'start' }, { testedGroups }), 10_000, never)).toEqual(['web plan']);
    expect(tells(view('a', nodes, { web: 'start', db: 'start' }, { testedGroups }), 10_000, always)).toEqual([]);
    const memory = { ...EMPTY_MEMORY, homelessSince: new Map([['web', 10_000 - planGraceMs(cfg)]]) };
    // p = min(1, 1.5/2) × 0.25 = 0.1875
    expect(tells(view('a', nodes, { web: 'start', db: 'start' }, { memory, testedGroups }), 10_000, () => 0.18)).toEqual(['web plan']);
    expect(tells(view('a', nodes, { web: 'start', db: 'start' }, { memory, testedGroups }), 10_000, () => 0.19)).toEqual([]);
  });

  it('fair shares: W free groups over L nodes sum to W, within one of W/L; the extra ones go to nodes with fewer pinned groups', () => {
    for (const [w, l] of [[0, 3], [1, 3], [1000, 3], [7, 8], [300, 16], [5, 1]] as const) {
      const live = Array.from({ length: l }, (_, i) => `n${i + 1}`);
      const shares = [...fairShares(w, live).values()];
      expect(shares.reduce((a, b) => a + b, 0)).toBe(w);
      expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
      expect(fairShares(w, [...live].reverse())).toEqual(fairShares(w, live)); // the same on every node
    }
    expect(fairShares(2, ['a', 'b', 'c'], new Map([['a', 1], ['b', 0], ['c', 0]])).get('a')).toBe(0);
  });

  it('a free group: a node at its share leaves it to the others until it starves; one below its share takes it once the designated planner had its turn', () => {
    // b holds db (its share of 2 free groups on 2 nodes); web is designated to a, which does not take it
    const nodes = [node('a', {}), node('b', { db: 'start DONE' })];
    const w = { web: 'start', db: 'start' };
    const claims = new Map();
    const since = (t: number): DecideMemory => ({ ...EMPTY_MEMORY, homelessSince: new Map([['web', t]]) });
    const grace = planGraceMs(cfg);
    expect(tells(view('b', nodes, w, { claims }), 10_000, always)).toEqual([]);
    expect(tells(view('b', nodes, w, { claims, memory: since(10_000 - grace) }), 10_000, always)).toEqual([]);
    expect(decide(view('b', nodes, w, { claims, memory: since(10_000 - grace) }), cfg, 10_000, always).notes).toContainEqual({ group: 'web', note: 'needed; this node holds its share (1 of 2 groups on 2 nodes)' });
    const starved = 10_000 - (cfg.failCooldownMs + cfg.planWindowMs + 2 * cfg.cycleMs);
    expect(tells(view('b', nodes, w, { claims, memory: since(starved) }), 10_000, always)).toEqual(['web test']);
    // a node below its share plans a group designated to another once that one had its turn (the
    // claim settles a collision): here a's own pick failed its test, so it takes b's
    const two = [node('a', {}), node('b', {})];
    const w2 = { web: 'start', bar: 'start' };
    const picks = designatedPlanners(['bar', 'web'], wants(w2), new Map(two.map((n) => [n.name, n])), new Map([['a', 0], ['b', 0]]), { isFree: () => true, shares: fairShares(2, ['a', 'b']), freeLoad: new Map() });
    const x = picks.get('web')!.node;
    expect(picks.get('bar')!.node).not.toBe(x);
    const mem: DecideMemory = { ...EMPTY_MEMORY, failed: new Map([['web', { until: 20_000, configVersion: 'v1', count: 1 }]]), homelessSince: new Map([['web', 10_000 - grace], ['bar', 10_000 - grace]]) };
    expect(tells(view(x, two, w2, { claims, memory: mem }), 10_000, never)).toEqual(['bar test']);
    expect(tells(view(x, two, w2, { claims, memory: { ...mem, homelessSince: new Map([['web', 10_000], ['bar', 10_000]]) } }), 10_000, never)).toEqual([]);
  });

  it('a standing claim counts where it is held: the next homeless group is designated elsewhere', () => {
    // c sees a's claim of bar before a's clstat shows it: web then goes to the node with room
    const three = [node('a', {}), node('b', { db: 'start DONE' }), node('c', {})];
    const w = { web: 'start', db: 'start', bar: 'start' };
    const claims = new Map([['bar', { epoch: 1, holder: 'a', mine: false, released: false }]]);
    expect(tells(view('c', three, w, { claims }), 10_000, never)).toEqual(['web test']);
    expect(tells(view('a', [node('a', { bar: 'plan DONE' }), three[1]!, three[2]!], w, { claims: new Map([['bar', { ...claims.get('bar')!, mine: true }]]) }), 10_000, never)).toEqual(['bar test']);
  });
});

// Bugs the cluster simulator (src/sim, `npm run sim`) found; each test names the seed class.
describe('decide: fixes found by the cluster simulator', () => {
  it('a fenced node\'s group is taken over at once by the designated planner, not after random draws', () => {
    // Found when only the fencer knew (seed class: no self-fence, many live nodes): with the
    // fence shared in the fencer's clstat every node releases n4, and one of them plans at once.
    const nodes = [node('n1', { other: 'start DONE' }), node('n2', {}), node('n3', {}), node('n4', { web: 'start DONE' }, 'fenced', true)];
    const planners = ['n1', 'n2', 'n3'].filter((me) => tells(view(me, nodes, { web: 'start', other: 'start' }), 10_000, never).includes('web plan'));
    expect(planners).toHaveLength(1);
    expect(planners[0]).not.toBe('n1'); // the busier node leaves it to an idle one
    // a stale (not released) holder still blocks
    const stale = [node('n1', {}), node('n4', { web: 'start DONE' }, 'stale', false)];
    expect(tells(view('n1', stale, { web: 'start' }), 10_000, always)).toEqual([]);
  });

  it('a node whose test failed before yields to any other plan and probes rarely (seed 8084: only the last-named nodes pass)', () => {
    const memory: DecideMemory = { ...EMPTY_MEMORY, failed: new Map([['g', { until: 0, configVersion: 'v1', count: 3 }]]), homelessSince: new Map([['g', 0]]) };
    const w = { g: 'start' };
    // n1 would win a plan-vs-plan conflict by name, but its test failed here before: it stops
    expect(tells(view('n1', [node('n1', { g: 'plan DONE' }), node('n7', { g: 'plan DONE' })], w, { memory, cltabGroups: new Set(['g']) }))).toEqual(['g stop']);
    // and plans with a quarter of the probability, even as the designated planner
    const idle = [node('n1', {}), node('n7', { x: 'start DONE' })];
    expect(tells(view('n1', idle, w, { memory, cltabGroups: new Set(['g']) }), 10_000, () => 0.3)).toEqual([]);
    expect(tells(view('n1', idle, w, { memory, cltabGroups: new Set(['g']) }), 10_000, () => 0.1)).toEqual(['g plan']);
  });

  it('consecutive failed tests double the cooldown: a preferred node whose test keeps failing cannot starve an eligible one', () => {
    const c = { ...cfg, failCooldownMs: 1000 };
    const w = { web: 'start a,b' };
    let mem = EMPTY_MEMORY;
    const fail = (now: number): void => {
      mem = decide(view('a', [node('a', { web: 'test FAILED' }), node('b', {})], w, { memory: mem }), c, now, always).memory;
    };
    fail(10_000);
    expect(mem.failed.get('web')).toMatchObject({ until: 11_000, count: 1 });
    fail(20_000);
    expect(mem.failed.get('web')).toMatchObject({ until: 22_000, count: 2 });
    fail(30_000);
    expect(mem.failed.get('web')).toMatchObject({ until: 34_000, count: 3 });
    // while cooling down the preferred node does not plan; after it, it does
    expect(decide(view('a', [node('a', {}), node('b', {})], w, { memory: mem }), c, 33_000, always).actions).toEqual([]);
    expect(decide(view('a', [node('a', {}), node('b', {})], w, { memory: mem }), c, 34_001, always).actions.map((x) => x.level)).toEqual(['plan']);
    // a pass resets the count; so does a configuration change
    const passed = decide(view('a', [node('a', { web: 'test PASSED' }), node('b', {})], w, { memory: mem }), c, 40_000, always).memory;
    expect(passed.failed.has('web')).toBe(false);
    const changed = decide(view('a', [node('a', {}), node('b', {})], w, { memory: mem, configVersion: 'v2' }), c, 40_000, always).memory;
    expect(changed.failed.has('web')).toBe(false);
  });

  it('a group homeless for longer than cooldown + plan window is planned by busier nodes at full probability', () => {
    // a runs db, b runs nothing but (unknown to a) fails web's test: a's quarter probability alone
    // would leave web down for a long time.
    const nodes = [node('a', { db: 'start DONE' }), node('b', {})];
    const w = { web: 'start', db: 'start' };
    const first = decide(view('a', nodes, w), cfg, 10_000, () => 0.5);
    expect(first.actions).toEqual([]); // p = 0.75 × 0.25
    expect(first.memory.homelessSince?.get('web')).toBe(10_000);
    // others planning and testing it meanwhile does not reset the clock; only running it at its level does
    const tested = decide(view('a', [nodes[0]!, node('b', { web: 'test FAILED' })], w, { memory: first.memory }), cfg, 12_000, () => 0.5);
    expect(tested.memory.homelessSince?.get('web')).toBe(10_000);
    const later = decide(view('a', nodes, w, { memory: tested.memory }), cfg, 10_000 + cfg.failCooldownMs + cfg.planWindowMs + 2 * cfg.cycleMs, () => 0.5);
    expect(later.actions.map((x) => `${x.group} ${x.level}`)).toEqual(['web plan']); // p = 0.75
    const running = decide(view('a', [nodes[0]!, node('b', { web: 'start DONE' })], w, { memory: later.memory }), cfg, 30_000, () => 0.5);
    expect(running.memory.homelessSince?.has('web')).toBe(false);
  });

  it('a plan moves on to test only a whole plan window after a cycle that read every live peer (a node cut off from the store must not)', () => {
    const me = node('a', { web: 'plan DONE' });
    const first = decide(view('a', [me, node('b', {})], { web: 'start' }), cfg, 10_000, always);
    const cut = decide(view('a', [me, node('b', {})], { web: 'start' }, { memory: first.memory, complete: false }), cfg, 12_000, always);
    expect(cut.actions).toEqual([]);
    expect(cut.notes.find((n) => n.group === 'web')?.note).toMatch(/not every live peer/);
    // A peer it could not read (now read, or held stale and told so by the claim in our clstat)
    // gets the whole window: not at once, one window later.
    const back = decide(view('a', [me, node('b', {})], { web: 'start' }, { memory: cut.memory, complete: true }), cfg, 12_200, always);
    expect(back.actions).toEqual([]);
    const later = decide(view('a', [me, node('b', {})], { web: 'start' }, { memory: back.memory, complete: true }), cfg, 12_000 + cfg.planWindowMs, always);
    expect(later.actions.map((x) => x.level)).toEqual(['test']);
  });
});

describe('decide: a group FAILED at its level (given up by the engine after failing health checks or a crash loop)', () => {
  it('counts as a failed test here: stop it and do not plan it again for the cooldown', () => {
    const w = { web: 'start' };
    const d = decide(view('a', [node('a', { web: 'start FAILED' }), node('b', {})], w), cfg, 10_000, always);
    expect(d.actions).toEqual([{ type: 'tell', group: 'web', level: 'stop', reason: 'FAILED at start here: stopping it so that another node takes it' }]);
    expect(d.memory.failed.get('web')).toEqual({ until: 10_000 + cfg.failCooldownMs, configVersion: 'v1', count: 1 });
    // stopped here: not planned again during the cooldown, even as the designated planner
    const stopped = [node('a', { web: 'stop DONE' }), node('b', { x: 'start DONE' })];
    const again = decide(view('a', stopped, w, { memory: d.memory }), cfg, 12_000, always);
    expect(again.actions).toEqual([]);
    expect(again.notes).toContainEqual({ group: 'web', note: 'test failed here; not planning for 8 s' });
    // only while its stop level runs is it told nothing more
    expect(tells(view('a', [node('a', { web: 'stop STOPPING' })], w, { memory: d.memory }), 10_500)).toEqual([]);
  });

  it('another node leaves it alone while it is FAILED there, and takes it once it is stopped', () => {
    const w = { web: 'start' };
    expect(tells(view('b', [node('a', { web: 'start FAILED' }), node('b', {})], w))).toEqual([]);
    // (a runs another group here, so b is the designated planner; else b plans after the grace)
    expect(tells(view('b', [node('a', { web: 'stop DONE', x: 'start DONE' }), node('b', {})], { ...w, x: 'start' }), 10_000, always)).toEqual(['web plan']);
  });

  it('stops at once even when another node already plans it (it does not win the conflict as the furthest along)', () => {
    const w = { web: 'start' };
    expect(tells(view('a', [node('a', { web: 'start FAILED' }), node('b', { web: 'plan DONE' })], w))).toEqual(['web stop']);
    // and the planner does not give way to the FAILED instance: it stays, as against a stopping one
    expect(tells(view('b', [node('a', { web: 'start FAILED' }), node('b', { web: 'plan DONE' })], w))).toEqual([]);
    expect(tells(view('b', [node('a', { web: 'stop STOPPING' }), node('b', { web: 'plan DONE' })], w))).toEqual([]);
    // nor does a healthy instance at the level, whatever the name order
    expect(tells(view('b', [node('a', { web: 'start FAILED' }), node('b', { web: 'start DONE' })], w))).toEqual([]);
    expect(conflictWinner([{ node: 'a', instance: { level: 'start', state: 'FAILED' } }, { node: 'b', instance: { level: 'plan', state: 'DONE' } }], null)?.node).toBe('b');
  });

  it('consecutive give-ups here double the cooldown like failed tests', () => {
    const c = { ...cfg, failCooldownMs: 1000 };
    const w = { web: 'start' };
    let mem = EMPTY_MEMORY;
    mem = decide(view('a', [node('a', { web: 'start FAILED' }), node('b', {})], w, { memory: mem }), c, 10_000, always).memory;
    expect(mem.failed.get('web')).toMatchObject({ until: 11_000, count: 1 });
    mem = decide(view('a', [node('a', { web: 'start FAILED' }), node('b', {})], w, { memory: mem }), c, 20_000, always).memory;
    expect(mem.failed.get('web')).toMatchObject({ until: 22_000, count: 2 });
  });

  it('only at its wanted level: FAILED at another real level moves to the wanted one; FAILED stop, plan or test keep their own rules', () => {
    expect(tells(view('a', [node('a', { web: 'maint FAILED' })], { web: 'start' }))).toEqual(['web start']);
    // a stop level that failed is stopped: planned again like any stopped group, no failure counted
    const stopFailed = decide(view('a', [node('a', { web: 'stop FAILED' })], { web: 'start' }), cfg, 10_000, always);
    expect(stopFailed.actions.map((x) => x.level)).toEqual(['plan']);
    expect(stopFailed.memory.failed.has('web')).toBe(false);
    const test = decide(view('a', [node('a', { web: 'test FAILED' })], { web: 'start' }), cfg, 10_000, always);
    expect(test.actions.map((x) => x.reason)).toEqual(['test failed here']);
    // a plan is never FAILED in practice; if it were, it is not taken for a failure at the level
    expect(tells(view('a', [node('a', { web: 'plan FAILED' })], { web: 'start' }))).toEqual([]);
  });

  it('no quorum and hactl changes come first: stop without recording a failure', () => {
    const d = decide(view('a', [node('a', { web: 'start FAILED' })], { web: 'start' }, { quorum: false }), cfg, 10_000, always);
    expect(d.actions.map((x) => x.level)).toEqual(['stop']);
    expect(d.memory.failed.has('web')).toBe(false);
    const unwanted = decide(view('a', [node('a', { web: 'start FAILED' })], { web: 'stop' }), cfg, 10_000, always);
    expect(unwanted.actions.map((x) => x.reason)).toEqual(['hactl wants it stopped']);
    expect(unwanted.memory.failed.has('web')).toBe(false);
  });
});

describe('view: pieces of the monitor loop (src/monitor/view.ts)', () => {
  it('a torn clstat read (no final newline) counts as unreadable: its cut-off group lines would look stopped', () => {
    const whole = '# peerha node=b pid=1 seq=7 time=x\nCluster::Init::Group web start DONE\n';
    expect(readPeerClstat(whole).groups?.get('web')).toEqual({ level: 'start', state: 'DONE' });
    const torn = readPeerClstat(whole.slice(0, 40));
    expect(torn.obs).toEqual({ seq: null, left: false });
    expect(torn.groups).toBeNull();
    expect(readPeerClstat(null).obs.seq).toBeNull();
  });

  it('readComplete: every up, unfenced peer had a readable clstat this cycle', () => {
    const live = new Map([
      ['b', { state: 'up' as const, seq: 3, silentMs: 0 }],
      ['c', { state: 'stale' as const, seq: 9, silentMs: 9000 }],
    ]);
    expect(readComplete(live, new Map([['b', { seq: 3, left: false }]]), () => false)).toBe(true);
    expect(readComplete(live, new Map([['b', { seq: null, left: false }]]), () => false)).toBe(false);
    expect(readComplete(live, new Map(), () => false)).toBe(false);
    expect(readComplete(live, new Map(), (n) => n === 'b')).toBe(true);
  });

  it('released, live count, settling, self-fence and petting as the monitor computes them', () => {
    expect(isReleased('stale', true)).toBe(true);
    expect(isReleased('stale', false)).toBe(false);
    expect(isReleased('fenced', false)).toBe(true);
    expect(isReleased('left', false)).toBe(true);
    expect(isReleased('up', true)).toBe(false);
    const live = new Map([
      ['b', { state: 'up' as const, seq: 3, silentMs: 0 }],
      ['c', { state: 'up' as const, seq: null, silentMs: 0 }],
      ['d', { state: 'up' as const, seq: 5, silentMs: 0 }],
    ]);
    expect(liveCount(live, (n) => n === 'd')).toBe(2);
    expect(isSettling(100, 0, 100, 50)).toBe(true);
    expect(isSettling(250, 0, 100, 50)).toBe(false);
    expect(selfFenceState({ now: 1000, lastCycleEnd: 900, lastPet: 900, lastPublishOk: 900, timeoutMs: 1000 }).selfFence).toBe(false);
    expect(selfFenceState({ now: 1000, lastCycleEnd: 400, lastPet: 900, lastPublishOk: 900, timeoutMs: 1000 })).toMatchObject({ frozen: true, selfFence: true });
    expect(selfFenceState({ now: 1000, lastCycleEnd: 900, lastPet: 900, lastPublishOk: 400, timeoutMs: 1000 })).toMatchObject({ frozen: false, publishFailing: true, selfFence: true });
    expect(petAfterCycle({ selfFence: false, cycleEnd: 1000, now: 1000, lastPet: 400, lastPublishOk: 1000, timeoutMs: 1000 })).toBe('frozen-during-cycle');
    expect(petAfterCycle({ selfFence: false, cycleEnd: 1000, now: 1000, lastPet: 900, lastPublishOk: 1000, timeoutMs: 1000 })).toBe('pet');
    expect(petAfterCycle({ selfFence: true, cycleEnd: 1000, now: 1000, lastPet: 900, lastPublishOk: 400, timeoutMs: 1000 })).toBe('publish-failing');
    expect(spawnRefused(1000, 400, 1000, false)).toBe(true);
    expect(spawnRefused(1000, 900, 1000, true)).toBe(true);
    expect(spawnRefused(1000, 900, 1000, false)).toBe(false);
  });

  it('handovers: a left clstat starts one, a live clstat drops it, expiry after the ttl', () => {
    const left = readPeerClstat('# peerha node=b pid=1 seq=7 time=x left=1\n# handover web c\n');
    const h = nextHandover(undefined, left, 100);
    expect(h).toMatchObject({ seq: 7, at: 100 });
    expect(nextHandover(h, left, 500)).toBe(h); // same seq: keeps the first sighting
    expect(nextHandover(h, readPeerClstat(null), 500)).toBe(h);
    expect(nextHandover(h, readPeerClstat('# peerha node=b pid=2 seq=1 time=x\n'), 500)).toBeUndefined();
    const fresh = freshHandovers(new Map([['b', h!]]), 100 + handoverTtlMs(1000, 100, 0), handoverTtlMs(1000, 100, 0));
    expect(fresh.map.get('web')).toBe('c');
    expect(freshHandovers(new Map([['b', h!]]), 101 + handoverTtlMs(1000, 100, 0), handoverTtlMs(1000, 100, 0)).expired).toEqual(['b']);
  });
});
