// bin/peerha-watchdog, the self-fence sidecar, on its own: real processes, a real record file.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { groupHasLiveMember, procStartTime } from '../../src/init/runner.js';
import { killGroupsOf, ROOT, waitFor } from '../helpers/daemon.js';

const WATCHDOG = resolve(ROOT, 'bin', 'peerha-watchdog');
const BOOT = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

let dir = '';
const procs: ChildProcess[] = [];
afterEach(() => {
  killGroupsOf(procs);
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

/** A process group standing in for a resource group, recorded as PgidRecord.save() does. */
function groupAndRecord(boot = BOOT, start?: string): { pgid: number; record: string } {
  dir = mkdtempSync(join(tmpdir(), 'peerha-wd-'));
  const g = spawn('sleep', ['1000'], { detached: true, stdio: 'ignore' });
  procs.push(g);
  const record = join(dir, 'n1.pgids');
  writeFileSync(record, JSON.stringify({ bootId: boot, daemonPid: process.pid, groups: [{ pgid: g.pid!, start: start ?? procStartTime(g.pid!) ?? '' }] }) + '\n');
  return { pgid: g.pid!, record };
}

function watchdog(record: string, limitMs: number): { wd: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
  const wd = spawn(WATCHDOG, [record, String(limitMs)], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  wd.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  // 'close', not 'exit': its stderr is read to the end by then
  return { wd, stderr: () => err, exited: new Promise((r) => wd.on('close', (code) => r(code))) };
}

describe('bin/peerha-watchdog', () => {
  it('petted, it leaves the groups alone; silent for the limit, it SIGKILLs them and says so once', async () => {
    const { pgid, record } = groupAndRecord();
    const { wd, stderr } = watchdog(record, 400);
    // twelve pets 100 ms apart (three limits' worth): nothing happens
    let pets = 0;
    const petting = setInterval(() => {
      wd.stdin!.write('pet\n');
      pets++;
    }, 100);
    await waitFor('twelve pets', () => pets >= 12, 10_000);
    clearInterval(petting);
    expect(groupHasLiveMember(pgid)).toBe(true);
    const silentAt = Date.now();
    await waitFor('the group killed', () => !groupHasLiveMember(pgid), 5_000);
    expect(Date.now() - silentAt).toBeGreaterThanOrEqual(300);
    await waitFor('the kill logged', () => /self-fence: killed local group processes \(monitor silent\)/.test(stderr()), 2_000);
    expect(stderr().match(/monitor silent: self-fencing/g)).toHaveLength(1);
    const line = JSON.parse(stderr().split('\n').find((l) => l.includes('killed'))!) as { pgids: number[]; name: string };
    expect(line).toMatchObject({ name: 'peerha-watchdog', pgids: [pgid] });
    wd.stdin!.write('bye\n');
  });

  it('its monitor gone (stdin closed without bye): kills at once and exits 0', async () => {
    const { pgid, record } = groupAndRecord();
    const { wd, exited } = watchdog(record, 60_000);
    wd.stdin!.end();
    expect(await exited).toBe(0);
    await waitFor('the group killed', () => !groupHasLiveMember(pgid), 2_000);
  });

  it('bye: exits 0 and kills nothing; SIGINT and SIGHUP do not stop it', async () => {
    const { pgid, record } = groupAndRecord();
    const { wd, exited } = watchdog(record, 60_000);
    // once its traps are set (SigIgn has SIGHUP and SIGINT: bits 1 and 2)
    await waitFor('signals ignored', () => (BigInt(`0x${/SigIgn:\s+([0-9a-f]+)/.exec(readFileSync(`/proc/${wd.pid}/status`, 'utf8'))![1]}`) & 6n) === 6n, 5_000);
    wd.kill('SIGINT');
    wd.kill('SIGHUP');
    wd.stdin!.write('bye\n'); // still there to read it: exit 0, not death by a signal
    expect(await exited).toBe(0);
    expect(groupHasLiveMember(pgid)).toBe(true);
  });

  it('bye after it fired: it exits only once the stop entries it started have finished (the monitor then publishes left)', async () => {
    const { pgid, record } = groupAndRecord();
    const stops = join(dir, 'n1.stops');
    const done = join(dir, 'released');
    // A stop entry that takes a while (an unmount) and marks when it finished.
    writeFileSync(stops, `stop_timeout_ms 20000\nentry\tweb\tvip\tstop\twait\tsleep 0.6; touch ${done}\n`);
    const wd = spawn(WATCHDOG, [record, '200', stops], { stdio: ['pipe', 'ignore', 'pipe'] });
    procs.push(wd);
    let err = '';
    wd.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    // 'exit', not 'close': the stop entries it forked hold its stderr open after it exits
    const exited = new Promise<number | null>((r) => wd.on('exit', (code) => r(code)));
    await waitFor('the stop entries started', () => /running the stop entries/.test(err), 5_000);
    expect(groupHasLiveMember(pgid)).toBe(false);
    wd.stdin!.write('bye\n');
    expect(await exited).toBe(0);
    expect(existsSync(done), 'the stop entry finished before the watchdog exited').toBe(true);
  });

  it('a record from another boot, or a group leader pid now used by a newer process, is left alone', async () => {
    for (const [boot, start] of [['another-boot', undefined], [BOOT, '1']] as const) {
      const { pgid, record } = groupAndRecord(boot, start);
      const { wd, exited } = watchdog(record, 60_000);
      wd.stdin!.end();
      expect(await exited).toBe(0);
      expect(groupHasLiveMember(pgid)).toBe(true);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a stop_timeout a machine freeze overran (a VM pause) gives the stop entries their time again, not a SIGKILL at the thaw', async () => {
    dir = mkdtempSync(join(tmpdir(), 'peerha-wd-'));
    const stops = join(dir, 'n1.stops');
    const pgidFile = join(dir, 'pgid');
    const done = join(dir, 'released');
    // The entry is its own process group's leader: $$ is its pgid.
    writeFileSync(stops, `stop_timeout_ms 1500\nentry\tweb\tvip\tstop\twait\techo $$ > ${pgidFile}.tmp && mv ${pgidFile}.tmp ${pgidFile}; sleep 2; touch ${done}\n`);
    const wd = spawn(WATCHDOG, ['--run-stops', stops], { stdio: ['ignore', 'ignore', 'pipe'] });
    procs.push(wd);
    let err = '';
    wd.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => wd.on('exit', (code) => r(code)));
    await waitFor('the stop entry started', () => existsSync(pgidFile), 5_000);
    const entry = Number(readFileSync(pgidFile, 'utf8'));
    // The whole machine stops: the watchdog and the stop entry, past the deadline by more than half of it.
    process.kill(wd.pid!, 'SIGSTOP');
    process.kill(-entry, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, 2_600)); // the freeze itself (fault pacing)
    process.kill(wd.pid!, 'SIGCONT');
    // The entry thaws only once the watchdog has judged the deadline (else it could win the race).
    await waitFor('the watchdog looked at its deadline', () => /get their time again|did not finish within stop_timeout/.test(err), 5_000);
    process.kill(-entry, 'SIGCONT');
    expect(await exited).toBe(0);
    expect(err).toMatch(/frozen past stop_timeout: the stop entries get their time again/);
    expect(existsSync(done), 'the stop entry ran to its end').toBe(true);
  });

  it('refuses a bad limit', async () => {
    const { wd, exited, stderr } = watchdog('/nonexistent', Number.NaN);
    wd.stdin!.end();
    expect(await exited).toBe(2);
    expect(stderr()).toMatch(/usage: peerha-watchdog RECORD LIMIT_MS/);
  });
});
