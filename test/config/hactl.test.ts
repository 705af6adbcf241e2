import { describe, expect, it } from 'vitest';
import { formatHactl, parseHactl } from '../../src/config/hactl.js';

describe('hactl', () => {
  it('parses group level [nodes], comments, blank lines and CRLF; a later line wins', () => {
    const r = parseHactl('# wants\n\nweb start\r\n  db  2  n1,n2\n  # x\nweb stop\n', 'hactl');
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect([...r.hactl.wants.values()].map((w) => [w.group, w.level, w.nodes])).toEqual([
      ['web', 'stop', null],
      ['db', '2', ['n1', 'n2']],
    ]);
    expect(r.warnings[0]).toMatchObject({ line: 3, message: 'group web again on line 6, which wins: this line is shadowed' });
  });

  it('0 is an ordinary level', () => {
    const r = parseHactl('g 0\n', 'hactl');
    expect(r.ok && r.hactl.wants.get('g')?.level).toBe('0');
  });

  it('errors name file:line and what was expected', () => {
    const r = parseHactl('web\nok start\nweb a b c\nx/y start\ndb start n1,bad/name\n', '/x/hactl');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => `${e.file}:${e.line}`)).toEqual(['/x/hactl:1', '/x/hactl:3', '/x/hactl:4', '/x/hactl:5']);
    expect(r.errors[0]!.message).toMatch(/expected "group level/);
  });

  it('never throws on junk', () => {
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 2000; i++) {
      const s = Array.from({ length: Math.floor(rnd() * 200) }, () => String.fromCharCode(Math.floor(rnd() * 128))).join('');
      expect(() => parseHactl(s, 'hactl')).not.toThrow();
    }
  });

  it('round-trips through formatHactl', () => {
    const r = parseHactl('web start n1,n2\ndb 2\n', 'hactl');
    if (!r.ok) throw new Error('bad');
    expect(formatHactl(r.hactl.wants.values())).toBe('web start n1,n2\ndb 2\n');
  });
});
