// A daemon killed between forking a command and recording its process group must leave nothing
// running: the watchdog and a restarted daemon kill only what the record names. Found under load
// (six CPU hogs beside the cluster test): a monitor SIGKILLed right as it started web left web
// running for good, and the survivor's web found its lock held.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processesWith, ROOT, waitFor } from '../helpers/daemon.js';

let dir = '';
const marker = `sleep 7106.${process.pid}1`;
afterEach(() => {
  for (const pid of processesWith(marker)) process.kill(pid, 'SIGKILL'); // only if the gate failed
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

/**
 * A node process that spawns `command` through the real runner; `dieOnRecord`: SIGKILL itself
 * when asked to record it; `mayRun`: the runner's last word before the command runs.
 */
async function spawner(command: string, dieOnRecord: boolean, mayRun = true, nice = 0): Promise<{ code: number | null; signal: string | null }> {
  const script = join(dir, 'spawner.mjs');
  writeFileSync(
    script,
    [
      `import { setPriority } from 'node:os';`,
      `if (${nice} !== 0) setPriority(${nice});`,
      `import { RealRunner } from ${JSON.stringify(join(ROOT, 'dist', 'init', 'runner.js'))};`,
      `const runner = new RealRunner({ onGroupsChanged: () => { if (${dieOnRecord}) process.kill(process.pid, 'SIGKILL'); }, mayRun: () => ${mayRun} });`,
      `runner.spawn({ command: ${JSON.stringify(command)} }, { onExit: (code) => process.exit(code === 126 ? 26 : 0), onGone: () => undefined, onOutput: () => undefined });`,
      `setTimeout(() => process.exit(0), 3000);`,
    ].join('\n'),
  );
  const proc = spawn(process.execPath, [script], { stdio: 'ignore' });
  return new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
}

describe('the spawn gate', () => {
  it('a daemon killed after the fork but before the record: the command never runs, nothing is left', async () => {
    dir = mkdtempSync(join(tmpdir(), 'peerha-gate-'));
    const ran = join(dir, 'ran');
    const exit = await spawner(`touch ${ran}; exec ${marker}`, true);
    expect(exit.signal).toBe('SIGKILL');
    // The gated shell sees fd 3 closed and exits; without the gate the sleep would stay forever.
    await waitFor('the orphaned shell to exit', () => processesWith(marker).length === 0, 5_000);
    expect(existsSync(ran)).toBe(false);
  });

  it('a daemon that may no longer start anything when the record is written (frozen past its watchdog): the command never runs', async () => {
    dir = mkdtempSync(join(tmpdir(), 'peerha-gate-'));
    const ran = join(dir, 'ran');
    const exit = await spawner(`touch ${ran}; exec ${marker}`, false, false);
    expect(exit.code).toBe(26); // the shell exited 126
    expect(existsSync(ran)).toBe(false);
    expect(processesWith(marker)).toEqual([]);
  });

  it('once recorded, the command runs as written (the gate opens)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'peerha-gate-'));
    const ran = join(dir, 'ran');
    const exit = await spawner(`echo "$0 $#" > ${ran}; exit 3`, false);
    expect(exit.code).toBe(0);
    await waitFor('the command to run', () => existsSync(ran), 5_000);
  });

  it('a command of a monitor at raised priority runs at the normal one', async () => {
    dir = mkdtempSync(join(tmpdir(), 'peerha-gate-'));
    const ran = join(dir, 'ran');
    // Field 19 of /proc/PID/stat is the nice value; $$ is the shell the runner spawned.
    const exit = await spawner(`cut -d' ' -f19 /proc/$$/stat > ${ran}.tmp; mv ${ran}.tmp ${ran}`, false, true, -7);
    expect(exit.code).toBe(0);
    await waitFor('the command to run', () => existsSync(ran), 5_000);
    expect(readFileSync(ran, 'utf8').trim()).toBe('0');
  });
});
