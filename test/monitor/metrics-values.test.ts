// The pure parts of the metrics listener: the listen address, its config key, and the values
// derived from the monitor's state.
import { describe, expect, it } from 'vitest';
import { formatListen, parseListen } from '../../src/config/listen.js';
import { formatError, parseMonitorConfig, resolveMonitorConfig } from '../../src/config/monitor.js';
import type { Hastat, HastatFence } from '../../src/cluster/hastat.js';
import type { MonitorEvent } from '../../src/monitor/events.js';
import { clusterMetrics, stepFacts } from '../../src/monitor/metrics.js';
import { initialState, type MonitorSettings, type MonitorState } from '../../src/monitor/state.js';
import { step } from '../../src/monitor/step.js';

describe('metrics.listen', () => {
  it('a bare port binds to localhost; a host or [IPv6] only when written', () => {
    expect(parseListen('9664')).toEqual({ host: '127.0.0.1', port: 9664 });
    expect(parseListen('127.0.0.1:9664')).toEqual({ host: '127.0.0.1', port: 9664 });
    expect(parseListen('0.0.0.0:80')).toEqual({ host: '0.0.0.0', port: 80 });
    expect(parseListen('mon-1.example.org:9664')).toEqual({ host: 'mon-1.example.org', port: 9664 });
    expect(parseListen('[::1]:9664')).toEqual({ host: '::1', port: 9664 });
    expect(parseListen('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    expect(formatListen({ host: '::1', port: 1 })).toBe('[::1]:1');
    expect(formatListen({ host: '127.0.0.1', port: 9664 })).toBe('127.0.0.1:9664');
  });

  it('refuses what is not an address', () => {
    for (const bad of ['', ':9664', 'host:', 'host:port', '70000', '1.2.3.4:65536', '[::1]', '[nothost]:1', 'a b:1', 'http://x:1', '-x:1']) {
      expect(parseListen(bad), bad).toHaveProperty('error');
    }
  });

  it('in peerha.yaml: off by default, parsed with file:line errors', () => {
    const resolve = (text: string) => {
      const f = parseMonitorConfig(text, 'p.yaml');
      if (!f.ok) return f.errors.map(formatError);
      const r = resolveMonitorConfig(f.config, {}, {}, 'host');
      return r.ok ? r.config.metrics : r.errors.map(formatError);
    };
    expect(resolve('root: /srv/ha\n')).toBeUndefined();
    expect(resolve('root: /srv/ha\nmetrics:\n')).toBeUndefined();
    expect(resolve('root: /srv/ha\nmetrics:\n  listen: 9664\n')).toEqual({ listen: { host: '127.0.0.1', port: 9664 } });
    expect(resolve('root: /srv/ha\nmetrics: { listen: "[::1]:9000" }\n')).toEqual({ listen: { host: '::1', port: 9000 } });
    expect(resolve('root: /srv/ha\nmetrics:\n  listen: nope\n')).toEqual(['p.yaml:3: metrics.listen "nope": expected PORT, HOST:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9664']);
    expect(resolve('root: /srv/ha\nmetrics:\n  listne: 1\n')).toEqual(['p.yaml:3: unknown key "metrics.listne" (did you mean "metrics.listen"?)']);
    expect(resolve('root: /srv/ha\nmetrics: 9664\n')).toEqual(['p.yaml:2: metrics: 9664: expected a mapping of listen']);
  });
});

function settings(): MonitorSettings {
  return { root: '/srv/ha', node: 'n1', cycleMs: 100, timeoutMs: 400, stopTimeoutMs: 100, stopLevel: { default: 'stop', groups: {} }, visibilityLagMs: 0, balance: 1.5, failCooldownCycles: 10, quorum: { policy: 'none' }, fence: { timeoutMs: 1000, action: 'off', delayBaseMs: 0, delayMaxMs: 0, priorityDelayMs: 0, retryMaxMs: 4000, methods: [] }, selfFence: true, nice: 0, stateDir: '/run/peerha' };
}

const HASTAT: Hastat = {
  version: 1,
  node: 'n1',
  time: '2026-01-01T00:00:10.000Z',
  quorum: { ok: true, live: 2, expected: 3, policy: 'majority', reason: '2 of 3' },
  detection: '',
  nodes: { n1: { state: 'up', seq: 9, lastChange: null }, n2: { state: 'up', seq: 4, lastChange: null }, n3: { state: 'stale', seq: 7, lastChange: null } },
  groups: {
    web: { want: 'start', instances: { n2: { level: 'start', state: 'DONE' } }, failovers: 1 },
    db: { want: 'start', instances: { n1: { level: 'start', state: 'STARTING' } } },
    batch: { want: 'plan', instances: { n1: { level: 'plan', state: 'PASSED' } } },
    old: { want: 'stop', instances: {} },
    ghost: { want: null, instances: { n2: { level: 'start', state: 'DONE' } } },
  },
  errors: ['hactl:3: ghost: not in cltab'],
};

describe('clusterMetrics', () => {
  it('is the hastat in numbers, with heartbeat ages as of now', () => {
    const s: MonitorState = {
      ...initialState(settings(), 1, 1),
      lastHastat: HASTAT,
      lastHastatAt: 9_000,
      lastPublishOk: 9_500,
      peers: new Map([
        ['n2', { seq: 4, lastChange: 9_800, lastRead: 9_800, left: false }],
        ['n3', { seq: 7, lastChange: 2_000, lastRead: 9_800, left: false }],
      ]),
      owners: new Map([
        ['web', { node: 'n2', failovers: 1 }],
        ['gone', { node: 'n1', failovers: 2 }],
      ]),
    };
    const m = clusterMetrics(s, 10_000);
    expect(m.nodes).toEqual([
      { node: 'n1', state: 'up', heartbeatAgeSeconds: 0.5 },
      { node: 'n2', state: 'up', heartbeatAgeSeconds: 0.2 },
      { node: 'n3', state: 'stale', heartbeatAgeSeconds: 8 },
    ]);
    expect(m.quorum).toBe(true);
    expect(m.liveNodes).toBe(2);
    expect(m.groupsWanted).toBe(3); // web, db, batch: not old (stop) nor ghost (not wanted)
    expect([...m.groupsRunning]).toEqual([['n1', 1], ['n2', 1], ['n3', 0]]); // db is still starting
    expect(m.groupsNotRunning).toBe(1);
    expect(m.failovers).toBe(3); // a group no longer in hactl still counts: the counter never goes down
    expect(m.errors).toBe(1);
    expect(m.hastatAgeSeconds).toBe(1);
  });

  it('before the first hastat: nothing known, nothing invented', () => {
    const m = clusterMetrics(initialState(settings(), 1, 1), 5);
    expect(m).toMatchObject({ nodes: [], quorum: null, liveNodes: null, groupsWanted: 0, failovers: 0, hastatAgeSeconds: null });
  });
});

describe('stepFacts', () => {
  const base = initialState(settings(), 1, 1);
  const ev = (body: object, now = 1_000): MonitorEvent => ({ now, wall: 0, ...body }) as MonitorEvent;
  const cycle = (id: number, began: number) => ({ id, stage: 'publish' as const, began, tells: 0, selfFence: false, names: [], listed: true, paths: [], verdicts: new Map(), toRead: [] });
  const fence = (node: string, result: HastatFence['result']): HastatFence => ({ time: 't', fencer: 'n1', node, result });

  it('a cycle that ended (or gave way to the next) took from its beginning to this event', () => {
    const during = { ...base, cycle: cycle(3, 400) };
    expect(stepFacts(base, during, ev({ type: 'timer', name: 'cycle' })).cycleSeconds).toBeNull();
    expect(stepFacts(during, during, ev({ type: 'engine', groups: [] })).cycleSeconds).toBeNull();
    expect(stepFacts(during, base, ev({ type: 'io', tag: { kind: 'clstat' }, results: [] }, 650)).cycleSeconds).toBe(0.25);
    expect(stepFacts(during, { ...base, cycle: cycle(4, 650) }, ev({ type: 'io', tag: { kind: 'clstat' }, results: [] }, 650)).cycleSeconds).toBe(0.25);
  });

  it('counts each finished fence run once, by its final result', () => {
    const a = { ...base, fencing: { ...base.fencing, last: new Map([['n2', fence('n2', 'failure')]]) } };
    expect(stepFacts(base, a, ev({ type: 'fenced' })).fences).toEqual(['failure']);
    expect(stepFacts(a, { ...a }, ev({ type: 'io', tag: { kind: 'clstat' }, results: [] })).fences).toEqual([]);
    const b = { ...a, fencing: { ...a.fencing, last: new Map([...a.fencing.last, ['n3', fence('n3', 'success')]]) } };
    expect(stepFacts(a, b, ev({ type: 'fenced' })).fences).toEqual(['success']);
  });

  it('a failed replica write is a replication error; a good one or another write is not', () => {
    const replica = { kind: 'replica', file: 'hactl', from: 'x' };
    expect(stepFacts(base, base, ev({ type: 'io', tag: replica, results: [{ op: 'write', error: 'EIO' }] })).replicationFailed).toBe(true);
    expect(stepFacts(base, base, ev({ type: 'io', tag: replica, results: null, error: 'batch failed' })).replicationFailed).toBe(true);
    expect(stepFacts(base, base, ev({ type: 'io', tag: replica, results: [{ op: 'write', error: null }] })).replicationFailed).toBe(false);
    expect(stepFacts(base, base, ev({ type: 'io', tag: { kind: 'hastat' }, results: [{ op: 'writeJson', error: 'EIO' }] })).replicationFailed).toBe(false);
  });
});

describe('reload', () => {
  it('the listener binds at start: SIGHUP keeps its address and says a restart is needed', () => {
    const at = (port: number) => ({ listen: { host: '127.0.0.1', port } });
    const s = initialState({ ...settings(), metrics: at(9664) }, 1, 1);
    const r = step(s, { type: 'reload', settings: { ...settings(), metrics: at(9665), balance: 2 }, now: 1, wall: 1 });
    expect(r.state.settings.metrics).toEqual(at(9664));
    expect(r.state.settings.balance).toBe(2);
    expect(r.effects).toContainEqual(expect.objectContaining({ type: 'log', level: 'warn', fields: { keys: ['metrics'] } }));
    // Turned on by a reload: still off until a restart.
    const off = step(initialState(settings(), 1, 1), { type: 'reload', settings: { ...settings(), metrics: at(1) }, now: 1, wall: 1 });
    expect(off.state.settings.metrics).toBeUndefined();
    const same = step(s, { type: 'reload', settings: { ...settings(), metrics: at(9664) }, now: 1, wall: 1 });
    expect(same.effects.filter((e) => e.type === 'log' && e.level === 'warn')).toEqual([]);
  });
});
