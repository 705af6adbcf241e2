// bin/peerha-watchdog under wall-clock steps: real processes under libfaketime, whose offset comes
// from a timestamp file the test rewrites mid-run (only the wall clock steps: DONT_FAKE_MONOTONIC).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { groupHasLiveMember, procStartTime } from '../../src/init/runner.js';
import { killGroupsOf, ROOT, waitFor } from '../helpers/daemon.js';

const WATCHDOG = resolve(ROOT, 'bin', 'peerha-watchdog');
const BOOT = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const LIMIT = 500;

// Through the `faketime` wrapper, not a bare LD_PRELOAD: in a bash whose parent is not faked,
// libfaketime's setenv(FAKETIME_SHARED) lands in bash's own setenv before bash has imported its
// environment, its getenv then misses FAKETIME_NO_CACHE, and bash would see each step up to 10 s
// late. The wrapper passes FAKETIME_SHARED down; `env -u FAKETIME` lets the timestamp file rule.
const missing = ((): string | null => {
  const r = spawnSync('faketime', ['-f', '+0', 'true'], { encoding: 'utf8' });
  if (!r.error && r.status === 0) return null;
  return `libfaketime is not installed (faketime -f +0 true: ${r.error?.message ?? r.stderr.trim()}); install it: apt-get install faketime (.ci/run does)`;
})();

let dir = '';
const procs: ChildProcess[] = [];
const faked: Faked[] = [];
beforeEach(() => {
  if (missing) throw new Error(missing);
  dir = mkdtempSync(join(tmpdir(), 'peerha-wdclock-'));
  setWallOffset(0);
});
afterEach(async () => {
  // EOF first, so that each faketime wrapper exits on its own and removes its shared memory
  for (const f of faked.splice(0)) {
    f.proc.stdin!.end();
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([f.exited, new Promise((r) => (timer = setTimeout(() => r('hung'), 2000)))]);
    clearTimeout(timer);
    if (code !== 'hung') continue;
    procs.push(f.proc);
    for (const name of [`faketime_shm_${f.proc.pid}`, `sem.faketime_sem_${f.proc.pid}`]) rmSync(join('/dev/shm', name), { force: true });
  }
  killGroupsOf(procs);
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

/** Steps the faked wall clock to real time + `seconds` (a rename: never a half-written file). */
function setWallOffset(seconds: number): void {
  writeFileSync(join(dir, 'ts.new'), `${seconds >= 0 ? '+' : ''}${seconds}\n`);
  renameSync(join(dir, 'ts.new'), join(dir, 'ts'));
}

function fakeEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FAKETIME') && k !== 'LD_PRELOAD') env[k] = v;
  return { ...env, FAKETIME_TIMESTAMP_FILE: join(dir, 'ts'), FAKETIME_NO_CACHE: '1', DONT_FAKE_MONOTONIC: '1' };
}

interface Faked {
  proc: ChildProcess;
  write(line: string): void;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

/** `cmd` under libfaketime, in its own process group (the wrapper stays its parent). */
function underFaketime(cmd: string[]): Faked {
  const proc = spawn('faketime', ['-f', '+0', 'env', '-u', 'FAKETIME', ...cmd], { stdio: ['pipe', 'pipe', 'pipe'], env: fakeEnv(), detached: true });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  proc.stdin!.on('error', () => undefined);
  const f: Faked = {
    proc,
    write: (line) => void proc.stdin!.write(line),
    stdout: () => out,
    stderr: () => err,
    exited: new Promise((r) => proc.on('close', (code) => r(code))),
  };
  faked.push(f);
  return f;
}

/** What a process under the same setup reads on the wall clock, minus the real time (s). */
function fakedOffset(): number {
  const r = spawnSync('faketime', ['-f', '+0', 'env', '-u', 'FAKETIME', 'date', '+%s'], { encoding: 'utf8', env: fakeEnv() });
  return Number(r.stdout.trim()) - Date.now() / 1000;
}

/** A process group standing in for a resource group, recorded as PgidRecord.save() does. */
function groupAndRecord(): { pgid: number; record: string } {
  const g = spawn('sleep', ['1000'], { detached: true, stdio: 'ignore' });
  procs.push(g);
  const record = join(dir, 'n1.pgids');
  writeFileSync(record, JSON.stringify({ bootId: BOOT, daemonPid: process.pid, groups: [{ pgid: g.pid!, start: procStartTime(g.pid!) ?? '' }] }) + '\n');
  return { pgid: g.pid!, record };
}

// The negative control: the watchdog's old loop, bash 5.2's `read -t` (a wall-clock deadline).
// One line per read: status, monotonic centiseconds it took, bash's own wall clock.
const CONTROL = [
  'while :; do',
  '  read -r a _ </proc/uptime',
  '  IFS= read -r -t "$1" line',
  '  rc=$?',
  '  read -r b _ </proc/uptime',
  '  echo "$rc $((10#${b/./} - 10#${a/./})) $EPOCHREALTIME"',
  '  ((rc == 0 || rc > 128)) || exit 0',
  'done',
].join('\n');

function controlReads(c: Faked): { rc: number; ms: number; wall: number }[] {
  return c
    .stdout()
    .split('\n')
    .filter((l) => /^\d+ -?\d+ [\d.]+$/.test(l))
    .map((l) => l.split(' ').map(Number))
    .map(([rc, cs, wall]) => ({ rc: rc!, ms: cs! * 10, wall: wall! }));
}

/** Timeouts well before the limit, by the monotonic clock: `read -t` ended early. */
function earlyTimeouts(c: Faked): number {
  return controlReads(c).filter((r) => r.rc > 128 && r.ms < LIMIT - 50).length;
}

describe('bin/peerha-watchdog under wall-clock steps (libfaketime)', () => {
  it('(a) petted every LIMIT/4 while the wall clock steps +1 h, -1 h, +1 h, -1 h: it kills nothing; (c) the same steps make a bash `read -t` loop time out early', async () => {
    const { pgid, record } = groupAndRecord();
    const wd = underFaketime([WATCHDOG, record, String(LIMIT)]);
    const control = underFaketime(['bash', '-c', CONTROL, 'control', (LIMIT / 1000).toFixed(3)]);
    let pets = 0;
    const petting = setInterval(() => {
      wd.write('pet\n');
      control.write('pet\n');
      pets++;
    }, LIMIT / 4);
    const morePets = async (n: number): Promise<void> => {
      const target = pets + n;
      await waitFor(`${n} more pets`, () => pets >= target, 20 * LIMIT);
    };
    const early: number[] = [];
    try {
      await morePets(8);
      expect(earlyTimeouts(control)).toBe(0); // no step, no early timeout
      for (const offset of [3600, 0, 3600, 0]) {
        setWallOffset(offset);
        // The step is in effect once the control's wall clock shows it.
        await waitFor(`the control's wall clock at +${offset} s`, () => Math.abs((controlReads(control).at(-1)?.wall ?? 0) - Date.now() / 1000 - offset) < 60, 10 * LIMIT);
        await morePets(8); // two limits' worth of pets on the stepped clock
        early.push(earlyTimeouts(control));
      }
    } finally {
      clearInterval(petting);
    }
    expect(wd.stderr()).not.toMatch(/self-fenc/);
    expect(groupHasLiveMember(pgid)).toBe(true);
    expect(wd.proc.exitCode).toBeNull();
    // (c) the fault injection reaches a `read -t` wait: each +1 h step ends one early (at the next
    // pet, partial line and all); the -1 h steps do not (the waits are short and pets keep coming)
    expect(early[0]).toBeGreaterThanOrEqual(1);
    expect(early[2]! - early[1]!).toBeGreaterThanOrEqual(1);
    wd.write('bye\n');
    control.proc.stdin!.end();
    expect(await wd.exited).toBe(0);
    expect(await control.exited).toBe(0);
  });

  it('(b) silent while the wall clock steps -1 h: it still self-fences within the limit and a tick', async () => {
    const { pgid, record } = groupAndRecord();
    const wd = underFaketime([WATCHDOG, record, String(LIMIT)]);
    let pets = 0;
    const petting = setInterval(() => {
      wd.write('pet\n');
      pets++;
    }, LIMIT / 4);
    try {
      await waitFor('eight pets', () => pets >= 8, 20 * LIMIT);
    } finally {
      clearInterval(petting);
    }
    const silentAt = performance.now();
    setWallOffset(-3600);
    expect(Math.abs(fakedOffset() + 3600)).toBeLessThan(60); // the step is in effect
    await waitFor('the group killed', () => !groupHasLiveMember(pgid), 10 * LIMIT);
    expect(performance.now() - silentAt).toBeGreaterThanOrEqual(LIMIT - 50); // and not early
    await waitFor('the kill logged', () => /self-fence: killed local group processes \(monitor silent\)/.test(wd.stderr()), 10 * LIMIT);
    expect(wd.stderr().match(/monitor silent: self-fencing/g)).toHaveLength(1);
    const line = JSON.parse(wd.stderr().split('\n').find((l) => l.includes('killed'))!) as { pgids: number[]; name: string };
    expect(line).toMatchObject({ name: 'peerha-watchdog', pgids: [pgid] });
    wd.write('bye\n');
    expect(await wd.exited).toBe(0);
  });
});
