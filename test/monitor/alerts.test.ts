// Alerts in the pure core: which events are raised, by whom, and the hand-off of the alerted view
// when the observer dies; the alerts: configuration; the sequence across a restart.
import { describe, expect, it } from 'vitest';
import { formatClstat, parseClstat } from '../../src/config/clstat.js';
import { parseMonitorConfig, resolveMonitorConfig, type FenceConfig } from '../../src/config/monitor.js';
import type { GroupStatus } from '../../src/init/engine.js';
import type { LivenessView } from '../../src/cluster/liveness.js';
import { adoptAlerted, adoptAlertedText, formatAlerted, groupEvents, nodeEvent, observeCluster, parseAlerted, type Alert } from '../../src/monitor/alerts.js';
import type { MonitorEffect, MonitorEvent } from '../../src/monitor/events.js';
import { REAL_LOGIC } from '../../src/monitor/logic.js';
import { initialState, type MonitorSettings, type MonitorState } from '../../src/monitor/state.js';
import { step } from '../../src/monitor/step.js';
import { Turn } from '../../src/monitor/turn.js';

const NO_FENCE: FenceConfig = { timeoutMs: 1000, action: 'off', delayBaseMs: 0, delayMaxMs: 0, priorityDelayMs: 0, retryMaxMs: 4000, methods: [] };

function settings(node: string): MonitorSettings {
  return { root: '/srv/ha', node, cycleMs: 100, timeoutMs: 400, stopTimeoutMs: 100, stopLevel: { default: 'stop', groups: {} }, visibilityLagMs: 0, balance: 1.5, failCooldownCycles: 10, quorum: { policy: 'none' }, fence: NO_FENCE, selfFence: true, nice: 0, stateDir: '/run/peerha' };
}

const alertsOf = (effects: readonly MonitorEffect[]): Alert[] => effects.flatMap((e) => (e.type === 'alert' ? [e.alert] : []));

/** One monitor's alert duty, driven by hand: its liveness view, quorum, and what it read. */
class Node {
  state: MonitorState;
  readonly raised: Alert[] = [];
  now = 1000;
  /** `watched`: peers whose heartbeat it saw move already (a monitor that ran a while). */
  constructor(readonly name: string, watched = ['n1', 'n2', 'n3']) {
    this.state = { ...initialState(settings(name), 1, 1), seq: 10, firstSeqs: new Map(watched.map((n) => [n, -1])) };
  }

  /** One cycle's alert decision with this view of the peers. */
  cycle(peers: Record<string, LivenessView['state']>, quorumOk = true): void {
    this.now += 100;
    // A live peer's heartbeat moves every cycle; a dead one's stands still.
    const lastLive = new Map(Object.entries(peers).map(([n, s]) => [n, { state: s, seq: s === 'up' ? this.now : 5, silentMs: 0 } satisfies LivenessView]));
    const t = new Turn({ ...this.state, lastLive, seq: this.state.seq + 1, landedSeq: this.state.seq }, { type: 'failed', error: '', now: this.now, wall: 1.7e12 + this.now } as MonitorEvent, REAL_LOGIC);
    observeCluster(t, { quorumOk, live: 1 + Object.values(peers).filter((s) => s === 'up').length, configErrors: [], ready: true });
    this.state = t.state;
    this.raised.push(...alertsOf(t.effects));
  }

  /** Read a peer's clstat: its published alerted view (if any), as the cycle does. */
  read(from: Node): void {
    const text = formatClstat({ header: { node: from.name, pid: 1, seq: 1, time: '' }, groups: [], ...(from.state.alerted.gen > 0 ? { alerted: formatAlerted(from.state.alerted) } : {}) });
    const a = parseClstat(text).alerted;
    const draft = { alerted: this.state.alerted };
    if (a !== undefined) adoptAlerted(draft, parseAlerted(a));
    this.state = { ...this.state, alerted: draft.alerted };
  }
}

/** Every node/quorum alert raised across the nodes, as `event node`. */
const cluster = (...nodes: Node[]): string[] => nodes.flatMap((n) => n.raised.map((a) => `${a.event} ${a.node}`)).sort();

describe('node events', () => {
  it('a node never announced that is already left (a new node seen before its first heartbeat) raises nothing', () => {
    expect(nodeEvent(undefined, 'left')).toBeNull();
    expect(nodeEvent('up', 'left')).toBe('node_left');
    expect(nodeEvent(undefined, 'up')).toBe('node_up');
  });
});

describe('node and quorum alerts: once for the cluster', () => {
  it('only the lowest live node alerts; the others mirror its view', () => {
    const [n1, n2, n3] = [new Node('n1'), new Node('n2'), new Node('n3')];
    n1.cycle({ n2: 'up', n3: 'up' });
    n2.cycle({ n1: 'up', n3: 'up' });
    n3.cycle({ n1: 'up', n2: 'up' });
    expect(cluster(n1, n2, n3)).toEqual(['node_up n1', 'node_up n2', 'node_up n3']);
    expect(n1.raised.map((a) => a.sequence)).toEqual([11000, 11001, 11002]);
    n2.read(n1);
    n3.read(n1);
    // n3 dies; both survivors see it; only n1 alerts.
    n1.cycle({ n2: 'up', n3: 'stale' });
    n2.cycle({ n1: 'up', n3: 'stale' });
    expect(cluster(n1, n2)).toEqual(['node_stale n3', 'node_up n1', 'node_up n2', 'node_up n3']);
  });

  it('the observer dies before alerting what it saw: the next observer alerts it, once', () => {
    const [n1, n2, n3] = [new Node('n1'), new Node('n2'), new Node('n3')];
    n1.cycle({ n2: 'up', n3: 'up' });
    n2.read(n1);
    // n3 goes stale; n2 sees it first (n1 is still the observer: n2 raises nothing) …
    n2.cycle({ n1: 'up', n3: 'stale' });
    expect(n2.raised).toEqual([]);
    // … and n1 is killed before its next cycle. Once n2 holds n1 stale too, n2 observes.
    n2.cycle({ n1: 'stale', n3: 'stale' }, false);
    expect(n2.raised.map((a) => `${a.event} ${a.node}`)).toEqual(['node_stale n1', 'node_stale n3', 'quorum_lost n2']);
    expect(cluster(n1, n2, n3).filter((e) => !e.startsWith('node_up'))).toEqual(['node_stale n1', 'node_stale n3', 'quorum_lost n2']);
  });

  it('the observer dies after alerting and publishing: the next observer does not repeat it', () => {
    const [n1, n2] = [new Node('n1'), new Node('n2')];
    n1.cycle({ n2: 'up', n3: 'up' });
    n1.cycle({ n2: 'up', n3: 'stale' });
    n2.read(n1);
    n2.cycle({ n1: 'stale', n3: 'stale' });
    expect(n1.raised.filter((a) => a.event === 'node_stale').map((a) => a.node)).toEqual(['n3']);
    expect(n2.raised.map((a) => `${a.event} ${a.node}`)).toEqual(['node_stale n1']);
  });

  it('a node that restarts goes on from its own last clstat, and rejoining nodes are alerted up by the new lowest', () => {
    const [n1, n2] = [new Node('n1'), new Node('n2')];
    n1.cycle({ n2: 'up' });
    n2.read(n1);
    n2.cycle({ n1: 'stale' }, false);
    expect(n2.raised.map((a) => a.event)).toEqual(['node_stale', 'quorum_lost']);
    // n1 comes back (a new run); it reads n2's view and observes. A peer first seen reads as up
    // for a timeout whether it lives or not: nothing is said of it until its heartbeat moves.
    const back = new Node('n1', []);
    back.read(n2);
    back.cycle({ n2: 'up', n3: 'up' });
    expect(back.raised.map((a) => `${a.event} ${a.node}`)).toEqual(['node_up n1']);
    back.cycle({ n2: 'up', n3: 'stale' });
    expect(back.raised.map((a) => `${a.event} ${a.node}`)).toEqual(['node_up n1', 'quorum_regained n1']);
  });

  it('the alerted line survives clstat formatting and parsing; garbage reads as nothing', () => {
    const v = { gen: 7, quorum: false, config: 'abc', nodes: new Map([['n1', 'up'], ['n2', 'fenced']] as const) };
    expect(parseAlerted(formatAlerted(v))).toEqual(v);
    expect(parseAlerted('gen=x quorum=ok')).toBeNull();
    expect(parseClstat('# peerha node=n1 pid=1 seq=1 time=t\n').alerted).toBeUndefined();
  });

  it('a published alerted view is adopted only when its gen is newer than ours', () => {
    const mine = { gen: 7, quorum: true, config: '', nodes: new Map([['n1', 'up']] as const) };
    const state = { alerted: mine };
    adoptAlertedText(state, formatAlerted({ ...mine, gen: 7, quorum: false }));
    adoptAlertedText(state, 'gen=6 quorum=lost config=- nodes=n1:stale');
    expect(state.alerted).toBe(mine);
    adoptAlertedText(state, 'gen=8 quorum=lost config=- nodes=n1:stale');
    expect(state.alerted).toEqual({ gen: 8, quorum: false, config: '', nodes: new Map([['n1', 'stale']]) });
    adoptAlertedText(state, 'gen=x nodes=n1:up');
    expect(state.alerted.gen).toBe(8);
  });
});

describe('group alerts: raised by the node the group runs on', () => {
  const g = (over: Partial<GroupStatus>): GroupStatus => ({ group: 'web', level: 'start', state: 'DONE', notes: [], procs: [], transitions: [], ...over });
  const run = (before: GroupStatus[], after: GroupStatus[], owner?: string, up: Record<string, string> = {}): Alert[] => {
    const base = initialState(settings('n2'), 1, 1);
    const t = new Turn({ ...base, seq: 3, groupsUp: new Map(Object.entries(up)), owners: owner ? new Map([['web', { node: owner, failovers: 0 }]]) : new Map() }, { type: 'failed', error: '', now: 1, wall: 1.7e12 } as MonitorEvent, REAL_LOGIC);
    groupEvents(t, before, after);
    return alertsOf(t.effects);
  };

  it('started, and a failover when it ran elsewhere before', () => {
    expect(run([g({ state: 'STARTING' })], [g({})]).map((a) => a.event)).toEqual(['group_started']);
    const [started, failover] = run([], [g({})], 'n1');
    expect(started?.event).toBe('group_started');
    expect(failover).toMatchObject({ event: 'failover', node: 'n2', group: 'web', level: 'start', fromNode: 'n1', desc: 'Group web moved from n1 to n2.' });
    expect(run([g({ state: 'STARTING' })], [g({})], 'n2').map((a) => a.event)).toEqual(['group_started']);
    // already alerted at this level (a local restart came back); plan and test lead to a level
    expect(run([g({ state: 'STARTING' })], [g({})], 'n1', { web: 'start' })).toEqual([]);
    expect(run([], [g({ level: 'test', state: 'PASSED' })])).toEqual([]);
  });

  it('stopped once its stop level finished; failed; health checks that restart it', () => {
    const up = { web: 'start' };
    expect(run([g({})], [g({ level: 'stop', state: 'STARTING' })], undefined, up)).toEqual([]);
    expect(run([g({ level: 'stop', state: 'STARTING' })], [g({ level: 'stop', state: 'DONE' })], undefined, up).map((a) => [a.event, a.level])).toEqual([['group_stopped', 'start']]);
    expect(run([g({})], [], undefined, up).map((a) => a.event)).toEqual(['group_stopped']);
    // never started here (its test failed, say): no stop to tell of
    expect(run([g({ level: 'test', state: 'FAILED' })], [g({ level: 'stop', state: 'DONE' })])).toEqual([]);
    expect(run([g({})], [g({ state: 'FAILED' })], undefined, up).map((a) => a.event)).toEqual(['group_failed']);
    const note = 'restarting here: web-chk failed 2 checks in a row (restart 1 of 1 within 1 min)';
    expect(run([g({ restarts: 0 })], [g({ state: 'STOPPING', restarts: 1, notes: [note] })], undefined, up).map((a) => [a.event, a.desc])).toEqual([['health_failed', `Group web failed its health checks on n2: ${note}.`]]);
  });
});

describe('alert sequence', () => {
  it('strictly increases across a restart: it starts past the last clstat of the previous run', () => {
    let state = initialState(settings('n1'), 1, 1);
    let wall = 1.7e12;
    const send = (ev: Record<string, unknown>): MonitorEffect[] => {
      const r = step(state, { ...ev, now: 1000, wall: (wall += 1) } as MonitorEvent);
      state = r.state;
      return [...r.effects];
    };
    send({ type: 'start' });
    const halt = send({ type: 'cleaned' }).find((e) => e.type === 'io')!;
    const mkdir = send({ type: 'io', tag: (halt as { tag: unknown }).tag, results: [{ op: 'read', read: null }] }).find((e) => e.type === 'io')!;
    const read = send({ type: 'io', tag: (mkdir as { tag: unknown }).tag, results: [{ op: 'mkdir', error: null }, { op: 'mkdir', error: null }] }).find((e) => e.type === 'io')!;
    const own = formatClstat({ header: { node: 'n1', pid: 9, seq: 41, time: '', left: true }, groups: [] });
    send({ type: 'io', tag: (read as { tag: unknown }).tag, results: [{ op: 'read', read: { text: own, sig: null } }] });
    // The previous run used at most (41 + 1) × 1000 + what it raised after its last write.
    expect(state.alertSeq).toBe(42_999);
  });
});

describe('alerts: configuration', () => {
  const parse = (yaml: string) => parseMonitorConfig(yaml, 'peerha.yaml');

  it('reads commands, filters and timeouts as durations', () => {
    const r = parse('root: /srv\nalerts:\n  - command: /bin/true\n  - command: /usr/bin/mail.sh\n    events: [failover, node_stale]\n    timeout: 1.5s\n');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const c = resolveMonitorConfig(r.config, {}, {}, 'n1');
    expect(c.ok && c.config.alerts).toEqual([
      { command: '/bin/true', timeoutMs: 10_000, line: 3 },
      { command: '/usr/bin/mail.sh', events: ['failover', 'node_stale'], timeoutMs: 1500, line: 4 },
    ]);
  });

  it('file:line errors for unknown events, bad timeouts, unknown keys, a missing command', () => {
    const errors = (yaml: string) => {
      const r = parse(yaml);
      return r.ok ? [] : r.errors.map((e) => `${e.line}: ${e.message}`);
    };
    expect(errors('alerts:\n  - command: x\n    events:\n      - node_up\n      - node_down\n')).toEqual([expect.stringMatching(/^5: alerts\[0\]\.events: unknown event "node_down" \(expected one of node_up, /)]);
    expect(errors('alerts:\n  - command: x\n    timeout: soon\n')).toEqual([expect.stringMatching(/^3: alerts\[0\]\.timeout: expected a duration/)]);
    expect(errors('alerts:\n  - command: x\n    timeout: 0s\n')).toEqual(['3: alerts[0].timeout: must be more than 0']);
    expect(errors('alerts:\n  - command: x\n    event: [failover]\n')).toEqual(['3: alerts[0]: unknown key "event" (expected command, events, timeout)']);
    expect(errors('alerts:\n  - events: [failover]\n')).toEqual([expect.stringMatching(/^2: alerts\[0\]\.command: expected a shell command/)]);
    expect(errors('alerts: /bin/true\n')).toEqual([expect.stringMatching(/^1: alerts expected a list of alert commands/)]);
  });
});
