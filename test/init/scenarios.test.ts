// The behavioural Cluster::Init acceptance scenarios of reference §5.1 (the original `t/`
// suite), run against the REAL `peerha init` daemon over its control socket. Sleeps of the
// original fixture are scaled down. Where peerha deliberately differs from the 2003 original,
// these tests assert peerha's behaviour:
//  * the level column shows the NEW (target) level as soon as a tell is accepted
//    (`g 2 STOPPING` … `g 2 DONE`, never `g 1 STOPPING`), and there is no DUMPING state;
//  * level `0` is an ordinary level;
//  * groups removed from cltab are stopped gracefully (SIGINT first), not SIGKILLed;
//  * signals go to the whole process group, so shell-wrapped commands leave nothing behind;
//  * halt stops PASSED/FAILED groups too, and shutdown waits until everything stopped;
//  * respawn throttling: more than 5 exits within 10 s → backoff 1 s doubling up to the
//    maximum (4 s in the harness), never giving up, shown as a `respawn backoff Ns` note;
//  * `peerha tell --wait` reports completion.

import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseClstat } from '../../src/config/clstat.js';
import type { GroupStatus } from '../../src/init/engine.js';
import { groupHasLiveMember } from '../../src/init/runner.js';
import { pidAlive, startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';

// ---------------------------------------------------------------- fixture

/**
 * t/cltab.master, adapted: `$OUT` is the original t/out, `$DIR` the daemon's temp directory.
 * Sleeps are scaled down; `test1` ignores SIGINT and SIGTERM so that stopping it visibly takes
 * until SIGKILL; `pid1` writes its PID to its own file (so it can run next to hello2) and
 * records a graceful SIGINT; `pid0` shows that level `0` is an ordinary level.
 */
const MASTER = `# adapted from Cluster::Init 0.215 t/cltab.master
hellogrp:hello1:1:wait:echo hello world! > $OUT
hellogrp:hello2:2:respawn:echo hello world! >> $OUT
hellogrp:hello3:3:wait:sleep 1; : > $OUT
hellogrp:hello4:4:once:echo 1 > $OUT; sleep 1.2; echo 3 >> $OUT
hellogrp:hello4a:4:wait:sleep 0.6; echo 2 >> $OUT
hellogrp:hellolong:long1,long2,5:wait:echo long > $OUT
hellogrp:hellolong3:long3,:wait:echo long3 > $OUT
pidgrp:pid1:1:respawn:trap "echo INT >> $DIR/pid1.sig" INT; echo $$ > $DIR/pid1.pid; sleep 10
pidgrp:pid0:0:once:echo level0 > $DIR/zero
foogrp:foo1:12:once:echo foo1start >> $OUT; sleep 1; echo foo1end >> $OUT
foogrp:foo3:3:once:echo foo3 >> $OUT
bargrp:bar1:1:once:echo bar1start >> $OUT; sleep 1.6; echo bar1end >> $OUT
bazgrp:baz1:1:once:sleep 2.4; echo baz1 >> $OUT
scramjet:scram1:1:wait:date
hellogrp:htest1:f:test:true
hellogrp:htest2:f:test:false
hellogrp:htest3:t:test:true
test:test1:1:wait:trap '' INT TERM; echo $$ > $DIR/test1.pid; sleep 1.5
test:test2:1:wait:sleep 0.1
test:test3:2:wait:sleep 0.3
test:test4:2:wait:sleep 0.5
test:test5:3:test:echo test5 >> $DIR/test5.runs
test:test6:3:test:sleep 0.3
`;

// ---------------------------------------------------------------- helpers

let d: DaemonHandle | null = null;

afterEach(async () => {
  await d?.stop();
  d = null;
});

async function start(text = MASTER): Promise<DaemonHandle> {
  d = await startDaemon(text);
  return d;
}

/** A process that sleeps `seconds` like a cltab command would; resolves when it exits. */
function witness(seconds: number): Promise<void> {
  return new Promise((resolve) => spawn('sleep', [String(seconds)], { stdio: 'ignore' }).on('exit', () => resolve()));
}

/** Tell and expect the request to be accepted. */
async function tell(h: DaemonHandle, group: string, level: string): Promise<void> {
  expect(await h.tell(group, level)).toMatchObject({ ok: true, message: 'level transition started' });
}

/** The `wait` op: resolves once the group settled at `level`; returns e.g. `g 1 DONE`. */
async function settle(h: DaemonHandle, group: string, level: string, timeoutMs = 10_000): Promise<string> {
  return (await h.send({ op: 'wait', group, level, timeoutMs })).message;
}

async function groupOf(h: DaemonHandle, group: string): Promise<GroupStatus | undefined> {
  const r = await h.send({ op: 'status' });
  return r.groups?.find((g) => g.group === group);
}

/** Tags of the group's process objects (the original tests' `tags`). */
async function tags(h: DaemonHandle, group: string): Promise<string[]> {
  return ((await groupOf(h, group))?.procs ?? []).map((p) => p.tag).sort();
}

async function procState(h: DaemonHandle, group: string, tag: string): Promise<string | undefined> {
  return (await groupOf(h, group))?.procs.find((p) => p.tag === tag)?.state;
}

/** `level STATE` transitions of a group recorded at or after `sinceMs` (wall clock). */
async function historySince(h: DaemonHandle, group: string, sinceMs: number): Promise<string[]> {
  const g = await groupOf(h, group);
  return (g?.transitions ?? []).filter((t) => Date.parse(t.at) >= sinceMs).map((t) => `${t.level} ${t.state}`);
}

/** `expected` appears in `actual` in this order (other entries may come in between). */
function expectInOrder(actual: string[], expected: string[]): void {
  let i = 0;
  for (const a of actual) if (i < expected.length && a === expected[i]) i++;
  expect(i, `expected ${JSON.stringify(expected)} in order within ${JSON.stringify(actual)}`).toBe(expected.length);
}

function lines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
}

function readPid(path: string): number | null {
  const n = Number(lines(path)[0]);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/** `# note <group> <text>` lines of clstat, as `<group> <text>`. */
function clstatNotes(h: DaemonHandle): string[] {
  try {
    return parseClstat(readFileSync(h.clstat, 'utf8')).notes.map((n) => `${n.group} ${n.text}`);
  } catch {
    return [];
  }
}

async function notesOf(h: DaemonHandle, group: string): Promise<readonly string[]> {
  return (await groupOf(h, group))?.notes ?? [];
}

// ---------------------------------------------------------------- scenarios

describe('Cluster::Init t/ scenarios (reference §5.1) against the real daemon', () => {
  it('§5.1 0230group: a new group goes STARTING → DONE, its wait entries one after another', async () => {
    const h = await start();
    const t0 = Date.now();
    await tell(h, 'test', '1');
    expect(await tags(h, 'test')).toEqual(['test1']); // test2 waits for test1 (both are `wait`)
    await h.waitState('test', '1', 'STARTING', 3000);
    expect(await settle(h, 'test', '1')).toBe('test 1 DONE');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1550); // 1.5 s + 0.1 s, sequentially
    await h.waitState('test', '1', 'DONE');
    expect(await tags(h, 'test')).toEqual(['test1', 'test2']);
    const hist = await historySince(h, 'test', t0);
    // CHECKING is passed through in the same reaction in which the last entry settles, so the
    // recorded history (like clstat) goes STARTING → DONE.
    expectInOrder(hist, ['1 STARTING', '1 DONE']);
    expect(hist.every((s) => s.startsWith('1 '))).toBe(true);
  });

  it('§5.1 0231level: level 1 → 2 → 1 swaps the process objects; clstat shows the new level at once', async () => {
    const h = await start();
    await tell(h, 'test', '1');
    expect(await settle(h, 'test', '1')).toBe('test 1 DONE');
    expect(await tags(h, 'test')).toEqual(['test1', 'test2']);

    const t1 = Date.now();
    await tell(h, 'test', '2');
    expect((await groupOf(h, 'test'))?.level).toBe('2'); // the target level, immediately
    await h.waitState('test', '2', 'STARTING', 3000);
    expect(h.statusLines()).toEqual(['test 2 STARTING']);
    expect(await settle(h, 'test', '2')).toBe('test 2 DONE');
    await h.waitState('test', '2', 'DONE');
    expect(await tags(h, 'test')).toEqual(['test3', 'test4']);
    const hist2 = await historySince(h, 'test', t1);
    // History keeps the states the group rested in; nothing had to stop, so no STOPPING.
    expectInOrder(hist2, ['2 STARTING', '2 DONE']);
    expect(hist2.every((s) => s.startsWith('2 '))).toBe(true);

    const t2 = Date.now();
    await tell(h, 'test', '1');
    expect(await settle(h, 'test', '1')).toBe('test 1 DONE');
    expect(await tags(h, 'test')).toEqual(['test1', 'test2']);
    expectInOrder(await historySince(h, 'test', t2), ['1 STARTING', '1 DONE']);
  });

  it('§5.1 0232stop: tells interrupt STARTING and STOPPING; the new level starts only once the old processes are gone', async () => {
    const h = await start();
    await tell(h, 'test', '2');
    await waitFor('test4 running (test3 finished)', async () => (await procState(h, 'test', 'test4')) === 'RUNFG', 5000);
    expect((await groupOf(h, 'test'))?.state).toBe('STARTING');

    // tell 1 while STARTING: test4 is stopped, test1 starts.
    const ta = Date.now();
    await tell(h, 'test', '1');
    await waitFor('test1 running at level 1', async () => {
      const g = await groupOf(h, 'test');
      return g?.level === '1' && g.state === 'STARTING' && g.procs.some((p) => p.tag === 'test1' && p.state === 'RUNFG');
    }, 5000);
    expect(await tags(h, 'test')).toEqual(['test1']);
    expectInOrder(await historySince(h, 'test', ta), ['1 STOPPING', '1 STARTING']);
    const test1 = await waitFor('test1 pid', () => readPid(join(h.dir, 'test1.pid')), 3000);

    // tell 2 while STARTING: test1 ignores SIGINT and SIGTERM, so the group stays STOPPING
    // (showing the target level) until SIGKILL; tell 3 while STOPPING retargets the stop.
    const tb = Date.now();
    await tell(h, 'test', '2');
    await h.waitState('test', '2', 'STOPPING', 3000);
    await tell(h, 'test', '3');
    const g3 = await groupOf(h, 'test');
    expect([g3?.level, g3?.state]).toEqual(['3', 'STOPPING']);
    await h.waitState('test', '3', 'STOPPING', 3000);
    expect(await settle(h, 'test', '3')).toBe('test 3 PASSED');
    await h.waitState('test', '3', 'PASSED');

    const hist = await historySince(h, 'test', tb);
    expectInOrder(hist, ['2 STOPPING', '3 STOPPING', '3 STARTING', '3 PASSED']);
    expect(hist).not.toContain('2 STARTING'); // level 2 was never started
    expect(hist.some((s) => s.startsWith('1 '))).toBe(false); // never shows the old level
    const started = (await groupOf(h, 'test'))!.transitions.find((t) => t.level === '3' && t.state === 'STARTING');
    // SIGKILL comes PEERHA_KILL_AFTER_MS (900 ms) after the stop began; level 3 waited for it.
    expect(Date.parse(started!.at) - tb).toBeGreaterThanOrEqual(800);
    expect(pidAlive(test1)).toBe(false);
    expect(groupHasLiveMember(test1)).toBe(false); // its `sleep` went with it
    expect(await tags(h, 'test')).toEqual(['test5', 'test6']);
  });

  it('§5.1 0233passfail: all-passing tests → PASSED; an appended failing test, re-told, → FAILED (only the new test runs)', async () => {
    const h = await start();
    const runs = join(h.dir, 'test5.runs');
    await tell(h, 'test', '3');
    expect(await settle(h, 'test', '3')).toBe('test 3 PASSED');
    await h.waitState('test', '3', 'PASSED');
    expect(lines(runs)).toEqual(['test5']);

    appendFileSync(h.cltab, 'test:test7:3:test:false\n');
    const t = Date.now();
    await tell(h, 'test', '3');
    expect(await h.send({ op: 'wait', group: 'test', level: '3', timeoutMs: 10_000 })).toMatchObject({ ok: false, message: 'test 3 FAILED' });
    await h.waitState('test', '3', 'FAILED');
    expectInOrder(await historySince(h, 'test', t), ['3 STARTING', '3 FAILED']);
    expect(lines(runs)).toEqual(['test5']); // passed tests were not re-run
    const procs = (await groupOf(h, 'test'))!.procs;
    expect(Object.fromEntries(procs.map((p) => [p.tag, p.state]))).toEqual({ test5: 'PASS', test6: 'PASS', test7: 'FAIL' });
    expect(procs.find((p) => p.tag === 'test7')?.lastExit).toEqual({ code: 1, signal: null });
  });

  it('§5.1 0234halt: telling a level with no entries stops a group from STARTING, STOPPING and DONE', async () => {
    const h = await start();
    const pidFile = join(h.dir, 'test1.pid');

    // From STARTING (test1 running, ignoring SIGINT/SIGTERM).
    await tell(h, 'test', '1');
    const p1 = await waitFor('test1 pid', () => readPid(pidFile), 3000);
    expect((await groupOf(h, 'test'))?.state).toBe('STARTING');
    let t = Date.now();
    await tell(h, 'test', '99');
    expect(await settle(h, 'test', '99', 3000)).toBe('test 99 DONE');
    expect(Date.now() - t).toBeLessThan(3000);
    await h.waitState('test', '99', 'DONE');
    expect(pidAlive(p1)).toBe(false);
    expect(await tags(h, 'test')).toEqual([]);

    // From STOPPING.
    rmSync(pidFile);
    await tell(h, 'test', '1');
    const p2 = await waitFor('test1 pid', () => readPid(pidFile), 3000);
    t = Date.now();
    await tell(h, 'test', '2');
    expect((await groupOf(h, 'test'))?.state).toBe('STOPPING');
    await tell(h, 'test', '99');
    expect(await settle(h, 'test', '99', 3000)).toBe('test 99 DONE');
    expect(Date.now() - t).toBeLessThan(3000);
    expectInOrder(await historySince(h, 'test', t), ['2 STOPPING', '99 STOPPING', '99 DONE']);
    expect(pidAlive(p2)).toBe(false);

    // From DONE.
    await tell(h, 'scramjet', '1');
    expect(await settle(h, 'scramjet', '1')).toBe('scramjet 1 DONE');
    await tell(h, 'scramjet', '99');
    expect(await settle(h, 'scramjet', '99', 3000)).toBe('scramjet 99 DONE');
    await h.waitState('scramjet', '99', 'DONE');
    expect([...h.statusLines()].sort()).toEqual(['scramjet 99 DONE', 'test 99 DONE']);
  });

  it('§5.1 0234halt: shutdown halts every group (FAILED ones too, gracefully), waits for them, then exits 0', async () => {
    const h = await start(
      MASTER +
        `mix:mix1:1:respawn:trap "echo INT >> $DIR/mix.sig" INT; echo $$ > $DIR/mix.pid; sleep 30
mix:mix2:1:test:false
stub:stub1:1:wait:trap 'echo INT >> $DIR/stub.sig' INT; trap 'echo TERM >> $DIR/stub.sig' TERM; echo $$ > $DIR/stub.pid; while :; do sleep 0.05; done
`,
    );
    await tell(h, 'mix', '1');
    expect(await settle(h, 'mix', '1')).toBe('mix 1 FAILED');
    const mixPid = await waitFor('mix1 pid', () => readPid(join(h.dir, 'mix.pid')), 3000);
    await tell(h, 'stub', '1');
    const stub = await waitFor('stub1 pid', () => readPid(join(h.dir, 'stub.pid')), 3000);

    const t = Date.now();
    const reply = h.send({ op: 'shutdown' });
    // stub1 survives SIGINT and SIGTERM (recording them): the group shows HALTING until SIGKILL.
    await waitFor('stub 1 HALTING in clstat', () => h.stateOf('stub', '1') === 'HALTING', 3000, 10);
    expect(await h.tell('hellogrp', '1')).toMatchObject({ ok: false, message: 'shutting down' });
    expect(await reply).toMatchObject({ ok: true, message: 'all groups halted; daemon exiting' });
    expect(Date.now() - t).toBeGreaterThanOrEqual(800); // waited for stub1's SIGKILL
    expect(await h.exited()).toBe(0);
    expect(existsSync(h.clstat)).toBe(false);
    expect(existsSync(h.socket)).toBe(false);
    expect(pidAlive(stub)).toBe(false);
    expect(groupHasLiveMember(stub)).toBe(false);
    expect(lines(join(h.dir, 'stub.sig'))).toEqual(['INT', 'TERM']); // escalation: SIGINT, SIGTERM, then SIGKILL
    expect(pidAlive(mixPid)).toBe(false);
    expect(lines(join(h.dir, 'mix.sig'))).toEqual(['INT']); // the FAILED group's respawn got SIGINT
  });

  it('§5.1 10_tell: tells are accepted with a reply; shutdown replies and the daemon exits', async () => {
    const h = await start();
    expect(await h.tell('hellogrp', '1')).toEqual({ ok: true, message: 'level transition started' });
    expect(await settle(h, 'hellogrp', '1')).toBe('hellogrp 1 DONE');
    expect(await h.tell('hellogrp', '3')).toEqual({ ok: true, message: 'level transition started' });
    expect(await h.send({ op: 'shutdown' })).toEqual({ ok: true, message: 'all groups halted; daemon exiting' });
    expect(await h.exited()).toBe(0);
  });

  it('§5.1 11_status: status shows `hellogrp 1 DONE`; after shutdown clstat is gone and status is empty', async () => {
    const h = await start();
    await tell(h, 'hellogrp', '1');
    await h.waitState('hellogrp', '1', 'DONE');
    expect(h.statusLines()).toEqual(['hellogrp 1 DONE']);
    const g = await groupOf(h, 'hellogrp');
    expect([g?.level, g?.state]).toEqual(['1', 'DONE']);
    expect(h.cli(['status', '--local'])).toMatchObject({ code: 0, stdout: 'hellogrp 1 DONE\n' });
    expect(h.cli(['status', '--local', 'hellogrp'])).toMatchObject({ code: 0, stdout: '1 DONE\n' });
    expect(h.cli(['status', '--local', 'hellogrp', '1'])).toMatchObject({ code: 0, stdout: 'DONE' });
    expect(h.cli(['status', '--local', '--clstat', h.clstat])).toMatchObject({ code: 0, stdout: 'hellogrp 1 DONE\n' });

    expect((await h.send({ op: 'shutdown' })).ok).toBe(true);
    expect(await h.exited()).toBe(0);
    expect(existsSync(h.clstat)).toBe(false);
    expect(h.statusLines()).toEqual([]);
    expect(h.cli(['status', '--local', '--clstat', h.clstat])).toMatchObject({ code: 0, stdout: '' });
  });

  it('§5.1 12blank: telling an unknown group replies `no such group`', async () => {
    const h = await start();
    expect(await h.tell('nosuchgroup', '1')).toMatchObject({ ok: false, message: 'no such group: nosuchgroup' });
    expect(await h.tell('', '1')).toMatchObject({ ok: false, message: expect.stringMatching(/^bad request/) });
    expect(await h.tell('hellogrp', '')).toMatchObject({ ok: false, message: expect.stringMatching(/^bad request/) });
    const r = h.cli(['tell', 'nosuchgroup', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no such group: nosuchgroup');
    expect((await h.send({ op: 'status' })).groups).toEqual([]);
  });

  it('§5.1 20wait: a wait entry holds STARTING; re-telling the same level re-runs nothing', async () => {
    const h = await start();
    await tell(h, 'hellogrp', '1');
    expect(await settle(h, 'hellogrp', '1')).toBe('hellogrp 1 DONE');
    expect(lines(h.out)).toEqual(['hello world!']);

    await tell(h, 'hellogrp', '3');
    await waitFor('`status --local hellogrp 3` = STARTING', () => h.cli(['status', '--local', 'hellogrp', '3']).stdout === 'STARTING', 3000);
    expect(lines(h.out)).toHaveLength(1); // hello3 is still sleeping
    expect(await settle(h, 'hellogrp', '3')).toBe('hellogrp 3 DONE');
    await h.waitState('hellogrp', '3', 'DONE');
    expect(lines(h.out)).toEqual([]);

    await tell(h, 'hellogrp', '1');
    expect(await settle(h, 'hellogrp', '1')).toBe('hellogrp 1 DONE');
    expect(lines(h.out)).toEqual(['hello world!']); // hello1 ran again: it was discarded at level 3

    writeFileSync(h.out, '');
    const t = Date.now();
    await tell(h, 'hellogrp', '1');
    expect(await settle(h, 'hellogrp', '1')).toBe('hellogrp 1 DONE');
    // The tell was accepted, but the group never left `1 DONE`: nothing new in its history...
    expect(await historySince(h, 'hellogrp', t)).toEqual([]);
    await h.cycles(5);
    expect(lines(h.out)).toEqual([]); // ...but the finished wait entry was not re-run
    expect(await procState(h, 'hellogrp', 'hello1')).toBe('DONE');
  });

  it('§5.1 25long: multi-character levels, comma lists and a trailing comma', async () => {
    const h = await start();
    for (const [level, expected] of [
      ['long1', ['long']],
      ['long3', ['long3']],
      ['long2', ['long']],
      ['long3', ['long3']],
      ['5', ['long']],
    ] as const) {
      writeFileSync(h.out, '');
      await tell(h, 'hellogrp', level);
      expect(await settle(h, 'hellogrp', level)).toBe(`hellogrp ${level} DONE`);
      expect(lines(h.out), `level ${level}`).toEqual(expected);
    }
    // Comma-list items match whole: `long` is none of long1, long2, 5, long3.
    writeFileSync(h.out, '');
    await tell(h, 'hellogrp', 'long');
    expect(await settle(h, 'hellogrp', 'long')).toBe('hellogrp long DONE');
    expect(lines(h.out)).toEqual([]);
    await h.waitState('hellogrp', 'long', 'DONE');
  });

  it('§5.1 30once: a once entry does not block the wait entry after it', async () => {
    const h = await start();
    const t0 = Date.now();
    await tell(h, 'hellogrp', '4');
    await waitFor('first line', () => lines(h.out).length >= 1, 3000);
    expect(lines(h.out)).toEqual(['1']);
    await waitFor('second line', () => lines(h.out).length >= 2, 3000);
    expect(lines(h.out)).toEqual(['1', '2']); // hello4a (wait, 0.6 s) finished before hello4 (once, 1.2 s)
    expect(await settle(h, 'hellogrp', '4')).toBe('hellogrp 4 DONE');
    expect(await procState(h, 'hellogrp', 'hello4')).toBe('RUNBG'); // group DONE while the once still runs
    await waitFor('third line', () => lines(h.out).length >= 3, 3000);
    expect(lines(h.out)).toEqual(['1', '2', '3']);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1100);
    await h.cycles(3);
    expect(lines(h.out)).toEqual(['1', '2', '3']);
    expect(await procState(h, 'hellogrp', 'hello4')).toBe('DONE');
    expect(h.stateOf('hellogrp', '4')).toBe('DONE');
  });

  it('§5.1 40respawn: a killed respawn entry comes back with a new PID; a crash loop backs off and never gives up', async () => {
    const h = await start();
    const pidFile = join(h.dir, 'pid1.pid');

    // hellogrp 2: instant-exit respawn. 6 runs (more than 5 exits within 10 s), then backoff.
    await tell(h, 'hellogrp', '2');
    await waitFor('backoff 1s note', async () => (await notesOf(h, 'hellogrp')).includes('hello2: respawn backoff 1s'), 5000, 20);
    expect(lines(h.out)).toHaveLength(6);
    expect(await procState(h, 'hellogrp', 'hello2')).toBe('BACKOFF');
    await waitFor('backoff note in clstat', () => clstatNotes(h).includes('hellogrp hello2: respawn backoff 1s'), 2000, 20);
    expect(h.stateOf('hellogrp', '2')).toBe('DONE');

    // Meanwhile pidgrp 1: kill the respawn entry, it is restarted with a new PID.
    await tell(h, 'pidgrp', '1');
    const pid = await waitFor('pid1 pid', () => readPid(pidFile), 3000);
    await h.waitState('pidgrp', '1', 'DONE');
    expect(pidAlive(pid)).toBe(true);
    process.kill(pid, 'SIGKILL');
    const pid2 = await waitFor('a new pid', () => {
      const p = readPid(pidFile);
      return p !== null && p !== pid ? p : null;
    }, 5000);
    expect(pidAlive(pid2)).toBe(true);
    // The killed shell's `sleep 10` was swept with its process group.
    await waitFor('old process group gone', () => !groupHasLiveMember(pid), 3000);
    await tell(h, 'pidgrp', '99');
    expect(await settle(h, 'pidgrp', '99')).toBe('pidgrp 99 DONE');
    await h.waitState('pidgrp', '99', 'DONE');
    expect(pidAlive(pid2)).toBe(false);
    expect(groupHasLiveMember(pid2)).toBe(false);

    // Back to hellogrp: the backoff doubles (1 s → 2 s → 4 s) and is capped at the maximum (4 s).
    await waitFor('7th run, backoff 2s', async () => lines(h.out).length >= 7 && (await notesOf(h, 'hellogrp')).includes('hello2: respawn backoff 2s'), 4000, 20);
    await waitFor('8th run, backoff 4s', async () => lines(h.out).length >= 8 && (await notesOf(h, 'hellogrp')).includes('hello2: respawn backoff 4s'), 5000, 20);
    expect(lines(h.out)).toHaveLength(8);
    await waitFor('9th run (never gives up), still 4s', async () => lines(h.out).length >= 9, 6000, 20);
    await waitFor('note after the 9th exit', async () => (await procState(h, 'hellogrp', 'hello2')) === 'BACKOFF', 2000, 20);
    expect(await notesOf(h, 'hellogrp')).toEqual(['hello2: respawn backoff 4s']);
    expect(lines(h.out)).toHaveLength(9);
    expect(h.stateOf('hellogrp', '2')).toBe('DONE');

    // Telling another level ends the backoff: no more runs, the note is gone.
    await tell(h, 'hellogrp', '99');
    expect(await settle(h, 'hellogrp', '99')).toBe('hellogrp 99 DONE');
    expect(await notesOf(h, 'hellogrp')).toEqual([]);
    await waitFor('note gone from clstat', () => !clstatNotes(h).some((n) => n.startsWith('hellogrp ')), 2000);
    expect(await tags(h, 'hellogrp')).toEqual([]);
    await h.cycles(5);
    expect(lines(h.out)).toHaveLength(9);
  });

  it('§5.1 45init0: level 0 is an ordinary level: telling it stops the level-1 respawn, `pidgrp 0 DONE`', async () => {
    const h = await start();
    const pidFile = join(h.dir, 'pid1.pid');
    await tell(h, 'pidgrp', '1');
    const pid = await waitFor('pid1 pid', () => readPid(pidFile), 3000);
    await h.waitState('pidgrp', '1', 'DONE');

    await tell(h, 'pidgrp', '0');
    expect((await groupOf(h, 'pidgrp'))?.level).toBe('0');
    expect(await settle(h, 'pidgrp', '0')).toBe('pidgrp 0 DONE');
    await h.waitState('pidgrp', '0', 'DONE');
    expect(h.statusLines()).toEqual(['pidgrp 0 DONE']);
    expect(h.cli(['status', '--local', 'pidgrp'])).toMatchObject({ code: 0, stdout: '0 DONE\n' });
    expect(pidAlive(pid)).toBe(false);
    expect(lines(join(h.dir, 'pid1.sig'))).toEqual(['INT']); // stopped gracefully
    expect(lines(join(h.dir, 'zero'))).toEqual(['level0']); // the level-0 entry ran
    expect(await tags(h, 'pidgrp')).toEqual(['pid0']);

    await h.cycles(7);
    expect(readPid(pidFile)).toBe(pid); // not respawned
    expect(groupHasLiveMember(pid)).toBe(false);
    expect(h.stateOf('pidgrp', '0')).toBe('DONE');
  });

  it('§5.1 47reread: a group removed from cltab is stopped gracefully and dropped; restoring it works', async () => {
    const h = await start();
    const pidFile = join(h.dir, 'pid1.pid');
    await tell(h, 'pidgrp', '1');
    const pid = await waitFor('pid1 pid', () => readPid(pidFile), 3000);
    await h.waitState('pidgrp', '1', 'DONE');

    h.writeCltab('scram:scram2:1:wait:sleep 0.3\n');
    await tell(h, 'scram', '1');
    expect(await settle(h, 'scram', '1')).toBe('scram 1 DONE');
    await h.waitState('scram', '1', 'DONE');
    await waitFor('pidgrp dropped from clstat', () => !h.statusLines().some((l) => l.startsWith('pidgrp ')), 5000);
    expect(h.statusLines()).toEqual(['scram 1 DONE']);
    expect((await h.send({ op: 'status' })).groups?.map((g) => g.group)).toEqual(['scram']);
    expect(pidAlive(pid)).toBe(false);
    expect(groupHasLiveMember(pid)).toBe(false);
    expect(lines(join(h.dir, 'pid1.sig'))).toEqual(['INT']); // SIGINT, not SIGKILL
    expect(await h.tell('pidgrp', '1')).toMatchObject({ ok: false, message: 'no such group: pidgrp' });
    await h.cycles(5);
    expect(readPid(pidFile)).toBe(pid); // not rewritten

    h.writeCltab(MASTER);
    await tell(h, 'pidgrp', '1');
    await h.waitState('pidgrp', '1', 'DONE');
    const pid2 = await waitFor('a new pid', () => {
      const p = readPid(pidFile);
      return p !== null && p !== pid ? p : null;
    }, 3000);
    expect(pidAlive(pid2)).toBe(true);
  });

  it('§5.1 48off: changing an entry to `off` stops its process at the next tell; later entries still run', async () => {
    const h = await start('offgrp:off1:1:once:echo $$ > $OUT; sleep 30\n');
    await tell(h, 'offgrp', '1');
    expect(await settle(h, 'offgrp', '1')).toBe('offgrp 1 DONE');
    const pid = await waitFor('off1 pid', () => readPid(h.out), 3000);
    expect(pidAlive(pid)).toBe(true);

    h.writeCltab('offgrp:off1:1:off:echo $$ > $OUT; sleep 30\noffgrp:off2:1:wait:echo after > $DIR/after\n');
    await tell(h, 'offgrp', '1');
    expect(await settle(h, 'offgrp', '1', 5000)).toBe('offgrp 1 DONE');
    await h.waitState('offgrp', '1', 'DONE');
    expect(pidAlive(pid)).toBe(false);
    expect(groupHasLiveMember(pid)).toBe(false);
    expect(lines(join(h.dir, 'after'))).toEqual(['after']); // no busy loop in STARTING (reference bug 10)
    expect(await tags(h, 'offgrp')).toEqual(['off2']);
    await h.cycles(5);
    expect(readPid(h.out)).toBe(pid); // not replaced
    expect(h.stateOf('offgrp', '1')).toBe('DONE');
  });

  it('§5.1 50multigrp: groups run concurrently', async () => {
    const h = await start();
    const t0 = Date.now();
    await tell(h, 'bazgrp', '1');
    await tell(h, 'foogrp', '1');
    await waitFor('foo1start', () => lines(h.out).includes('foo1start'), 2000);
    await tell(h, 'bargrp', '1');
    await waitFor('bar1start', () => lines(h.out).includes('bar1start'), 5000);
    await waitFor('baz1', () => lines(h.out).includes('baz1'), 6000);
    expect(lines(h.out).filter((l) => !l.endsWith('start'))).toEqual(['foo1end', 'bar1end', 'baz1']);
    expect(Date.now() - t0).toBeLessThan(4500); // 1 + 1.6 + 2.4 s of sleeps would take 5 s one after another
    for (const g of ['bazgrp', 'foogrp', 'bargrp']) await h.waitState(g, '1', 'DONE');
  });

  it('§5.1 60multichar: an entry at levels `12` keeps running from level 1 to 2 and is stopped at 3', async () => {
    const h = await start();
    await tell(h, 'foogrp', '1');
    expect(await settle(h, 'foogrp', '1')).toBe('foogrp 1 DONE');
    await waitFor('foo1start', () => lines(h.out).includes('foo1start'), 2000);
    const pgid = (await groupOf(h, 'foogrp'))!.procs.find((p) => p.tag === 'foo1')!.pgid;
    expect(pgid).toBeGreaterThan(0);

    await tell(h, 'foogrp', '2');
    expect(await settle(h, 'foogrp', '2')).toBe('foogrp 2 DONE');
    expect(lines(h.out).at(-1)).toBe('foo1start');
    expect((await groupOf(h, 'foogrp'))!.procs.find((p) => p.tag === 'foo1')!.pgid).toBe(pgid); // kept, not restarted
    await waitFor('foo1end', () => lines(h.out).at(-1) === 'foo1end', 3000);
    expect(lines(h.out)).toEqual(['foo1start', 'foo1end']);

    await tell(h, 'foogrp', '99');
    expect(await settle(h, 'foogrp', '99')).toBe('foogrp 99 DONE');
    await h.waitState('foogrp', '99', 'DONE');

    writeFileSync(h.out, '');
    await tell(h, 'foogrp', '1');
    expect(await settle(h, 'foogrp', '1')).toBe('foogrp 1 DONE');
    await waitFor('foo1start', () => lines(h.out).length >= 1, 2000);
    expect(lines(h.out)).toEqual(['foo1start']);
    const pgid2 = (await groupOf(h, 'foogrp'))!.procs.find((p) => p.tag === 'foo1')!.pgid!;
    expect(pgid2).not.toBe(pgid); // discarded at 99, started afresh

    writeFileSync(h.out, '');
    await tell(h, 'foogrp', '3');
    expect(await settle(h, 'foogrp', '3')).toBe('foogrp 3 DONE');
    await h.waitState('foogrp', '3', 'DONE');
    await waitFor('foo3', () => lines(h.out).length >= 1, 2000);
    expect(lines(h.out)).toEqual(['foo3']);
    expect(groupHasLiveMember(pgid2)).toBe(false); // foo1's shell and its sleep were stopped
    expect(await tags(h, 'foogrp')).toEqual(['foo3']);
    // A witness started after foo1 began sleeps as long as foo1 did: once it is done, foo1 would
    // have written foo1end.
    await witness(1);
    await h.cycles(2);
    expect(lines(h.out)).toEqual(['foo3']);
  });

  it('§2.7 stale level (fixed): a process kept across a tell cannot drag the group back to the old level', async () => {
    const h = await start('g:w1:12:wait:sleep 0.6\ng:a1:1:wait:echo a1 >> $OUT\ng:b2:2:wait:echo b2 >> $OUT\n');
    await tell(h, 'g', '1');
    await waitFor('w1 running', async () => (await procState(h, 'g', 'w1')) === 'RUNFG', 2000);
    await tell(h, 'g', '2');
    expect(await settle(h, 'g', '2')).toBe('g 2 DONE');
    await h.waitState('g', '2', 'DONE');
    expect(lines(h.out)).toEqual(['b2']);
    expect(await tags(h, 'g')).toEqual(['b2', 'w1']);
    const g = await groupOf(h, 'g');
    expect([g?.level, g?.state]).toEqual(['2', 'DONE']);
  });

  it('§5.1 70clinit: through the CLI: init in the background, tell, status --local, shutdown', async () => {
    const h = await start(); // `peerha init` (bin/peerha) running in the background
    const pidFile = join(h.dir, 'pid1.pid');
    expect(h.cli(['tell', 'pidgrp', '1'])).toMatchObject({ code: 0, stdout: 'level transition started\n' });
    await waitFor('status --local shows pidgrp 1 DONE', () => h.cli(['status', '--local']).stdout.split('\n').includes('pidgrp 1 DONE'), 5000);
    const pid = await waitFor('pid1 pid', () => readPid(pidFile), 3000);
    expect(pidAlive(pid)).toBe(true);

    let r = h.cli(['tell', 'pidgrp', '1', '--wait=10']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('level transition started\npidgrp 1 DONE\n');
    expect(readPid(pidFile)).toBe(pid); // same level: the respawn entry was kept
    expect(h.cli(['tell'])).toMatchObject({ code: 0, stdout: 'cltab re-read\n' });

    r = h.cli(['shutdown']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('all groups halted');
    expect(await h.exited()).toBe(0);
    expect(existsSync(h.clstat)).toBe(false);
    expect(pidAlive(pid)).toBe(false);
    expect(groupHasLiveMember(pid)).toBe(false);
    expect(readPid(pidFile)).toBe(pid); // not replaced
    expect(h.cli(['status', '--local']).code).toBe(3);
    expect(h.cli(['tell', 'pidgrp', '1']).code).toBe(3);
  });

  it('§5.1 80test: a failing test makes the group FAILED, all-passing tests PASSED', async () => {
    const h = await start();
    let r = h.cli(['tell', 'hellogrp', 'f', '--wait=10']);
    expect(r.stdout).toBe('level transition started\nhellogrp f FAILED\n');
    expect(r.code).toBe(1);
    await h.waitState('hellogrp', 'f', 'FAILED');
    const procs = (await groupOf(h, 'hellogrp'))!.procs;
    expect(Object.fromEntries(procs.map((p) => [p.tag, p.state]))).toEqual({ htest1: 'PASS', htest2: 'FAIL' });

    r = h.cli(['tell', 'hellogrp', 't', '--wait=10']);
    expect(r.stdout).toBe('level transition started\nhellogrp t PASSED\n');
    expect(r.code).toBe(0);
    await h.waitState('hellogrp', 't', 'PASSED');
    expect(await tags(h, 'hellogrp')).toEqual(['htest3']);
  });
});
