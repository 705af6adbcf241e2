// Reference §6: the engine bugs of Cluster::Init 0.215, each shown FIXED against the real
// `peerha init` daemon (short stop timings from the harness: SIGTERM at 300 ms, SIGKILL at 900 ms).

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseClstat } from '../../src/config/clstat.js';
import type { Reply } from '../../src/init/protocol.js';
import { BIN, type DaemonHandle, FAST_ENV, groupStatus, pidAlive, processesWith, trackDaemons, waitFor, exactProcesses } from '../helpers/daemon.js';

// ---------------------------------------------------------------- helpers

const { start, marker } = trackDaemons();

/** Wait (server side) until `group` settled at `level`; the reply carries the state. */
async function settle(d: DaemonHandle, group: string, level: string, timeoutMs = 10_000): Promise<Reply> {
  return d.send({ op: 'wait', group, level, timeoutMs });
}

async function tellAndSettle(d: DaemonHandle, group: string, level: string, timeoutMs = 10_000): Promise<Reply> {
  const t = await d.tell(group, level);
  expect(t).toMatchObject({ ok: true, message: 'level transition started' });
  return settle(d, group, level, timeoutMs);
}

interface LogLine {
  msg?: string;
  time?: number;
  group?: string;
  tag?: string;
  signal?: string;
  stream?: string;
  [k: string]: unknown;
}

function logLines(d: DaemonHandle): LogLine[] {
  return d.output().split('\n').flatMap((l) => {
    if (!l.startsWith('{')) return [];
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
}

function signalsSent(d: DaemonHandle, tag?: string): LogLine[] {
  return logLines(d).filter((l) => l.msg === 'signal process group' && (tag === undefined || l.tag === tag));
}


function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields after the comm: state(0) … utime(11) stime(12)
  return Number(f[11]) + Number(f[12]);
}

/** Write raw bytes to the control socket; collect reply lines until `lines` arrived or it closes. */
function raw(socket: string, data: string, lines = 1, timeoutMs = 5_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const sock = connect(socket);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no reply within ${timeoutMs} ms (got ${JSON.stringify(buf)})`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(buf.split('\n').filter((l) => l !== ''));
    };
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(data));
    sock.on('data', (c: string) => {
      buf += c;
      if (buf.split('\n').filter((l) => l !== '').length >= lines && buf.endsWith('\n')) done();
    });
    sock.on('error', () => done());
    sock.on('close', () => done());
  });
}

async function pingOk(d: DaemonHandle): Promise<void> {
  expect(await d.send({ op: 'ping' })).toMatchObject({ ok: true, message: 'pong' });
}

// ---------------------------------------------------------------- tests

describe('reference §6 engine bugs are fixed', () => {
  it('§6 item 1: level 0 and group 0 work and are shown in clstat', async () => {
    const m = marker('sleep 7101.5');
    const d = await start(`g:zero:0:wait:echo zero >> $OUT\ng:one:1:respawn:${m}\n0:z:1:wait:echo group0 >> $OUT\n`);
    expect((await tellAndSettle(d, 'g', '1')).state).toBe('DONE');
    expect(exactProcesses(m)).toHaveLength(1);

    const r = await tellAndSettle(d, 'g', '0');
    expect(r).toMatchObject({ ok: true, state: 'DONE', message: 'g 0 DONE' });
    expect(d.outLines()).toEqual(['zero']);
    expect(processesWith(m)).toEqual([]); // level 0 stopped the respawn entry
    await d.waitState('g', '0', 'DONE');

    expect((await tellAndSettle(d, '0', '1')).state).toBe('DONE');
    await d.waitState('0', '1', 'DONE');
    expect(d.outLines()).toEqual(['zero', 'group0']);
    expect(d.statusLines().sort()).toEqual(['0 1 DONE', 'g 0 DONE']);
    const st = d.cli(['status', '--local', '--clstat', d.clstat, 'g']);
    expect(st.stdout).toBe('0 DONE\n');
  });

  it('§6 item 2: a group removed from cltab is stopped gracefully (SIGINT first) and its clstat line disappears', async () => {
    const d = await start(
      'keep:k:1:wait:true\n' +
        'old:o:1:respawn:trap "echo INT >> $OUT; exit 0" INT; echo up >> $OUT; while :; do sleep 0.1; done\n',
    );
    await tellAndSettle(d, 'keep', '1');
    await tellAndSettle(d, 'old', '1');
    await waitFor('old:o is up', () => d.outLines().includes('up'));
    await d.waitState('old', '1', 'DONE');

    d.writeCltab('keep:k:1:wait:true\n');
    await waitFor(`old's clstat line gone (${d.statusLines().join(' | ')})`, () => d.statusLines().every((l) => !l.startsWith('old ')), 5_000);
    expect(d.statusLines()).toEqual(['keep 1 DONE']);
    expect(d.outLines()).toEqual(['up', 'INT']); // the trap ran: it got SIGINT and exited by itself
    expect(signalsSent(d, 'o').map((l) => l.signal)).toEqual(['SIGINT']);
    expect(await groupStatus(d, 'old')).toBeUndefined();
    expect(await d.tell('old', '1')).toMatchObject({ ok: false, message: 'no such group: old' });
  });

  it('§6 item 3: a duplicate tag at start exits 2 with file:line on stderr', async () => {
    const d = await start('a:x:1:wait:true\nb:x:1:wait:true\n', { waitReady: false });
    expect(await d.exited()).toBe(2);
    expect(d.output()).toContain(`${d.cltab}:2: duplicate tag "x" (first used on line 1)`);
    expect(existsSync(d.socket)).toBe(false);
    // The same, with stderr on its own.
    const r = spawnSync(process.execPath, [BIN, 'init', '--cltab', d.cltab, '--socket', `${d.dir}/s2`, '--clstat', `${d.dir}/c2`], {
      encoding: 'utf8',
      env: { ...process.env, ...FAST_ENV },
      timeout: 10_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${d.cltab}:2: duplicate tag "x"`);
  });

  it('§6 item 3: a bad edit at run time is reported, the group keeps running, a fixed file works again', async () => {
    const m = marker('sleep 7103.5');
    const d = await start(`g:r:1:respawn:${m}\n`);
    await tellAndSettle(d, 'g', '1');
    const pgid = (await groupStatus(d, 'g'))!.procs.find((p) => p.tag === 'r')!.pgid!;
    expect(pidAlive(pgid)).toBe(true);

    d.writeCltab(`g:r:1:respawn:${m}\ng:r:2:wait:echo dup >> $OUT\n`);
    const refused = await d.tell('g', '2');
    expect(refused.ok).toBe(false);
    expect(refused.message).toContain(`${d.cltab}:2: duplicate tag "r"`);
    const st = await d.send({ op: 'status' });
    expect(st.configErrors?.join('\n')).toContain(`${d.cltab}:2:`);
    // Several re-read cycles later the group still runs on the last good configuration.
    await d.cycles(3);
    const g = (await groupStatus(d, 'g'))!;
    expect(g).toMatchObject({ level: '1', state: 'DONE' });
    expect(g.procs.find((p) => p.tag === 'r')!.pgid).toBe(pgid);
    expect(pidAlive(pgid)).toBe(true);
    expect(d.stateOf('g', '1')).toBe('DONE');

    d.writeCltab(`g:r:1:respawn:${m}\ng:w:2:wait:echo fixed >> $OUT\n`);
    expect((await tellAndSettle(d, 'g', '2')).state).toBe('DONE');
    expect(d.outLines()).toEqual(['fixed']);
    expect((await d.send({ op: 'status' })).configErrors).toEqual([]);
    expect(processesWith(m)).toEqual([]);
  });

  it('§6 item 4: the 0232stop sequence (tells during STARTING and STOPPING) is deterministic', async () => {
    const m1 = marker('sleep 7104.1');
    const m3 = marker('sleep 7104.3');
    const d = await start(
      [
        `t:test1:1:wait:trap "" INT TERM; echo test1-start >> $OUT; ${m1}; echo test1 >> $OUT`,
        't:test2:1:wait:echo test2 >> $OUT',
        `t:test3:2:wait:echo test3-start >> $OUT; ${m3}; echo test3 >> $OUT`,
        't:test4:2:wait:echo test4 >> $OUT',
        't:test5:3:test:true',
        't:test6:3:test:sleep 0.2',
        't:idle:9:wait:true',
        '',
      ].join('\n'),
      // A stop window (SIGKILL after 3 s) wide enough for the next tell to land in it on a busy machine.
      { env: { PEERHA_TERM_AFTER_MS: '1500', PEERHA_KILL_AFTER_MS: '3000' } },
    );
    for (let round = 0; round < 3; round++) {
      writeFileSync(d.out, '');
      // tell 2: test3 blocks the group in STARTING
      await d.tell('t', '2');
      await waitFor('test3 started', () => d.outLines().includes('test3-start'));
      let g = (await groupStatus(d, 't'))!;
      expect(g).toMatchObject({ level: '2', state: 'STARTING' });
      expect(g.procs.map((p) => p.tag)).toEqual(['test3']);

      // tell 1 while STARTING: test3 is stopped, test1 starts
      await d.tell('t', '1');
      await waitFor('test1 started', () => d.outLines().includes('test1-start'));
      g = (await groupStatus(d, 't'))!;
      expect(g).toMatchObject({ level: '1', state: 'STARTING' });
      expect(g.procs.map((p) => p.tag)).toEqual(['test1']);

      // tell 2: test1 ignores SIGINT and SIGTERM, so the group stays STOPPING ~3 s; tell 3 meanwhile
      await d.tell('t', '2');
      g = (await groupStatus(d, 't'))!;
      expect(g).toMatchObject({ level: '2', state: 'STOPPING' });
      await d.tell('t', '3');
      const r = await settle(d, 't', '3');
      expect(r).toMatchObject({ ok: true, state: 'PASSED', message: 't 3 PASSED' });

      g = (await groupStatus(d, 't'))!;
      expect(g.procs.map((p) => [p.tag, p.state]).sort()).toEqual([
        ['test5', 'PASS'],
        ['test6', 'PASS'],
      ]);
      // (CHECKING may be passed through within one step and then is not recorded.)
      const tail = g.transitions.map((x) => `${x.level} ${x.state}`).filter((x) => x !== '3 CHECKING');
      expect(tail.slice(-4)).toEqual(['2 STOPPING', '3 STOPPING', '3 STARTING', '3 PASSED']);
      // Nothing ran to completion and level 2 did not start again.
      expect(d.outLines()).toEqual(['test3-start', 'test1-start']);
      // Reported flaky under load once ([two pids] left); never seen since. Should it recur, the
      // failure carries what those processes were and what the daemon did.
      const left = [...processesWith(m1), ...processesWith(m3)];
      const why = left.length ? `round ${round}: left ${left.join(',')}\n${spawnSync('ps', ['-o', 'pid,ppid,pgid,stat,etimes,args', '-p', left.join(',')], { encoding: 'utf8' }).stdout}\n${d.output().split('\n').slice(-40).join('\n')}` : '';
      expect(processesWith(m1), why).toEqual([]);
      expect(processesWith(m3), why).toEqual([]);

      expect((await tellAndSettle(d, 't', '9')).state).toBe('DONE');
    }
  });

  it('§6 item 10: `off` entries never run, later entries start, no busy loop; editing a running entry to `off` stops it', async () => {
    const m = marker('sleep 7110.5');
    const d = await start(`g:a:1:off:echo off-ran >> $OUT\ng:b:1:wait:echo b >> $OUT\ng:c:1:once:${m}\n`);
    expect((await tellAndSettle(d, 'g', '1')).state).toBe('DONE');
    expect(d.outLines()).toEqual(['b']);
    expect(exactProcesses(m)).toHaveLength(1);
    expect((await groupStatus(d, 'g'))!.procs.map((p) => p.tag).sort()).toEqual(['b', 'c']);

    // No busy loop: over 5 of its cycles (1 s at 200 ms) the daemon uses a few ms of CPU each,
    // not the whole cycle. Counted per cycle, not per second of a possibly loaded machine.
    const pid = d.proc.pid!;
    const before = cpuTicks(pid);
    await d.cycles(5);
    const used = cpuTicks(pid) - before; // 100 ticks = 1 s of CPU
    expect(used).toBeLessThan(5 * 5);
    expect(d.outLines()).toEqual(['b']);

    d.writeCltab(`g:a:1:off:echo off-ran >> $OUT\ng:b:1:wait:echo b >> $OUT\ng:c:1:off:${m}\n`);
    expect((await tellAndSettle(d, 'g', '1')).state).toBe('DONE');
    expect(processesWith(m)).toEqual([]);
    expect((await groupStatus(d, 'g'))!.procs.map((p) => p.tag)).toEqual(['b']);
    expect(d.outLines()).toEqual(['b']); // b is kept (DONE), not re-run; a never ran
  });

  it('§6 item 11: a kept process cannot drag the group back to an old level', async () => {
    const d = await start('g:w1:12:wait:sleep 0.8\ng:a1:1:wait:echo a1 >> $OUT\ng:b2:2:wait:echo b2 >> $OUT\n');
    await d.tell('g', '1');
    await waitFor('w1 running', async () => (await groupStatus(d, 'g'))?.procs.some((p) => p.tag === 'w1' && p.state === 'RUNFG'));
    await d.tell('g', '2');
    const r = await settle(d, 'g', '2');
    expect(r).toMatchObject({ ok: true, message: 'g 2 DONE' });
    await d.cycles(2); // nothing may happen afterwards
    const g = (await groupStatus(d, 'g'))!;
    expect(g).toMatchObject({ level: '2', state: 'DONE' });
    expect(g.procs.map((p) => [p.tag, p.state]).sort()).toEqual([
      ['b2', 'DONE'],
      ['w1', 'DONE'],
    ]);
    expect(d.outLines()).toEqual(['b2']);
    await d.waitState('g', '2', 'DONE');
    expect(d.statusLines()).toEqual(['g 2 DONE']);
  });

  it('§6 item 12: told levels are literal; `.` is rejected and matches nothing', async () => {
    const d = await start('g:a:1:wait:echo a >> $OUT\ng:b:x:wait:echo b >> $OUT\ng:c:start:wait:echo c >> $OUT\ng:d:a.c,:wait:echo d >> $OUT\n');
    const dot = await d.tell('g', '.');
    expect(dot.ok).toBe(false);
    expect(dot.message).toMatch(/^bad request: level/);
    expect(await groupStatus(d, 'g')).toBeUndefined();

    for (const level of ['[1x]', '.*', 's.*', 'st.rt', '1|x', 'abc', 'a.']) {
      expect((await tellAndSettle(d, 'g', level)).state).toBe('DONE');
      expect(d.outLines()).toEqual([]);
      expect((await groupStatus(d, 'g'))!.procs).toEqual([]);
    }
    await tellAndSettle(d, 'g', 'a.c');
    expect(d.outLines()).toEqual(['d']);
    await tellAndSettle(d, 'g', 'start');
    expect(d.outLines()).toEqual(['d', 'c']);
    await tellAndSettle(d, 'g', '1');
    expect(d.outLines()).toEqual(['d', 'c', 'a']);
  });

  it('§6 item 13: invalid input never kills the daemon', async () => {
    const m = marker('sleep 7113.5');
    const d = await start(`g:r:1:respawn:${m}\n`);
    await tellAndSettle(d, 'g', '1');

    const cases: Array<[string, RegExp]> = [
      ['this is not json\n', /bad request/],
      ['{"op":\n', /bad request/],
      ['null\n', /bad request/],
      ['"tell"\n', /bad request/],
      ['42\n', /bad request/],
      ['[]\n', /unknown op/],
      ['{}\n', /unknown op/],
      ['{"op":"frobnicate"}\n', /unknown op/],
      ['{"op":"__proto__"}\n', /unknown op/],
      ['{"op":"tell"}\n', /bad request: group is missing/],
      ['{"op":"tell","group":"g"}\n', /bad request: level is missing/],
      ['{"op":"tell","group":"g","level":7}\n', /bad request: level is missing/],
      ['{"op":"tell","group":"g","level":""}\n', /bad request: level is empty/],
      ['{"op":"tell","group":"g","level":"a b"}\n', /bad request: level/],
      ['{"op":"tell","group":"__proto__","level":"1"}\n', /no such group/],
      ['{"op":"wait"}\n', /bad request/],
      ['{"op":"wait","group":"g","level":"1","timeoutMs":"soon"}\n', /g 1 DONE/],
      ['{"op":"wait","group":"nope","level":"1","timeoutMs":100}\n', /no such group|timed out/],
    ];
    for (const [input, want] of cases) {
      const [line] = await raw(d.socket, input);
      expect(line, `reply to ${JSON.stringify(input)}`).toBeDefined();
      const reply = JSON.parse(line!) as Reply;
      expect(reply.message, `reply to ${JSON.stringify(input)}`).toMatch(want);
      await pingOk(d);
    }
    // Several requests on one connection, one of them garbage: every one is answered, in order.
    const many = await raw(d.socket, '{"op":"ping"}\nnope\n{"op":"ping"}\n', 3);
    expect(many.map((l) => (JSON.parse(l) as Reply).message)).toEqual(['pong', 'bad request: expected one JSON object per line', 'pong']);

    // A huge line without a newline is refused and the connection closed.
    const huge = await raw(d.socket, 'x'.repeat(200 * 1024));
    expect(huge.map((l) => (JSON.parse(l) as Reply).message).join('\n')).toMatch(/bad request/);
    await pingOk(d);
    const hugeJson = await raw(d.socket, JSON.stringify({ op: 'tell', group: 'g'.repeat(100 * 1024), level: '1' }) + '\n');
    expect(hugeJson.length).toBeGreaterThan(0);
    await pingOk(d);
    // A client that connects and vanishes mid-request.
    await new Promise<void>((resolve) => {
      const s = connect(d.socket, () => {
        s.write('{"op":"ta');
        s.destroy();
        resolve();
      });
      s.on('error', () => resolve());
    });
    await pingOk(d);

    // An unknown mode in an edited cltab: refused with file:line, the daemon and group go on.
    d.writeCltab(`g:r:1:respawn:${m}\ng:x:2:bogus:true\n`);
    const refused = await d.tell('g', '2');
    expect(refused.ok).toBe(false);
    expect(refused.message).toContain(`${d.cltab}:2: unknown mode "bogus"`);
    await d.cycles(3); // several re-read cycles with the bad file
    await pingOk(d);
    expect(exactProcesses(m)).toHaveLength(1);
    expect(d.stateOf('g', '1')).toBe('DONE');
    expect(d.proc.exitCode).toBeNull();
  });

  it('§6 item 14: an exec failure (exit 127) affects only its own entry', async () => {
    const m = marker('sleep 7114.5');
    const d = await start(`r:r1:1:respawn:${m}\nx:x1:1:test:/nonexistent/peerha-no-such-command\nx:x2:1:wait:echo after >> $OUT\n`);
    await tellAndSettle(d, 'r', '1');
    const pgid = (await groupStatus(d, 'r'))!.procs[0]!.pgid!;
    expect(pidAlive(pgid)).toBe(true);

    const r = await tellAndSettle(d, 'x', '1');
    expect(r).toMatchObject({ ok: false, state: 'FAILED', message: 'x 1 FAILED' });
    const x = (await groupStatus(d, 'x'))!;
    expect(x.procs.find((p) => p.tag === 'x1')).toMatchObject({ state: 'FAIL', lastExit: { code: 127, signal: null } });
    expect(d.outLines()).toEqual(['after']); // the next entry still started

    await d.cycles(2);
    const rs = (await groupStatus(d, 'r'))!;
    expect(rs).toMatchObject({ level: '1', state: 'DONE' });
    expect(rs.procs[0]!.pgid).toBe(pgid);
    expect(pidAlive(pgid)).toBe(true);
    expect(signalsSent(d)).toEqual([]);
    await d.waitState('r', '1', 'DONE');
  });

  it('§6 item 15: shell-wrapped commands leave nothing behind after stop', async () => {
    const m = marker('sleep 7115.5');
    const d = await start(`g:s:1:once:sh -c '${m} & wait'\ng:k:2:wait:true\n`);
    await tellAndSettle(d, 'g', '1');
    await waitFor('background sleep running', () => exactProcesses(m).length === 1);
    expect((await tellAndSettle(d, 'g', '2')).state).toBe('DONE');
    expect(processesWith(m)).toEqual([]);
  });

  it('§6 item 16: shutdown stops PASSED and FAILED groups too, and waits until their processes are gone', async () => {
    const mr = marker('sleep 7116.5');
    const mp = marker('sleep 7116.7');
    const d = await start(`g:r:1:respawn:trap "" INT TERM; ${mr}\ng:t:1:test:false\np:pt:1:test:${mp} & exit 0\n`);
    expect((await tellAndSettle(d, 'g', '1')).state).toBe('FAILED');
    expect((await tellAndSettle(d, 'p', '1')).state).toBe('PASSED');
    await waitFor('both markers running', () => exactProcesses(mr).length === 1 && exactProcesses(mp).length === 1);

    const t0 = Date.now();
    const reply = await d.send({ op: 'shutdown' });
    expect(reply.ok).toBe(true);
    expect(await d.exited()).toBe(0);
    const elapsed = Date.now() - t0;
    // Nothing survived the daemon, and the stubborn one needed SIGKILL (at 900 ms).
    expect(processesWith(mr)).toEqual([]);
    expect(processesWith(mp)).toEqual([]);
    expect(elapsed).toBeGreaterThanOrEqual(800);
    expect(signalsSent(d, 'r').map((l) => l.signal)).toEqual(expect.arrayContaining(['SIGINT', 'SIGTERM', 'SIGKILL']));
    expect(signalsSent(d, 'pt').map((l) => l.signal)[0]).toBe('SIGINT');
    expect(existsSync(d.clstat)).toBe(false);
  });

  it('§6 item 17: SIGTERM to the daemon is an orderly shutdown', async () => {
    const m = marker('sleep 7117.5');
    const d = await start(`g:r:1:respawn:sh -c '${m} & wait'\n`);
    await tellAndSettle(d, 'g', '1');
    await waitFor('marker running', () => exactProcesses(m).length === 1);
    await d.waitState('g', '1', 'DONE');
    d.proc.kill('SIGTERM');
    expect(await d.exited()).toBe(0);
    expect(processesWith(m)).toEqual([]);
    expect(existsSync(d.clstat)).toBe(false);
    expect(existsSync(d.socket)).toBe(false);
    expect(existsSync(`${d.socket}.pgids`)).toBe(false);
  });

  it('§6 item 17: a second daemon on the same socket is refused; a stale socket file is replaced', async () => {
    const d1 = await start('g:a:1:wait:true\n');
    const d2 = await start(null, { dir: d1.dir, waitReady: false });
    expect(await d2.exited()).toBe(1);
    expect(d2.output()).toContain('another daemon');
    await pingOk(d1);

    d1.proc.kill('SIGKILL');
    await d1.exited();
    expect(existsSync(d1.socket)).toBe(true); // stale
    const d3 = await start(null, { dir: d1.dir });
    await pingOk(d3);
    expect((await tellAndSettle(d3, 'g', '1')).state).toBe('DONE');
  });

  it('§6 item 17: a socket that cannot be created makes the daemon exit 1 at once instead of hanging', async () => {
    const d = await start('g:a:1:wait:true\n');
    writeFileSync(`${d.dir}/plainfile`, 'x');
    const longPath = `${d.dir}/${'s'.repeat(120)}.s`; // longer than sun_path (108 bytes)
    for (const socket of [longPath, `${d.dir}/plainfile/clinit.s`]) {
      const t0 = Date.now();
      const r = spawnSync(process.execPath, [BIN, 'init', '--cltab', d.cltab, '--socket', socket, '--clstat', `${d.dir}/c2`], {
        encoding: 'utf8',
        env: { ...process.env, ...FAST_ENV },
        timeout: 10_000,
      });
      expect(r.signal, `${socket}: ${r.stderr}`).toBeNull(); // it exited by itself
      expect(r.status, `${socket}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toContain(socket.slice(0, 40));
      expect(Date.now() - t0).toBeLessThan(5_000);
    }
    expect(existsSync(`${d.dir}/c2`)).toBe(false);
    await pingOk(d);
  });

  it('§6 item 18: cltab edits within the same second are both noticed (content, not mtime)', async () => {
    const d = await start('g:a:1:wait:echo one >> $OUT\n');
    await tellAndSettle(d, 'g', '1');
    expect(d.outLines()).toEqual(['one']);
    const { atime, mtime } = statSync(d.cltab);
    for (const word of ['two', 'six']) {
      writeFileSync(d.cltab, `g:a:1:wait:echo ${word} >> ${d.out}\n`); // same size
      utimesSync(d.cltab, atime, mtime); // same mtime
      await tellAndSettle(d, 'g', '1');
    }
    expect(d.outLines()).toEqual(['one', 'two', 'six']);
  });

  it('§6 item 19: a process ignoring SIGINT and SIGTERM is SIGKILLed on schedule; the daemon stays responsive', async () => {
    const m = marker('sleep 7119.5');
    const d = await start(`g:s:1:once:trap "" INT TERM; ${m}\ng:k:2:wait:true\n`);
    await tellAndSettle(d, 'g', '1');
    await waitFor('stubborn process running', () => exactProcesses(m).length === 1);

    await d.tell('g', '2');
    let answeredWhileStopping = 0;
    const slowAnswers: number[] = [];
    await waitFor('the stubborn group stopped', async () => {
      const t = Date.now();
      await pingOk(d);
      const took = Date.now() - t;
      if (took >= 1_000) slowAnswers.push(took);
      if ((await groupStatus(d, 'g'))!.state !== 'STOPPING') return true;
      answeredWhileStopping++;
      return false;
    }, 30_000);
    expect(slowAnswers).toEqual([]);
    expect(answeredWhileStopping).toBeGreaterThan(3);
    expect((await settle(d, 'g', '2')).state).toBe('DONE');
    expect(processesWith(m)).toEqual([]);

    const sigs = signalsSent(d, 's');
    expect(sigs.map((l) => l.signal).slice(0, 3)).toEqual(['SIGINT', 'SIGTERM', 'SIGKILL']);
    const t0 = sigs[0]!.time!;
    expect(sigs[1]!.time! - t0).toBeGreaterThanOrEqual(250);
    expect(sigs[1]!.time! - t0).toBeLessThan(2000);
    expect(sigs[2]!.time! - t0).toBeGreaterThanOrEqual(850);
    expect(sigs[2]!.time! - t0).toBeLessThan(3000);
  });

  it('§6 item 20: tags are unique per file (no regex false duplicates) and processes are looked up per group', async () => {
    const ma = marker('sleep 7120.1');
    const mb = marker('sleep 7120.2');
    const d = await start(`a:x:1:respawn:${ma}\na:t.1:1:once:true\na:tx1:1:once:true\na:t*:1:once:true\n`);
    expect((await tellAndSettle(d, 'a', '1')).state).toBe('DONE');
    expect((await groupStatus(d, 'a'))!.procs.map((p) => p.tag).sort()).toEqual(['t*', 't.1', 'tx1', 'x']);

    // Move tag x to group b. Group a's x keeps running until a is told again.
    d.writeCltab(`a:t.1:1:once:true\na:tx1:1:once:true\na:t*:1:once:true\nb:x:1:respawn:${mb}\n`);
    expect((await tellAndSettle(d, 'b', '1')).state).toBe('DONE');
    await waitFor('both x processes', () => exactProcesses(ma).length === 1 && exactProcesses(mb).length === 1);
    const bPgid = (await groupStatus(d, 'b'))!.procs.find((p) => p.tag === 'x')!.pgid;
    expect((await groupStatus(d, 'a'))!.procs.find((p) => p.tag === 'x')!.pgid).not.toBe(bPgid);

    expect((await tellAndSettle(d, 'a', '1')).state).toBe('DONE');
    expect(processesWith(ma)).toEqual([]);
    expect((await groupStatus(d, 'a'))!.procs.map((p) => p.tag).sort()).toEqual(['t*', 't.1', 'tx1']);
    expect((await groupStatus(d, 'b'))!.procs.find((p) => p.tag === 'x')!.pgid).toBe(bPgid);
    expect(exactProcesses(mb)).toHaveLength(1);
  });

  it('§6 item 21: a crash-looping respawn entry backs off with a note and is retried forever', async () => {
    const d = await start('g:r:1:respawn:echo run >> $OUT; exit 1\n', { env: { PEERHA_BACKOFF_MAX_MS: '1500' } });
    await d.tell('g', '1');
    await waitFor('backoff note in status', async () => (await groupStatus(d, 'g'))?.notes.some((n) => /^r: respawn backoff \d+s$/.test(n)));
    const n0 = d.outLines().length;
    expect(n0).toBeGreaterThanOrEqual(6);
    expect(n0).toBeLessThanOrEqual(8);
    await waitFor('backoff note in clstat', () => {
      const c = parseClstat(readFileSync(d.clstat, 'utf8'));
      return c.notes.some((n) => n.group === 'g' && /^r: respawn backoff \d+s$/.test(n.text));
    });
    // Throttled, not a busy loop...
    await d.cycles(3);
    expect(d.outLines().length).toBeLessThanOrEqual(n0 + 2);
    // ...but never given up.
    await waitFor('more retries', () => d.outLines().length >= n0 + 3, 10_000);
    expect((await groupStatus(d, 'g'))!.procs[0]!.state).toMatch(/^(BACKOFF|RUNBG)$/);
  });

  it('§6 item 21: an instance that stays up resets the crash-loop memory', async () => {
    const d = await start('g:r:1:respawn:n=$(wc -l < $OUT); date +%s%N >> $OUT; if [ "$n" -ge 7 ]; then sleep 0.7; fi; exit 1\n', {
      env: { PEERHA_RESET_AFTER_MS: '500' },
    });
    writeFileSync(d.out, '');
    await d.tell('g', '1');
    await waitFor('backoff note', async () => (await groupStatus(d, 'g'))?.notes.some((n) => n.includes('respawn backoff')));
    await waitFor('long-running instances', () => d.outLines().length >= 11, 15_000);
    await waitFor('note cleared', async () => (await groupStatus(d, 'g'))?.notes.length === 0, 3_000);
    const starts = d.outLines().map((l) => Number(BigInt(l) / 1_000_000n));
    // Runs 8, 9, 10, 11 stayed up 0.7 s: each restart came at once (a throttled one waits ≥ 3.6 s).
    for (let i = 8; i < 11; i++) expect(starts[i]! - starts[i - 1]!).toBeLessThan(2_000);
  });

  it('§6 item 22: after a process was reaped its pid is never signalled', async () => {
    const d = await start('g:o:1:once:echo done >> $OUT\ng:w:1:wait:true\ng:t:1:test:true\ng:k:2:wait:true\n');
    await tellAndSettle(d, 'g', '1');
    await waitFor('all reaped', async () => (await groupStatus(d, 'g'))?.procs.every((p) => p.pgid === null));
    expect((await tellAndSettle(d, 'g', '2')).state).toBe('DONE');
    await tellAndSettle(d, 'g', '1');
    await waitFor('all reaped', async () => (await groupStatus(d, 'g'))?.procs.every((p) => p.pgid === null));
    await d.send({ op: 'shutdown' });
    expect(await d.exited()).toBe(0);
    expect(signalsSent(d)).toEqual([]);
    expect(d.outLines()).toEqual(['done', 'done']);
  });

  it("§6 item 23: children's stdout and stderr appear in the daemon's log", async () => {
    const d = await start('g:o:1:wait:echo hello-out; echo hello-err >&2\n');
    await tellAndSettle(d, 'g', '1');
    await waitFor('stdout line logged', () => logLines(d).some((l) => l.group === 'g' && l.tag === 'o' && l.stream === 'stdout' && l.msg === 'hello-out'));
    await waitFor('stderr line logged', () => logLines(d).some((l) => l.group === 'g' && l.tag === 'o' && l.stream === 'stderr' && l.msg === 'hello-err'));
  });

  it('§6 item 24: `peerha tell --wait` reports the outcome; clstat shows the target level while STOPPING', async () => {
    const m = marker('sleep 7124.5');
    const d = await start(
      [
        'g:ok:1:wait:sleep 0.3',
        'g:pt:p:test:true',
        'g:ft:f:test:false',
        'g:slow:s:wait:sleep 3',
        `g:stub:2:once:trap "" INT TERM; ${m}`,
        '',
      ].join('\n'),
    );
    let r = d.cli(['tell', 'g', '1', '--wait=10']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('g 1 DONE');
    r = d.cli(['tell', 'g', 'p', '--wait=10']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('g p PASSED');
    r = d.cli(['tell', 'g', 'f', '--wait=10']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('g f FAILED');
    r = d.cli(['tell', 'g', 's', '--wait=0.5']);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/timed out/);
    r = d.cli(['tell', 'g', '1', '--wait=5'], { PEERHA_SOCKET: `${d.dir}/no-such.s` });
    expect(r.code).toBe(3);
    // A very long --wait (beyond a 32-bit millisecond timer) still waits for the outcome.
    r = d.cli(['tell', 'g', '1', '--wait=3000000']); // level 1 takes 0.3 s
    expect(r.stdout).toContain('g 1 DONE');
    expect(r.code).toBe(0);

    r = d.cli(['tell', 'g', '2', '--wait=10']);
    expect(r.code).toBe(0);
    await waitFor('stubborn process', () => exactProcesses(m).length === 1);
    await d.tell('g', '1'); // stub ignores INT and TERM: STOPPING lasts ~0.9 s
    await waitFor(`clstat shows g 1 STOPPING (${d.statusLines().join(' | ')})`, () => d.stateOf('g', '1') === 'STOPPING', 5_000);
    expect(d.stateOf('g', '2')).toBeNull();
    expect((await settle(d, 'g', '1')).state).toBe('DONE');
    expect(processesWith(m)).toEqual([]);
  });
});
