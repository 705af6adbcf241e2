import { describe, expect, it } from 'vitest';
import type { HactlWant } from '../../src/config/hactl.js';
import { conflictWinner, decide, EMPTY_MEMORY, isActive, type DecideMemory, type NodeView, type View } from '../../src/monitor/decide.js';

const cfg = { cycleMs: 1000, planWindowMs: 2000, balance: 1.5, failCooldownMs: 10_000 };

type Groups = Record<string, string>; // group → "level STATE"

function node(name: string, groups: Groups, state: NodeView['state'] = 'up', released = false): NodeView {
  return {
    name,
    state,
    released,
    groups: new Map(Object.entries(groups).map(([g, ls]) => {
      const [level, st] = ls.split(' ');
      return [g, { level: level!, state: st! }];
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
  it('new is needed and runs nowhere: plan it', () => expect(byGroup.new).toBe('plan'));
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
    const h = (node: string, level: string) => ({ node, instance: { level, state: 'DONE' } });
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

  it('balance: plans with probability min(1, balance/N)', () => {
    const nodes = ['a', 'b', 'c', 'd'].map((n) => node(n, {}));
    expect(tells(view('a', nodes, { web: 'start' }), 10_000, () => 0.37)).toEqual(['web plan']); // p = 0.375
    expect(tells(view('a', nodes, { web: 'start' }), 10_000, () => 0.38)).toEqual([]);
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

  it('a busier node plans with a quarter of the probability', () => {
    const nodes = [node('a', { db: 'start DONE' }), node('b', {})];
    // p = min(1, 1.5/2) × 0.25 = 0.1875
    expect(tells(view('a', nodes, { web: 'start', db: 'start' }), 10_000, () => 0.18)).toEqual(['web plan']);
    expect(tells(view('a', nodes, { web: 'start', db: 'start' }), 10_000, () => 0.19)).toEqual([]);
  });
});
