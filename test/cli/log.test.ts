import { expect, it } from 'vitest';
import { prettyLine } from '../../src/io/log.js';

it('renders a pino JSON line as one readable line, without colour when asked', () => {
  const line = prettyLine(JSON.stringify({ level: 30, time: Date.UTC(2026, 0, 1, 12, 0, 1, 234), pid: 1, name: 'x', group: 'web', reason: 'needed and running nowhere', msg: 'decide: web → plan' }), false);
  expect(line).toBe('12:00:01.234 INFO  decide: web → plan  group=web reason="needed and running nowhere"');
  expect(prettyLine('not json', false)).toBe('not json');
});

it('a group level logged by a real monitor logger goes out as `runlevel`: the severity is the only `level` key', async () => {
  const { execFileSync } = await import('node:child_process');
  const { pathToFileURL } = await import('node:url');
  const { resolve } = await import('node:path');
  const mod = pathToFileURL(resolve(import.meta.dirname, '../../dist/io/log.js')).href;
  const script = `const { createLogger } = await import(${JSON.stringify(mod)}); createLogger('peerha-monitor').info({ group: 'web', level: 'plan' }, 'decide: web → plan');`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, PEERHA_LOG_FORMAT: 'json' } }).trim();
  expect(out.match(/"level":/g)).toHaveLength(1);
  const o = JSON.parse(out) as Record<string, unknown>;
  expect(o).toMatchObject({ level: 30, runlevel: 'plan', group: 'web' });
  expect(prettyLine(out, false)).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}decide: web → plan {2}group=web runlevel=plan$/);
});
