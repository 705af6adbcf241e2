import { describe, expect, it } from 'vitest';
import { parseCltab, type CltabEntry } from '../../src/config/cltab.js';
import {
  DEFAULT_TIMINGS,
  FRESH_RESPAWN,
  GROUP_TRANSITIONS,
  PROC_TRANSITIONS,
  groupReact,
  groupResult,
  newProc,
  procStep,
  respawnDelay,
  type GroupState,
  type Proc,
  type ProcEvent,
  type ProcView,
  type RespawnMemory,
} from '../../src/init/machines.js';

const ctx = { now: 0, random: 0.5, timings: DEFAULT_TIMINGS };
const exit = (code: number | null, uptimeMs = 100): ProcEvent => ({ type: 'EXIT', code, signal: null, uptimeMs });

function entries(text: string): CltabEntry[] {
  const r = parseCltab(text, 'cltab');
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('; '));
  return [...r.cltab.entries];
}

function run(p: Proc, ...events: ProcEvent[]): { proc: Proc; effects: string[] } {
  const effects: string[] = [];
  for (const e of events) {
    const s = procStep(p, e, ctx);
    p = s.proc;
    for (const f of s.effects) effects.push(f.type === 'signal' ? f.signal : f.type === 'timer' ? `timer:${f.name}:${f.ms}` : f.type);
  }
  return { proc: p, effects };
}

describe('process machine', () => {
  it('wait: runs in the foreground, DONE after exit whatever the status', () => {
    const r = run(newProc('wait'), { type: 'START' }, exit(3));
    expect(r.proc.state).toBe('DONE');
    expect(r.effects).toEqual(['spawn']);
  });

  it('test: exit 0 → PASS, non-zero, signal or exec failure (127) → FAIL', () => {
    expect(run(newProc('test'), { type: 'START' }, exit(0)).proc.state).toBe('PASS');
    expect(run(newProc('test'), { type: 'START' }, exit(1)).proc.state).toBe('FAIL');
    expect(run(newProc('test'), { type: 'START' }, exit(null)).proc.state).toBe('FAIL');
    expect(run(newProc('test'), { type: 'START' }, exit(127)).proc.state).toBe('FAIL');
  });

  it('§6 item 10: off never spawns and does not loop', () => {
    const r = run(newProc('off'), { type: 'START' }, { type: 'START' });
    expect(r.proc.state).toBe('CONFIGURED');
    expect(r.effects).toEqual([]);
  });

  it('START of a finished entry re-runs nothing', () => {
    for (const [mode, code] of [['wait', 0], ['test', 0], ['test', 1], ['once', 0]] as const) {
      const r = run(newProc(mode), { type: 'START' }, exit(code), { type: 'START' });
      expect(r.effects).toEqual(['spawn']);
    }
  });

  it('stop escalates SIGINT → SIGTERM at termAfter → SIGKILL at killAfter, then repeats SIGKILL', () => {
    const r = run(newProc('respawn'), { type: 'START' }, { type: 'STOP' }, { type: 'ESCALATE' }, { type: 'ESCALATE' }, { type: 'ESCALATE' });
    expect(r.effects).toEqual([
      'spawn',
      'SIGINT',
      `timer:escalate:${DEFAULT_TIMINGS.termAfterMs}`,
      'SIGTERM',
      `timer:escalate:${DEFAULT_TIMINGS.killAfterMs - DEFAULT_TIMINGS.termAfterMs}`,
      'SIGKILL',
      `timer:escalate:${DEFAULT_TIMINGS.killRepeatMs}`,
      'SIGKILL',
      `timer:escalate:${DEFAULT_TIMINGS.killRepeatMs}`,
    ]);
    expect(r.proc.state).toBe('STOPPING');
  });

  it('a stop finishes only when the whole process group is gone, not when the leader exits', () => {
    const r = run(newProc('once'), { type: 'START' }, { type: 'STOP' }, exit(null));
    expect(r.proc.state).toBe('STOPPING');
    const gone = procStep(r.proc, { type: 'GONE' }, ctx);
    expect(gone.proc.state).toBe('CONFIGURED');
    expect(gone.effects).toEqual([{ type: 'cancelTimer', name: 'escalate' }]);
  });

  it('§6 item 22: stopping a finished entry whose group is gone sends no signal', () => {
    const r = run(newProc('once'), { type: 'START' }, exit(0), { type: 'GONE' }, { type: 'STOP' });
    expect(r.proc.state).toBe('CONFIGURED');
    expect(r.effects).toEqual(['spawn']);
  });

  it('§6 item 15: a finished entry whose group still has members is stopped like a running one', () => {
    const r = run(newProc('wait'), { type: 'START' }, exit(0), { type: 'STOP' });
    expect(r.proc.state).toBe('STOPPING');
    expect(r.effects).toContain('SIGINT');
  });

  it('respawn: restarts at once and sweeps what the previous instance left', () => {
    const r = run(newProc('respawn'), { type: 'START' }, exit(1));
    expect(r.proc.state).toBe('RUNBG');
    expect(r.effects).toEqual(['spawn', 'sweep', 'spawn']);
  });

  it('every state has a table row, and unlisted events are ignored', () => {
    for (const state of Object.keys(PROC_TRANSITIONS) as Array<keyof typeof PROC_TRANSITIONS>) {
      const p: Proc = { ...newProc('wait'), state };
      for (const type of ['START', 'STOP', 'GONE', 'ESCALATE', 'RESPAWN'] as const) {
        const s = procStep(p, { type } as ProcEvent, ctx);
        if (!PROC_TRANSITIONS[state][type]) {
          expect(s.proc).toBe(p);
          expect(s.effects).toEqual([]);
        }
      }
    }
  });
});

describe('respawn backoff (§6 item 21)', () => {
  const t = DEFAULT_TIMINGS;

  function loop(n: number, uptimeMs: number, gapMs: number): Array<{ delayMs: number; memory: RespawnMemory }> {
    let memory = FRESH_RESPAWN;
    let now = 0;
    const out = [];
    for (let i = 0; i < n; i++) {
      now += uptimeMs;
      const r = respawnDelay(memory, uptimeMs, now, 0.5, t);
      out.push(r);
      memory = r.memory;
      now += r.delayMs + gapMs;
    }
    return out;
  }

  it('restarts at once for the first 5 quick exits, then backs off doubling to the cap', () => {
    const delays = loop(14, 10, 0).map((r) => r.delayMs);
    expect(delays.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
    expect(delays.slice(5, 13)).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
  });

  it('never gives up: the delay stays at the cap forever', () => {
    expect(loop(200, 10, 0).at(-1)!.delayMs).toBe(60000);
  });

  it('an instance that stays up for resetAfter resets the memory', () => {
    const r = respawnDelay({ exits: [1, 2, 3, 4, 5, 6], backoffMs: 32000 }, t.resetAfterMs, 100_000, 0.5, t);
    expect(r).toEqual({ delayMs: 0, memory: FRESH_RESPAWN });
  });

  it('slow exits (outside the burst window) never trigger backoff', () => {
    expect(loop(50, 2500, 0).every((r) => r.delayMs === 0)).toBe(true);
  });

  it('jitter stays within ±10 %', () => {
    const mem = { exits: [1, 2, 3, 4, 5, 6], backoffMs: 8000 };
    for (const rnd of [0, 0.25, 0.999]) {
      const d = respawnDelay(mem, 10, 7, rnd, t).delayMs;
      expect(d).toBeGreaterThanOrEqual(16000 * 0.9);
      expect(d).toBeLessThanOrEqual(16000 * 1.1);
    }
  });

  it('shows the backoff in a note', () => {
    let p: Proc = { ...newProc('respawn'), state: 'RUNBG', groupAlive: true, respawn: { exits: [1, 2, 3, 4, 5], backoffMs: 0 } };
    p = procStep(p, exit(1, 10), { ...ctx, now: 6 }).proc;
    expect(p.state).toBe('BACKOFF');
    expect(p.note).toBe('respawn backoff 1s');
    expect(procStep(p, { type: 'RESPAWN' }, ctx).proc.state).toBe('RUNBG');
  });
});

describe('group machine', () => {
  const es = entries(
    [
      'g:w1:12:wait:sleep 3',
      'g:a1:1:wait:true',
      'g:b2:2:wait:true',
      'g:t1:t:test:true',
      'g:t2:t:test:true',
      'g:o1:1:once:sleep 9',
      'g:off1:1:off:true',
    ].join('\n'),
  );
  const view = (tag: string, state: ProcView['state']): [string, ProcView] => [tag, { state, entry: es.find((e) => e.tag === tag)! }];

  it('a tell interrupts every state', () => {
    for (const s of Object.keys(GROUP_TRANSITIONS) as GroupState[]) expect(GROUP_TRANSITIONS[s].TELL).toBe('STOPPING');
  });

  it('starts entries in file order; wait blocks, once does not; off is skipped', () => {
    const m = { state: 'STARTING' as GroupState, level: '1', entries: es };
    expect(groupReact(m, new Map()).effects).toEqual([{ type: 'start', tag: 'w1' }]);
    expect(groupReact(m, new Map([view('w1', 'RUNFG')])).effects).toEqual([]);
    expect(groupReact(m, new Map([view('w1', 'DONE')])).effects).toEqual([{ type: 'start', tag: 'a1' }]);
    const done = groupReact(m, new Map([view('w1', 'DONE'), view('a1', 'DONE'), view('o1', 'RUNBG')]));
    expect(done.state).toBe('DONE');
  });

  it('§6 item 11: the level is the group\'s; a kept process finishing later cannot move it', () => {
    // Told 2 while w1 (levels 12) still runs: w1 is kept, a1 (level 1) is stopped and dropped.
    const m = { state: 'STOPPING' as GroupState, level: '2', entries: es };
    const r = groupReact(m, new Map([view('w1', 'RUNFG'), view('a1', 'DONE')]));
    expect(r.effects).toEqual([{ type: 'stop', tag: 'a1' }]);
    const r2 = groupReact(m, new Map([view('w1', 'RUNFG'), view('a1', 'CONFIGURED')]));
    expect(r2.state).toBe('STARTING');
    expect(r2.effects).toEqual([{ type: 'discard', tag: 'a1' }]);
    const r3 = groupReact({ ...m, state: 'STARTING' }, new Map([view('w1', 'DONE')]));
    expect(r3.effects).toEqual([{ type: 'start', tag: 'b2' }]);
  });

  it('results follow reference §2.6', () => {
    expect(groupResult([], [])).toBe('ALL_DONE');
    expect(groupResult(['PASS', 'PASS'], ['test', 'test'])).toBe('ALL_PASSED');
    expect(groupResult(['PASS', 'FAIL'], ['test', 'test'])).toBe('ANY_FAILED');
    expect(groupResult(['PASS', 'DONE'], ['test', 'wait'])).toBe('ALL_DONE');
    expect(groupResult(['FAIL', 'DONE'], ['test', 'respawn'])).toBe('ANY_FAILED');
  });

  it('a level with no entries stops everything and settles DONE at that level', () => {
    const m = { state: 'STOPPING' as GroupState, level: '99', entries: es };
    expect(groupReact(m, new Map([view('o1', 'RUNBG')])).effects).toEqual([{ type: 'stop', tag: 'o1' }]);
    expect(groupReact(m, new Map([view('o1', 'CONFIGURED')])).state).toBe('DONE');
  });

  it('§6 item 16: halting stops the processes of PASSED/FAILED groups too', () => {
    const m = { state: 'HALTING' as GroupState, level: 't', entries: es };
    const r = groupReact(m, new Map([view('t1', 'PASS'), view('o1', 'RUNBG')]));
    expect(r.effects).toEqual([{ type: 'stop', tag: 't1' }, { type: 'stop', tag: 'o1' }]);
    expect(groupReact(m, new Map([view('t1', 'CONFIGURED')])).state).toBe('CONFIGURED');
  });

  it('an edited command is stopped and started afresh at the same level', () => {
    const edited = entries('g:o1:1:once:sleep 10');
    const m = { state: 'STOPPING' as GroupState, level: '1', entries: edited };
    expect(groupReact(m, new Map([view('o1', 'RUNBG')])).effects).toEqual([{ type: 'stop', tag: 'o1' }]);
  });
});
