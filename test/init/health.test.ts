// Health checks (`monitor` entries) and local restarts in the group engine, with real processes:
// a check runs every interval while its group is settled; failing ones restart the group here
// (stop level, then the level again); past max_restarts the group is given up (FAILED at its
// level, its stop level run); a hanging check is killed at its timeout and counts; a respawn entry
// entering crash-loop backoff counts as a restart, so a crash loop is given up too.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatMode, parseCltab } from '../../src/config/cltab.js';
import { Engine, type EngineLogger, type GroupStatus, type ProcStatus } from '../../src/init/engine.js';
import {
  DEFAULT_TIMINGS,
  FRESH_RECOVERY,
  GROUP_TRANSITIONS,
  RECOVERY_TRANSITIONS,
  groupReact,
  keepsProcess,
  newProc,
  procSettled,
  procStep,
  recoveryLimits,
  recoveryStep,
  type Proc,
  type ProcEvent,
  type Recovery,
  type RecoveryEvent,
  type Timings,
} from '../../src/init/machines.js';
import { RealRunner } from '../../src/init/runner.js';
import { exactProcesses, waitFor } from '../helpers/daemon.js';

interface Rig {
  dir: string;
  engine: Engine;
  logs: string[];
  /** Lines the group's entries appended to DIR/log. */
  log(): string[];
  status(): GroupStatus;
  entry(tag: string): ProcStatus | undefined;
}

const rigs: Rig[] = [];

afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await Promise.race([r.engine.haltAll(), new Promise((resolve) => setTimeout(resolve, 10_000))]);
    rmSync(r.dir, { recursive: true, force: true });
  }
});

const FAST: Partial<Timings> = { termAfterMs: 200, killAfterMs: 600, killRepeatMs: 200 };

/** An engine on a cltab (`$DIR` replaced by a fresh temp directory), with group `g`. */
function rig(cltab: string, opts: { stopLevel?: string; timings?: Partial<Timings>; crashLoopsCount?: boolean } = {}): Rig {
  const dir = mkdtempSync(join(tmpdir(), 'peerha-health-'));
  const parsed = parseCltab(cltab.replaceAll('$DIR', dir), 'cltab');
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.message).join('; '));
  const logs: string[] = [];
  const line = (level: string) => (obj: object, msg: string) => void logs.push(`${level} ${msg} ${JSON.stringify(obj)}`);
  const logger: EngineLogger = { info: line('info'), warn: line('warn'), error: line('error') };
  const engine = new Engine({
    runner: new RealRunner({ pollMs: 20 }),
    logger,
    timings: { ...FAST, ...opts.timings },
    ...(opts.stopLevel !== undefined ? { stopLevel: opts.stopLevel, stopTimeoutMs: 5_000 } : {}),
    ...(opts.crashLoopsCount !== undefined ? { crashLoopsCount: opts.crashLoopsCount } : {}),
  });
  engine.setConfig(parsed.cltab);
  const r: Rig = {
    dir,
    engine,
    logs,
    log: () => (existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8').split('\n').filter(Boolean) : []),
    status: () => engine.groupStatus('g')!,
    entry: (tag) => engine.groupStatus('g')?.procs.find((p) => p.tag === tag),
  };
  rigs.push(r);
  return r;
}

/** Wait for a condition, showing the group's status and the engine log when it does not come. */
async function until<T>(r: Rig, what: string, fn: () => T, timeoutMs = 10_000): Promise<NonNullable<T>> {
  try {
    return await waitFor(what, fn, timeoutMs, 20);
  } catch (e) {
    throw new Error(`${(e as Error).message}\nstatus: ${JSON.stringify(r.engine.groupStatus('g'))}\nlog: ${r.log().join(' | ')}\nengine:\n${r.logs.slice(-40).join('\n')}`);
  }
}

const healthy = (r: Rig): void => writeFileSync(join(r.dir, 'healthy'), '');
const sick = (r: Rig): void => rmSync(join(r.dir, 'healthy'), { force: true });

/** A service group: a start entry, a long-running service, a check of DIR/healthy, a stop entry. */
function serviceCltab(checkOptions: string, marker: string): string {
  return [
    'g:up:start:wait:echo start >> $DIR/log',
    `g:svc:start:respawn:exec ${marker}`,
    `g:chk:start:monitor,${checkOptions}:echo . >> $DIR/checks; test -e $DIR/healthy`,
    'g:down:stop:wait:echo stop >> $DIR/log',
    '',
  ].join('\n');
}

const checks = (r: Rig): number => (existsSync(join(r.dir, 'checks')) ? readFileSync(join(r.dir, 'checks'), 'utf8').length / 2 : 0);

describe('health checks in the engine', () => {
  it('a passing check runs every interval while the group is settled; status shows it', async () => {
    const r = rig(serviceCltab('interval=100ms,timeout=1s,failures=2', 'sleep 7311.5'), { stopLevel: 'stop' });
    healthy(r);
    expect(r.engine.tell('g', 'start').ok).toBe(true);
    await until(r, 'group DONE at start', () => r.engine.settledAt('g', 'start') === 'DONE');
    await until(r, 'three checks', () => checks(r) >= 3);
    const s = r.status();
    expect(s).toMatchObject({ level: 'start', state: 'DONE', restarts: 0, givenUp: false });
    const chk = r.entry('chk')!;
    expect(chk.mode).toBe('monitor');
    expect(chk.check).toMatchObject({ lastResult: 'ok', failures: 0, threshold: 2, intervalMs: 100, timeoutMs: 1000 });
    expect(Date.parse(chk.check!.lastAt!)).toBeGreaterThan(Date.now() - 5_000);
    expect(r.log()).toEqual(['start']);
    // The check does not keep the group from settling, and never runs at another level.
    expect(r.engine.tell('g', 'stop').ok).toBe(true);
    await until(r, 'group DONE at stop', () => r.engine.settledAt('g', 'stop') === 'DONE');
    await until(r, 'the stop level ran', () => r.log().join(',') === 'start,stop');
    expect(r.entry('chk')).toBeUndefined(); // stopped with its level: no timer, no more checks
  });

  it('a check that starts failing restarts the group here: the stop level, then the level again', async () => {
    const marker = 'sleep 7312.5';
    const r = rig(serviceCltab('interval=100ms,timeout=1s,failures=2,max_restarts=3', marker), { stopLevel: 'stop' });
    healthy(r);
    r.engine.tell('g', 'start');
    await until(r, 'service running', () => r.engine.settledAt('g', 'start') === 'DONE' && exactProcesses(marker).length === 1);
    const before = exactProcesses(marker)[0];
    await until(r, 'a passing check', () => r.entry('chk')?.check?.lastResult === 'ok');

    sick(r);
    await until(r, 'a failing check counted', () => r.entry('chk')?.check?.failures === 1 && r.entry('chk')?.check?.lastResult === 'failed');
    await until(r, 'restarted: stop level, then start again', () => r.log().join(',') === 'start,stop,start' && r.engine.settledAt('g', 'start') === 'DONE');
    healthy(r);
    await until(r, 'a passing check after the restart', () => r.entry('chk')?.check?.lastResult === 'ok');
    expect(r.status()).toMatchObject({ level: 'start', state: 'DONE', restarts: 1, maxRestarts: 3, givenUp: false });
    expect(r.status().notes.join()).toMatch(/restarted here: chk failed 2 checks in a row \(restart 1 of 3/);
    // the service was restarted with its group
    const now = exactProcesses(marker);
    expect(now).toHaveLength(1);
    expect(now[0]).not.toBe(before);
    // the history shows the stop level it went through
    expect(r.status().transitions.some((t) => t.level === 'stop')).toBe(true);
    await until(r, 'more passing checks', () => checks(r) >= 8);
    expect(r.log().join(',')).toBe('start,stop,start');
  });

  it('past max_restarts within the window the group is given up: its stop level runs, it ends FAILED at its level', async () => {
    const marker = 'sleep 7313.5';
    const r = rig(serviceCltab('interval=100ms,timeout=1s,failures=1,max_restarts=1,window=1m', marker), { stopLevel: 'stop' });
    // never healthy: the first check fails, the restart fails again, then it is given up
    r.engine.tell('g', 'start');
    await until(r, 'given up', () => r.status().givenUp && r.engine.settledAt('g', 'start') === 'FAILED');
    expect(r.log()).toEqual(['start', 'stop', 'start', 'stop']);
    const s = r.status();
    expect(s).toMatchObject({ level: 'start', state: 'FAILED', restarts: 1, givenUp: true, recovery: 'GIVEN_UP' });
    expect(s.notes.join()).toMatch(/given up here: chk failed 1 checks in a row, after 1 restart within 1 min \(max_restarts 1\)/);
    // nothing of the level runs any more: the service and the check are stopped
    await until(r, 'service gone', () => exactProcesses(marker).length === 0);
    expect(s.procs.filter((p) => p.pgid !== null)).toEqual([]);
    expect(r.entry('chk')).toBeUndefined(); // no check runs for a given-up group
    expect(r.entry('svc')).toBeUndefined();

    // A tell from outside starts afresh: the level runs again with a clean count.
    healthy(r);
    r.engine.tell('g', 'start');
    await until(r, 'running again', () => r.engine.settledAt('g', 'start') === 'DONE' && r.entry('chk')?.check?.lastResult === 'ok');
    expect(r.status()).toMatchObject({ restarts: 0, givenUp: false, recovery: 'IDLE' });
  });

  it('a hanging check is killed at its timeout and counts as a failed check', async () => {
    const marker = 'sleep 7314.5';
    const r = rig(
      [
        'g:svc:start:respawn:exec sleep 7314.6',
        // hangs once when DIR/hang exists, passes otherwise
        `g:chk:start:monitor,interval=150ms,timeout=300ms,failures=3:if [ -e $DIR/hang ]; then rm $DIR/hang; echo hung >> $DIR/log; exec ${marker}; fi; true`,
        '',
      ].join('\n'),
      { stopLevel: 'stop' },
    );
    r.engine.tell('g', 'start');
    await until(r, 'a passing check', () => r.engine.settledAt('g', 'start') === 'DONE' && r.entry('chk')?.check?.lastResult === 'ok');
    writeFileSync(join(r.dir, 'hang'), '');
    await until(r, 'the check hangs', () => exactProcesses(marker).length === 1);
    const hungAt = Date.now();
    await until(r, 'the timed-out check counted', () => r.entry('chk')?.check?.lastResult === 'timeout' && r.entry('chk')?.check?.failures === 1);
    expect(exactProcesses(marker)).toEqual([]);
    expect(Date.now() - hungAt).toBeLessThan(5_000);
    expect(r.entry('chk')?.note).toMatch(/check failed \(timed out after 300 ms\), 1 of 3 in a row/);
    // the next check passes and resets the count; no restart happened
    await until(r, 'a passing check again', () => r.entry('chk')?.check?.lastResult === 'ok' && r.entry('chk')?.check?.failures === 0);
    expect(r.status()).toMatchObject({ state: 'DONE', restarts: 0, givenUp: false });
  });

  it('a hanging check that keeps hanging restarts the group', async () => {
    const r = rig(
      ['g:up:start:wait:echo start >> $DIR/log', 'g:chk:start:monitor,interval=100ms,timeout=200ms,failures=2:test -e $DIR/healthy || exec sleep 7315.5', 'g:down:stop:wait:echo stop >> $DIR/log', ''].join('\n'),
      { stopLevel: 'stop' },
    );
    r.engine.tell('g', 'start');
    await until(r, 'restarted after two timed-out checks', () => r.log().join(',') === 'start,stop,start');
    healthy(r);
    await until(r, 'healthy again', () => r.entry('chk')?.check?.lastResult === 'ok');
    expect(r.status()).toMatchObject({ state: 'DONE', restarts: 1, givenUp: false });
    expect(exactProcesses('sleep 7315.5')).toEqual([]);
  });

  it('a respawn entry entering crash-loop backoff counts as a restart; past max_restarts the group is given up', async () => {
    const r = rig(['g:up:start:wait:echo start >> $DIR/log', 'g:loop:start:respawn:echo run >> $DIR/runs; exit 1', 'g:down:stop:wait:echo stop >> $DIR/log', ''].join('\n'), {
      stopLevel: 'stop',
      timings: { burstCount: 1, burstWindowMs: 10_000, backoffMinMs: 200, backoffMaxMs: 400, resetAfterMs: 10_000, maxRestarts: 2, restartWindowMs: 60_000 },
    });
    r.engine.tell('g', 'start');
    await until(r, 'counted a crash loop', () => (r.status().restarts ?? 0) >= 1);
    expect(r.status().notes.join()).toMatch(/counted as a restart: loop is crash-looping/);
    await until(r, 'given up', () => r.engine.settledAt('g', 'start') === 'FAILED');
    expect(r.status()).toMatchObject({ level: 'start', state: 'FAILED', givenUp: true, restarts: 2, maxRestarts: 2 });
    expect(r.status().notes.join()).toMatch(/given up here: loop is crash-looping .*after 2 restarts within 1 min \(max_restarts 2\)/);
    // its stop level ran once, and the loop stopped: no more runs
    expect(r.log()).toEqual(['start', 'stop']);
    expect(r.entry('loop')).toBeUndefined(); // stopped with its backoff timer: it runs no more
  });

  it('standalone (no stop level) a crash loop is retried for ever, as in Cluster::Init, unless crash loops are set to count', async () => {
    const cltab = 'g:loop:start:respawn:echo run >> $DIR/runs; exit 1\n';
    const timings = { burstCount: 1, burstWindowMs: 10_000, backoffMinMs: 50, backoffMaxMs: 100, resetAfterMs: 10_000, maxRestarts: 1, restartWindowMs: 60_000 };
    const runs = (r: Rig): number => (existsSync(join(r.dir, 'runs')) ? readFileSync(join(r.dir, 'runs'), 'utf8').split('\n').filter(Boolean).length : 0);
    const forever = rig(cltab, { timings });
    forever.engine.tell('g', 'start');
    // two quick runs, then a backoff before each further run: 4 backoffs at least
    await until(forever, 'several backoffs', () => runs(forever) >= 6);
    expect(forever.status()).toMatchObject({ state: 'DONE', restarts: 0, givenUp: false });
    expect(forever.entry('loop')?.state).toMatch(/^(BACKOFF|RUNBG)$/);

    const counted = rig(cltab, { timings, crashLoopsCount: true });
    counted.engine.tell('g', 'start');
    await until(counted, 'given up', () => counted.engine.settledAt('g', 'start') === 'FAILED');
    expect(counted.status()).toMatchObject({ givenUp: true, restarts: 1 });
    expect(counted.entry('loop')).toBeUndefined(); // halted: no stop level to run
  });

  it('without a stop level (standalone init), a restart halts the group and tells its level again', async () => {
    const marker = 'sleep 7316.5';
    const r = rig(serviceCltab('interval=100ms,timeout=1s,failures=1,max_restarts=5', marker));
    healthy(r);
    r.engine.tell('g', 'start');
    await until(r, 'service running', () => r.engine.settledAt('g', 'start') === 'DONE' && exactProcesses(marker).length === 1);
    const before = exactProcesses(marker)[0];
    sick(r);
    await until(r, 'restarted', () => r.log().join(',') === 'start,start');
    healthy(r);
    await until(r, 'settled and healthy', () => r.engine.settledAt('g', 'start') === 'DONE' && r.entry('chk')?.check?.lastResult === 'ok');
    expect(r.status().restarts).toBeGreaterThanOrEqual(1);
    const now = exactProcesses(marker);
    expect(now).toHaveLength(1);
    expect(now[0]).not.toBe(before);
    // the stop entry never ran: there is no stop level here
    expect(r.log().every((l) => l === 'start')).toBe(true);
  });
});

// ---------------------------------------------------------------- the pure machines

function entriesOf(text: string) {
  const r = parseCltab(text, 'cltab');
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('; '));
  return [...r.cltab.entries];
}

const ctx = { now: 1000, random: 0.5, timings: DEFAULT_TIMINGS };

function run(p: Proc, ...events: ProcEvent[]): { proc: Proc; effects: string[] } {
  const effects: string[] = [];
  for (const e of events) {
    const s = procStep(p, e, ctx);
    p = s.proc;
    for (const f of s.effects) effects.push(f.type === 'signal' ? f.signal : f.type === 'timer' || f.type === 'cancelTimer' ? `${f.type}:${f.name}${f.type === 'timer' ? `:${f.ms}` : ''}` : f.type === 'unhealthy' ? `unhealthy:${f.failures}` : f.type);
  }
  return { proc: p, effects };
}

const exit = (code: number | null, signal: string | null = null): ProcEvent => ({ type: 'EXIT', code, signal, uptimeMs: 10 });
const check = (ready = true): ProcEvent => ({ type: 'CHECK', ready });

describe('the monitor entry machine (pure)', () => {
  const health = { intervalMs: 500, timeoutMs: 200, failures: 2 };

  it('starts waiting (no spawn), checks only when its group is ready, and never blocks the group', () => {
    const r = run(newProc('monitor', health), { type: 'START' });
    expect(r.proc.state).toBe('WATCHING');
    expect(r.effects).toEqual(['timer:check:500']);
    expect(run(r.proc, check(false)).effects).toEqual(['timer:check:500']);
    const probing = run(r.proc, check(true));
    expect(probing.proc.state).toBe('PROBING');
    expect(probing.effects).toEqual(['spawn', 'timer:timeout:200']);
    expect(procSettled('WATCHING') && procSettled('PROBING')).toBe(true);
  });

  it('exit 0 resets the count; failures count in a row and report unhealthy at the threshold', () => {
    const started = run(newProc('monitor', health), { type: 'START' }).proc;
    const one = run(started, check(), exit(1));
    expect(one.proc.state).toBe('WATCHING');
    expect(one.proc.check).toMatchObject({ failures: 1, checks: 1, last: { ok: false, code: 1, timedOut: false } });
    expect(one.effects).toEqual(['spawn', 'timer:timeout:200', 'cancelTimer:timeout', 'timer:check:500']);
    expect(one.proc.note).toBe('check failed (exit 1), 1 of 2 in a row');
    const ok = run(one.proc, check(), exit(0));
    expect(ok.proc.check).toMatchObject({ failures: 0, checks: 2, last: { ok: true } });
    expect(ok.proc.note).toBeNull();
    const two = run(ok.proc, check(), exit(1), { type: 'GONE' }, check(), exit(null, 'SIGTERM'));
    expect(two.effects).toContain('unhealthy:2');
    expect(two.proc.check?.failures).toBe(2);
  });

  it('a check past its timeout is SIGKILLed and counts as failed, whatever its exit', () => {
    const probing = run(newProc('monitor', health), { type: 'START' }, check()).proc;
    const killed = run(probing, { type: 'TIMEOUT' }, exit(0, null));
    expect(killed.effects).toEqual(['SIGKILL', 'cancelTimer:timeout', 'timer:check:500']);
    expect(killed.proc.check).toMatchObject({ failures: 1, last: { ok: false, timedOut: true } });
    expect(killed.proc.note).toBe('check failed (timed out after 200 ms), 1 of 2 in a row');
  });

  it('stops like a process while checking, at once while waiting; leftovers of a check are swept before the next', () => {
    const waiting = run(newProc('monitor', health), { type: 'START' }).proc;
    expect(run(waiting, { type: 'STOP' })).toMatchObject({ proc: { state: 'CONFIGURED' }, effects: ['cancelTimer:check'] });
    expect(run(waiting, { type: 'KILL' })).toMatchObject({ proc: { state: 'CONFIGURED' }, effects: ['cancelTimer:check'] });
    const probing = run(waiting, check()).proc;
    const stopping = run(probing, { type: 'STOP' });
    expect(stopping.proc.state).toBe('STOPPING');
    expect(stopping.effects).toEqual(['cancelTimer:timeout', 'SIGINT', `timer:escalate:${DEFAULT_TIMINGS.termAfterMs}`]);
    // leader exited, a child of the check lingers: the next check sweeps it first
    const lingering = run(probing, exit(0)).proc;
    expect(lingering.groupAlive).toBe(true);
    expect(run(lingering, check()).effects).toEqual(['sweep', 'spawn', 'timer:timeout:200']);
    // and a stop while it lingers stops it like a process
    expect(run(lingering, { type: 'STOP' }).proc.state).toBe('STOPPING');
  });

  it('a changed check (options or command) is restarted by a tell; an unchanged one keeps its process', () => {
    const [a] = entriesOf('g:c:1:monitor,interval=1s:true\n');
    const [b] = entriesOf('g:c:1:monitor,interval=2s:true\n');
    const view = { state: 'WATCHING' as const, entry: a! };
    expect(keepsProcess(view, [a!], '1')).toBe(true);
    expect(keepsProcess(view, [b!], '1')).toBe(false);
    expect(formatMode(a!)).toBe('monitor,interval=1s,timeout=5s,failures=3');
  });

  it('a group with a check settles DONE at its level (the check neither blocks it nor makes it PASSED)', () => {
    const entries = entriesOf('g:t:1:test:true\ng:c:1:monitor:true\n');
    const procs = new Map([
      ['t', { state: 'PASS' as const, entry: entries[0]! }],
      ['c', { state: 'WATCHING' as const, entry: entries[1]! }],
    ]);
    expect(groupReact({ state: 'CHECKING', level: '1', entries }, procs).state).toBe('DONE');
  });
});

describe('the recovery machine (pure)', () => {
  const limits = { maxRestarts: 2, windowMs: 10_000 };
  const unhealthy: RecoveryEvent = { type: 'UNHEALTHY', level: 'start', why: 'chk failed 3 checks in a row' };
  const crash: RecoveryEvent = { type: 'CRASHLOOP', level: 'start', why: 'svc is crash-looping' };
  const step = (r: Recovery, e: RecoveryEvent, now: number) => recoveryStep(r, e, { now, limits });

  it('restarts (stop level, then the level) until the restarts in the window run out, then gives up', () => {
    let r = step(FRESH_RECOVERY, unhealthy, 1000);
    expect(r.recovery).toMatchObject({ phase: 'RESTARTING', restarts: [1000], level: 'start' });
    expect(r.effects).toEqual([{ type: 'release' }]);
    // nothing else counts while it restarts
    expect(step(r.recovery, crash, 1100).recovery).toBe(r.recovery);
    r = step(r.recovery, { type: 'RELEASED' }, 1200);
    expect(r.recovery).toMatchObject({ phase: 'IDLE', restarts: [1000] });
    expect(r.effects).toEqual([{ type: 'retell', level: 'start' }]);
    expect(r.recovery.note).toMatch(/^restarted here: chk failed 3 checks in a row \(restart 1 of 2/);
    r = step(step(r.recovery, unhealthy, 2000).recovery, { type: 'RELEASED' }, 2100);
    expect(r.recovery.restarts).toEqual([1000, 2000]);
    // the third needs a restart past max_restarts 2: give up
    r = step(r.recovery, unhealthy, 3000);
    expect(r.recovery).toMatchObject({ phase: 'GIVING_UP', level: 'start' });
    expect(r.effects).toEqual([{ type: 'release' }]);
    expect(r.recovery.note).toBe('given up here: chk failed 3 checks in a row, after 2 restarts within 10 s (max_restarts 2)');
    r = step(r.recovery, { type: 'RELEASED' }, 3100);
    expect(r.recovery.phase).toBe('GIVEN_UP');
    expect(r.effects).toEqual([{ type: 'giveUp', level: 'start' }]);
    // given up: only a tell from outside starts afresh
    expect(step(r.recovery, unhealthy, 4000).effects).toEqual([]);
    expect(step(r.recovery, { type: 'TOLD' }, 4000).recovery).toEqual(FRESH_RECOVERY);
  });

  it('restarts older than the window no longer count', () => {
    let r: Recovery = { ...FRESH_RECOVERY, restarts: [1000, 2000] };
    expect(step(r, unhealthy, 11_500).recovery).toMatchObject({ phase: 'RESTARTING', restarts: [2000, 11_500] });
    r = { ...FRESH_RECOVERY, restarts: [1000, 2000] };
    expect(step(r, unhealthy, 9_000).recovery.phase).toBe('GIVING_UP');
  });

  it('a crash loop entering backoff only counts (respawn keeps retrying), and gives up past the limit', () => {
    let r = step(FRESH_RECOVERY, crash, 1000);
    expect(r).toMatchObject({ recovery: { phase: 'IDLE', restarts: [1000] }, effects: [] });
    expect(r.recovery.note).toMatch(/^counted as a restart: svc is crash-looping/);
    r = step(r.recovery, crash, 2000);
    expect(r.effects).toEqual([]);
    r = step(r.recovery, crash, 3000);
    expect(r).toMatchObject({ recovery: { phase: 'GIVING_UP' }, effects: [{ type: 'release' }] });
  });

  it('max_restarts 0: the first failure gives the group up; a tell during a restart ends it', () => {
    expect(recoveryStep(FRESH_RECOVERY, unhealthy, { now: 0, limits: { maxRestarts: 0, windowMs: 1 } }).recovery.phase).toBe('GIVING_UP');
    const restarting = step(FRESH_RECOVERY, unhealthy, 0).recovery;
    expect(step(restarting, { type: 'TOLD' }, 10)).toEqual({ recovery: FRESH_RECOVERY, effects: [] });
  });

  it('limits: the strictest max_restarts and the longest window of the checks at the level, else the timings', () => {
    const entries = entriesOf('g:a:start:monitor,max_restarts=4:true\ng:b:start:monitor,max_restarts=2,window=1m:true\ng:c:maint:monitor,max_restarts=0:true\n');
    expect(recoveryLimits(entries, 'start', DEFAULT_TIMINGS)).toEqual({ maxRestarts: 2, windowMs: 60_000 });
    expect(recoveryLimits(entries, 'other', DEFAULT_TIMINGS)).toEqual({ maxRestarts: 3, windowMs: 600_000 });
    expect(recoveryLimits(entries, 'maint', { ...DEFAULT_TIMINGS, restartWindowMs: 5 })).toEqual({ maxRestarts: 0, windowMs: 5 });
  });

  it('the transition tables are explicit: giving up ends FAILED from any settled or halted state', () => {
    expect(Object.keys(RECOVERY_TRANSITIONS)).toEqual(['IDLE', 'RESTARTING', 'GIVING_UP', 'GIVEN_UP']);
    for (const s of ['CONFIGURED', 'DONE', 'PASSED', 'FAILED'] as const) expect(GROUP_TRANSITIONS[s].GIVE_UP).toBe('FAILED');
    for (const s of ['STOPPING', 'STARTING', 'CHECKING', 'HALTING'] as const) expect(GROUP_TRANSITIONS[s].GIVE_UP).toBeUndefined();
  });
});

describe('cltab: the monitor mode', () => {
  it('parses options after commas, with defaults', () => {
    const [e] = entriesOf('web:chk:start:monitor,interval=5s,timeout=500ms,failures=4,max_restarts=0,window=2m:curl -fs localhost\n');
    expect(e).toMatchObject({ mode: 'monitor', command: 'curl -fs localhost', health: { intervalMs: 5000, timeoutMs: 500, failures: 4, maxRestarts: 0, windowMs: 120_000 } });
    const [d] = entriesOf('web:chk:start:monitor:true\n');
    expect(d!.health).toEqual({ intervalMs: 10_000, timeoutMs: 5000, failures: 3 });
    expect(entriesOf('web:x:start:respawn:true\n')[0]!.health).toBeUndefined();
    expect(entriesOf('web:chk:start:monitor,interval=1.5:true\n')[0]!.health?.intervalMs).toBe(1500);
  });

  it('bad options are file:line errors', () => {
    const errors = (text: string): string[] => {
      const r = parseCltab(text, 'cl');
      return r.ok ? [] : r.errors.map((e) => `${e.file}:${e.line}: ${e.message}`);
    };
    expect(errors('# c\nw:c:1:monitor,interval=soon:true\n')).toEqual(['cl:2: monitor option interval="soon": expected a duration such as 500ms, 2s, 1m, 1.5s or a number of seconds']);
    expect(errors('w:c:1:monitor,every=5s:true\n')[0]).toMatch(/^cl:1: unknown monitor option "every=5s": expected name=value with name one of interval, timeout, failures, max_restarts, window$/);
    expect(errors('w:c:1:monitor,failures=0:true\n')[0]).toMatch(/failures="0": expected a whole number of at least 1/);
    expect(errors('w:c:1:monitor,max_restarts=-1:true\n')[0]).toMatch(/max_restarts="-1": expected a whole number of at least 0/);
    expect(errors('w:c:1:monitor,timeout=0s:true\n')[0]).toMatch(/timeout=0s: must be more than 0/);
    expect(errors('w:c:1:monitor,interval=1s,interval=2s:true\n')[0]).toMatch(/interval given twice/);
    expect(errors('w:c:1:monitor,timeout:true\n')[0]).toMatch(/monitor option timeout: expected timeout=VALUE/);
    expect(errors('w:c:1:respawn,interval=1s:true\n')[0]).toMatch(/mode "respawn,interval=1s": only monitor takes options/);
    expect(errors('w:c:1:monitor:\n')[0]).toMatch(/command: missing/);
  });
});
