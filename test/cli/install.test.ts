// Installing like a real tool: `npm pack` → `npm install -g` puts `peerha` on PATH, and the
// production unit and inittab line name the path that install gives. systemd-analyze verifies the
// unit in a throw-away root (--root): the package installed under its usr/, the system's unit
// directory and the unit's other commands copied in, so that nothing lands in the real /usr.

import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/daemon.js';

const run = (cmd: string, args: string[], cwd = ROOT): Promise<{ code: number; out: string }> =>
  new Promise((res) => {
    execFile(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });

const UNIT = join(ROOT, 'examples', 'production', 'peerha-monitor.service');
const INITTAB = join(ROOT, 'examples', 'production', 'inittab');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The absolute commands of the unit's Exec*= lines. */
function unitCommands(text: string): string[] {
  return [...text.matchAll(/^Exec\w+=[-@:+!]*(\/\S+)/gm)].map((m) => m[1]!);
}

describe('install', () => {
  const dir = mkdtempSync(join(tmpdir(), 'peerha-install-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('npm pack + npm install -g gives bin/peerha that answers --version; the unit and inittab line name that path and the unit verifies', async () => {
    // dist/ is built by `npm test` before the tests run: pack it as it is.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir]);
    expect(pack.code, pack.out).toBe(0);
    const tgz = join(dir, `peerha-${VERSION}.tgz`);
    expect(existsSync(tgz), pack.out).toBe(true);
    const root = join(dir, 'root');
    const prefix = join(root, 'usr');
    const inst = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tgz]);
    expect(inst.code, inst.out).toBe(0);
    const bin = join(prefix, 'bin', 'peerha');
    const ver = await run(bin, ['--version']);
    expect(ver).toEqual({ code: 0, out: `peerha ${VERSION}\n` });

    // `npm prefix -g` is /usr with Node from nodejs.org or NodeSource (this machine): the unit's path.
    const unit = readFileSync(UNIT, 'utf8');
    const exec = /^ExecStart=(\S+)/m.exec(unit)?.[1];
    expect(exec).toBe('/usr/bin/peerha');
    expect(readFileSync(INITTAB, 'utf8')).toMatch(/^[^#].*:respawn:\/usr\/bin\/peerha monitor /m);

    const analyze = '/usr/bin/systemd-analyze';
    if (!existsSync(analyze)) throw new Error(`${analyze} is missing: apt-get install systemd (it verifies examples/production/peerha-monitor.service)`);
    mkdirSync(join(root, 'etc', 'systemd', 'system'), { recursive: true });
    copyFileSync(UNIT, join(root, 'etc', 'systemd', 'system', 'peerha-monitor.service'));
    cpSync('/usr/lib/systemd/system', join(root, 'usr', 'lib', 'systemd', 'system'), { recursive: true });
    for (const c of unitCommands(unit)) {
      if (c === exec || !existsSync(c)) continue;
      mkdirSync(join(root, dirname(c)), { recursive: true });
      copyFileSync(c, join(root, c));
    }
    const verify = await run(analyze, ['verify', `--root=${root}`, 'peerha-monitor.service']);
    expect(verify, 'systemd-analyze verify').toEqual({ code: 0, out: '' });
  }, 180_000);
});
