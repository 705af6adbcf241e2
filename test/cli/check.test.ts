import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { formatProblems, runCheck } from '../../src/cli/check.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function files(cltab: string, hactl: string, mode = 0o644): { cltab: string; hactl: string } {
  const dir = mkdtempSync(join(tmpdir(), 'peerha-check-'));
  dirs.push(dir);
  const c = join(dir, 'cltab');
  const h = join(dir, 'hactl');
  writeFileSync(c, cltab);
  writeFileSync(h, hactl);
  chmodSync(c, mode);
  chmodSync(h, 0o644);
  return { cltab: c, hactl: h };
}

it('passes a good cltab + hactl', async () => {
  const f = files('web:w1:test:test:true\nweb:w2:start:respawn:sleep 9\n', 'web start\n');
  expect((await runCheck(f)).problems).toEqual([]);
});

it('reports syntax, cross-file and permission problems as file:line', async () => {
  const f = files('web:w1:start:respawn:sleep 1\nweb:w1:start:wait:true\n', 'web run\nghost start\n', 0o664);
  const out = formatProblems((await runCheck(f)).problems);
  expect(out).toContain(`${f.cltab}: writable by group or others`);
  expect(out).toContain(`${f.cltab}:2: duplicate tag "w1"`);
  // the cltab was rejected, and the hactl is checked against what did parse of it
  const g = files('web:w1:start:respawn:sleep 1\n', 'web run\nghost start\n');
  const out2 = formatProblems((await runCheck(g)).problems);
  expect(out2).toContain(`${g.hactl}:1: level run of group web: no entry`);
  expect(out2).toContain(`${g.hactl}:2: group ghost has no entries`);
});

it('checks across files on what did parse when a file has errors; flags shadowed hactl lines and a directory others may write', async () => {
  const f = files('web:w1:start:respawn:sleep 1\nbroken\n', 'web run\ndb start\nweb start\n');
  const out = formatProblems((await runCheck(f)).problems);
  expect(out).toContain(`${f.cltab}:2: expected "group:tag:levels:mode:command"`);
  expect(out).toContain(`${f.hactl}:1: group web again on line 3, which wins: this line is shadowed`);
  expect(out).toContain(`${f.hactl}:2: group db has no entries in ${f.cltab}`);
  const dir = join(f.cltab, '..');
  chmodSync(dir, 0o777);
  const open = formatProblems((await runCheck(f)).problems);
  expect(open.split('\n').filter((l) => l.startsWith(`${dir}: directory writable by others (mode 777)`))).toHaveLength(1);
  chmodSync(dir, 0o1777); // sticky: others cannot replace what they do not own
  expect(formatProblems((await runCheck(f)).problems)).not.toContain('directory writable');
  chmodSync(dir, 0o700);
});

it('refuses what the monitor refuses across settings: timeout under 2 × cycle, stop_timeout longer than timeout allows', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'peerha-check-'));
  dirs.push(dir);
  const config = join(dir, 'peerha.yaml');
  writeFileSync(config, 'cycle: 2s\ntimeout: 3s\n');
  expect(formatProblems((await runCheck({ config })).problems)).toContain(`${config}:2: timeout 3s must be at least 2 × cycle`);
  writeFileSync(config, 'timeout: 4s\nstop_timeout: 2s\n');
  expect(formatProblems((await runCheck({ config })).problems)).toContain(`${config}:2: stop_timeout 2s is too long for timeout 4s`);
  writeFileSync(config, 'timeout: 4s\nstop_timeout: 1.9s\n');
  expect((await runCheck({ config })).problems).toEqual([]);
});

it('refuses a group wanted at its own stop_level', async () => {
  const f = files('web:w1:start:respawn:sleep 1\nweb:w2:down:wait:true\n', 'web down\n');
  const config = join(f.cltab, '..', 'peerha.yaml');
  writeFileSync(config, 'stop_level:\n  web: down\n');
  expect(formatProblems((await runCheck({ ...f, config })).problems)).toContain(`${f.hactl}:1: level down is group web's stop_level: want it stopped with "web stop"`);
});

it('checks the example monitor configuration clean', async () => {
  expect((await runCheck({ config: join(import.meta.dirname, '../../examples/peerha.yaml') })).problems).toEqual([]);
});
