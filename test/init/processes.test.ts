// Process hygiene of the real `peerha init` daemon: shell-wrapped commands (`sh -c 'sleep N &
// wait'`, each with a unique sleep duration as marker) leave nothing behind on any kind of stop,
// a daemon killed with SIGKILL is cleaned up after by its successor, and clstat is a heartbeat
// that is always read whole.

import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseClstat } from '../../src/config/clstat.js';
import type { Reply } from '../../src/init/protocol.js';
import { type DaemonHandle, groupStatus, pidAlive, processesWith, trackDaemons, waitFor, exactProcesses } from '../helpers/daemon.js';

const { start, marker } = trackDaemons();

async function tellAndSettle(d: DaemonHandle, group: string, level: string, timeoutMs = 10_000): Promise<Reply> {
  expect(await d.tell(group, level)).toMatchObject({ ok: true });
  return d.send({ op: 'wait', group, level, timeoutMs });
}


function pgidOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return null;
  }
}

const wrapped = (m: string): string => `sh -c '${m} & wait'`;

describe('shell-wrapped commands leave no process behind', () => {
  it('(a) stop via a level change', async () => {
    const m = marker('sleep 7201.5');
    const d = await start(`g:s:1:once:${wrapped(m)}\ng:k:2:wait:true\n`);
    await tellAndSettle(d, 'g', '1');
    await waitFor('background sleep', () => exactProcesses(m).length === 1);
    expect(processesWith(m).length).toBeGreaterThanOrEqual(2); // the shells and the sleep
    expect((await tellAndSettle(d, 'g', '2')).state).toBe('DONE');
    expect(processesWith(m)).toEqual([]);
    expect(d.proc.exitCode).toBeNull();
  });

  it('(b) shutdown', async () => {
    const m = marker('sleep 7202.5');
    const n = marker('sleep 7202.6');
    const d = await start(`g:r:1:respawn:${wrapped(m)}\nh:o:1:once:${wrapped(n)}\n`);
    await tellAndSettle(d, 'g', '1');
    await tellAndSettle(d, 'h', '1');
    await waitFor('background sleeps', () => exactProcesses(m).length === 1 && exactProcesses(n).length === 1);
    expect((await d.send({ op: 'shutdown' })).ok).toBe(true);
    expect(await d.exited()).toBe(0);
    expect(processesWith(m)).toEqual([]);
    expect(processesWith(n)).toEqual([]);
    expect(existsSync(d.clstat)).toBe(false);
    expect(existsSync(`${d.socket}.pgids`)).toBe(false);
  });

  it('(c) respawn after the shell was killed: a new instance, the old background sleep is gone', async () => {
    const m = marker('sleep 7203.5');
    const d = await start(`g:r:1:respawn:echo $$ >> $OUT; ${wrapped(m)}\n`);
    await tellAndSettle(d, 'g', '1');
    await waitFor('first instance', () => d.outLines().length === 1 && exactProcesses(m).length === 1);
    const shell1 = Number(d.outLines()[0]);
    const sleep1 = exactProcesses(m)[0]!;
    expect(pgidOf(sleep1)).toBe(shell1);

    process.kill(shell1, 'SIGKILL');
    await waitFor('respawned instance', () => d.outLines().length === 2, 5_000);
    const shell2 = Number(d.outLines()[1]);
    expect(shell2).not.toBe(shell1);
    await waitFor('old background sleep gone', () => !pidAlive(sleep1), 5_000);
    await waitFor('new background sleep', () => exactProcesses(m).length === 1, 5_000);
    expect(exactProcesses(m)[0]).not.toBe(sleep1);
    // Everything carrying the marker belongs to the new instance's process group.
    for (const pid of processesWith(m)) expect(pgidOf(pid)).toBe(shell2);
    expect(pidAlive(shell1)).toBe(false);
    expect(pidAlive(shell2)).toBe(true);
    expect(d.outLines()).toHaveLength(2); // respawned once, not crash-looping
    const g = (await groupStatus(d, 'g'))!;
    expect(g.procs[0]).toMatchObject({ tag: 'r', state: 'RUNBG', pgid: shell2, note: null });
  });

  it('(d) SIGTERM of the daemon', async () => {
    const m = marker('sleep 7204.5');
    const n = marker('sleep 7204.6');
    const d = await start(`g:r:1:respawn:${wrapped(m)}\ng:t:1:test:false\nh:w:1:wait:${wrapped(n)}\n`);
    expect((await tellAndSettle(d, 'g', '1')).state).toBe('FAILED');
    await d.tell('h', '1'); // stays STARTING: its wait entry never ends
    await waitFor('background sleeps', () => exactProcesses(m).length === 1 && exactProcesses(n).length === 1);
    d.proc.kill('SIGTERM');
    expect(await d.exited()).toBe(0);
    expect(processesWith(m)).toEqual([]);
    expect(processesWith(n)).toEqual([]);
    expect(existsSync(d.clstat)).toBe(false);
    expect(existsSync(d.socket)).toBe(false);
  });

  it('(e) stop during respawn backoff: what the crashed instances left behind is gone once the new level is reached', async () => {
    // Each instance exits at once and leaves a background sleep that ignores SIGINT and SIGTERM;
    // after the burst the entry sits in BACKOFF while those leftovers are still being swept.
    const m = marker('sleep 7206.5');
    const d = await start(`g:r:1:respawn:trap "" INT TERM; ${m} & exit 1\ng:k:2:wait:true\n`, { env: { PEERHA_BACKOFF_MIN_MS: '5000' } });
    await d.tell('g', '1');
    await waitFor('respawn backoff', async () => (await groupStatus(d, 'g'))?.procs[0]?.state === 'BACKOFF');
    expect(exactProcesses(m).length).toBeGreaterThan(0);
    expect((await tellAndSettle(d, 'g', '2')).state).toBe('DONE');
    expect(processesWith(m)).toEqual([]);
  });

  it('SIGKILL of `peerha init`, then a restart on the same socket: nothing of the previous run survives', async () => {
    const ma = marker('sleep 7205.1');
    const mb = marker('sleep 7205.2');
    const mc = marker('sleep 7205.3');
    const d1 = await start(
      [`g:a:1:respawn:${wrapped(ma)}`, `g:b:1:respawn:trap "" INT TERM; ${mb}`, `h:c:1:once:${mc} & exit 0`, ''].join('\n'),
    );
    await tellAndSettle(d1, 'g', '1');
    await tellAndSettle(d1, 'h', '1');
    await waitFor('all markers running', () => [ma, mb, mc].every((m) => exactProcesses(m).length === 1));
    const record = `${d1.socket}.pgids`;
    await waitFor('pgid record lists every group', () => {
      try {
        const rec = JSON.parse(readFileSync(record, 'utf8')) as { groups: Array<{ pgid: number }> };
        const recorded = new Set(rec.groups.map((g) => g.pgid));
        return [ma, mb, mc].every((m) => recorded.has(pgidOf(exactProcesses(m)[0]!)!));
      } catch {
        return false;
      }
    });

    const oldPgids = [ma, mb, mc].map((m) => pgidOf(exactProcesses(m)[0]!)!);
    d1.proc.kill('SIGKILL');
    await d1.exited();
    // orphans stay orphans: no daemon is left to stop them until the next one starts
    for (const m of [ma, mb, mc]) expect(exactProcesses(m)).toHaveLength(1);
    expect(existsSync(d1.socket)).toBe(true);

    const d2 = await start(null, { dir: d1.dir });
    // The new daemon stops the leftovers before it serves (the stubborn one needs SIGKILL).
    for (const m of [ma, mb, mc]) expect(processesWith(m), m).toEqual([]);
    expect(d2.output()).toContain('stopping process groups left behind by a previous run');
    expect((await d2.send({ op: 'ping' })).ok).toBe(true);
    expect((await d2.send({ op: 'status' })).groups).toEqual([]);
    // The record no longer names the previous run's (now dead) process groups: a later crash
    // of this daemon must not make the next one signal whatever reuses those ids.
    const recorded = (): number[] =>
      existsSync(record) ? (JSON.parse(readFileSync(record, 'utf8')) as { groups: Array<{ pgid: number }> }).groups.map((g) => g.pgid) : [];
    expect(recorded().filter((p) => oldPgids.includes(p))).toEqual([]);

    // The new run records its own groups, and a clean shutdown removes the record.
    await tellAndSettle(d2, 'h', '1');
    await waitFor('new group recorded', () => recorded().length === 1);
    expect(recorded().filter((p) => oldPgids.includes(p))).toEqual([]);
    await d2.send({ op: 'shutdown' });
    expect(await d2.exited()).toBe(0);
    expect(existsSync(record)).toBe(false);
    expect(processesWith(mc)).toEqual([]);
  });
});

describe('clstat', () => {
  it('has a `# peerha node=… pid=… seq=… time=… lines=… sum=…` header whose seq grows with every heartbeat', async () => {
    const d = await start('g:a:1:wait:true\n');
    await tellAndSettle(d, 'g', '1');
    await d.waitState('g', '1', 'DONE'); // clstat is written asynchronously
    // Every read is kept and checked afterwards (waitFor retries on a throw, which would hide one).
    const reads: Array<{ text: string; at: number }> = [];
    await waitFor('six heartbeats', () => {
      reads.push({ text: readFileSync(d.clstat, 'utf8'), at: Date.now() });
      return new Set(reads.map((r) => parseClstat(r.text).header?.seq)).size >= 6;
    }, 5_000, 60);
    const seqs: number[] = [];
    for (const { text, at } of reads) {
      const first = text.split('\n')[0]!;
      expect(first).toMatch(/^# peerha node=testnode pid=\d+ seq=\d+ time=\S+ lines=\d+ sum=[0-9a-f]{8}$/);
      const h = parseClstat(text).header!;
      expect(h.node).toBe('testnode');
      expect(h.pid).toBe(d.proc.pid);
      const t = Date.parse(h.time);
      expect(Number.isNaN(t)).toBe(false);
      expect(Math.abs(at - t)).toBeLessThan(5_000);
      if (seqs.length > 0) expect(h.seq).toBeGreaterThanOrEqual(seqs[seqs.length - 1]!);
      if (seqs[seqs.length - 1] !== h.seq) seqs.push(h.seq);
    }
    expect(new Set(seqs).size).toBeGreaterThanOrEqual(6); // idle, yet rewritten every cycle
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!);
    expect(parseClstat(readFileSync(d.clstat, 'utf8')).groups).toEqual([{ group: 'g', level: '1', state: 'DONE' }]);
  });

  it('is replaced atomically: no torn read over many reads while heartbeats run', async () => {
    const n = 40;
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(`grp${String(i).padStart(2, '0')}:t${i}:1:once:true`);
    lines.push('flap:f:1:respawn:exit 1');
    const d = await start(lines.join('\n') + '\n', { cycleMs: 20 });
    for (let i = 0; i < n; i++) await tellAndSettle(d, `grp${String(i).padStart(2, '0')}`, '1');
    await tellAndSettle(d, 'flap', '1'); // a crash-looping entry: changes and notes come and go
    await waitFor('every group in clstat', () => parseClstat(readFileSync(d.clstat, 'utf8')).groups.length === n + 1);

    const seen = new Set<number>();
    const torn: string[] = [];
    let reads = 0;
    const LINE = /^(Cluster::Init::Group \S+ \S+ [A-Z]+|# note \S+ .+)$/;
    // Read until the file was replaced often enough; a count of reads, not a time window (CI load).
    await waitFor('500 reads over 20 replacements', () => {
      for (let k = 0; k < 50; k++) {
        const text = readFileSync(d.clstat, 'utf8');
        reads++;
        const c = parseClstat(text);
        const whole = text.endsWith('\n') && c.header !== null && c.groups.length === n + 1 && text.split('\n').slice(1, -1).every((l) => LINE.test(l));
        if (!whole) torn.push(text);
        if (c.header) seen.add(c.header.seq);
      }
      return reads >= 500 && seen.size > 20;
    }, 30_000, 1);
    expect(torn).toEqual([]);
    expect(seen.size).toBeGreaterThan(20); // the file really was being replaced meanwhile
  });
});
