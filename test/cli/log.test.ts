import { expect, it } from 'vitest';
import { prettyLine } from '../../src/io/log.js';

it('renders a pino JSON line as one readable line, without colour when asked', () => {
  const line = prettyLine(JSON.stringify({ level: 30, time: Date.UTC(2026, 0, 1, 12, 0, 1, 234), pid: 1, name: 'x', group: 'web', reason: 'needed and running nowhere', msg: 'decide: web → plan' }), false);
  expect(line).toBe('12:00:01.234 INFO  decide: web → plan  group=web reason="needed and running nowhere"');
  expect(prettyLine('not json', false)).toBe('not json');
});
