import { describe, expect, it } from 'vitest';
import {
  MAX_LINE_LENGTH,
  RUN_MODES,
  entryHasLevel,
  expandLevels,
  formatError,
  parseCltab,
  unsafeName,
  type Cltab,
  type CltabEntry,
  type CltabResult,
  type ConfigError,
} from '../../src/config/cltab.js';

const FILE = '/etc/cltab';

/** Parse and insist on success, with a readable failure message otherwise. */
function ok(text: string, file = FILE): Cltab {
  const r = parseCltab(text, file);
  if (!r.ok) throw new Error(`expected ok, got errors:\n${r.errors.map(formatError).join('\n')}`);
  return r.cltab;
}

/** Parse and insist on failure. */
function bad(text: string, file = FILE): readonly ConfigError[] {
  const r = parseCltab(text, file);
  if (r.ok) throw new Error(`expected errors, got ok with ${r.cltab.entries.length} entries`);
  expect(r.errors.length).toBeGreaterThan(0);
  return r.errors;
}

function only(text: string): CltabEntry {
  const c = ok(text);
  expect(c.entries).toHaveLength(1);
  return c.entries[0]!;
}

function entry(levelField: string): CltabEntry {
  return only(`g:t:${levelField}:wait:true`);
}

function levelsOf(field: string): string[] {
  const r = expandLevels(field);
  if ('error' in r) throw new Error(`expandLevels(${JSON.stringify(field)}) failed: ${r.error}`);
  return [...r.levels].sort();
}

function sorted(xs: readonly string[]): string[] {
  return [...xs].sort();
}

describe('parseCltab: entries', () => {
  it('parses group:tag:levels:mode:command', () => {
    const e = only('web:httpd:start:respawn:/usr/sbin/httpd -X');
    expect(e).toMatchObject({
      group: 'web',
      tag: 'httpd',
      levelField: 'start',
      mode: 'respawn',
      command: '/usr/sbin/httpd -X',
      line: 1,
    });
  });

  it('keeps colons inside the command (g:t:1:wait:echo a:b → "echo a:b")', () => {
    expect(only('g:t:1:wait:echo a:b').command).toBe('echo a:b');
    expect(only('g:t:1:wait:date +%H:%M:%S').command).toBe('date +%H:%M:%S');
    expect(only('g:t:1:wait:echo ::: x :').command).toBe('echo ::: x :');
    expect(only('g:t:1:wait:PATH=/bin:/usr/bin env').command).toBe('PATH=/bin:/usr/bin env');
  });

  it('records 1-based line numbers of entries, counting comments and blank lines', () => {
    const c = ok(['# header', '', 'a:a1:1:wait:true', '   ', 'b:b1:2:once:true'].join('\n'));
    expect(c.entries.map((e) => [e.tag, e.line])).toEqual([
      ['a1', 3],
      ['b1', 5],
    ]);
  });

  it('keeps entries in file order and lists groups in order of first appearance', () => {
    const c = ok(['b:b1:1:wait:true', 'a:a1:1:wait:true', 'b:b2:1:wait:true', 'c:c1:1:wait:true'].join('\n'));
    expect(c.entries.map((e) => e.tag)).toEqual(['b1', 'a1', 'b2', 'c1']);
    expect(c.groups).toEqual(['b', 'a', 'c']);
  });

  it('accepts every run mode: wait, once, respawn, test, off', () => {
    expect([...RUN_MODES]).toEqual(['wait', 'once', 'respawn', 'test', 'off']);
    for (const mode of RUN_MODES) {
      expect(only(`g:t:1:${mode}:true`).mode).toBe(mode);
    }
  });

  it('returns the file name it was given', () => {
    expect(ok('g:t:1:wait:true', 'some/where/cltab').file).toBe('some/where/cltab');
  });

  it('an empty file, or only comments and blank lines, is a valid empty cltab', () => {
    for (const text of ['', '\n', '\n\n\n', '# nothing\n', '  \t \n# a\n\n   # b\r\n']) {
      const c = ok(text);
      expect(c.entries).toEqual([]);
      expect(c.groups).toEqual([]);
      expect(c.settings.size).toBe(0);
    }
  });

  it('a file without a final newline parses the same as with one', () => {
    const a = ok('g:t:1:wait:true\nh:u:2:once:false');
    const b = ok('g:t:1:wait:true\nh:u:2:once:false\n');
    expect(a.entries).toEqual(b.entries);
  });

  it('keeps the command as written (inner and leading spaces preserved)', () => {
    expect(only('g:t:1:wait:  echo   "a  b"').command).toBe('  echo   "a  b"');
  });
});

describe('parseCltab: settings', () => {
  it('reads :::name:value settings (socket, clstat)', () => {
    const c = ok([':::socket:/tmp/x.s', ':::clstat:/tmp/clstat', 'g:t:1:wait:true'].join('\n'));
    expect(c.settings.get('socket')).toBe('/tmp/x.s');
    expect(c.settings.get('clstat')).toBe('/tmp/clstat');
    expect(c.entries).toHaveLength(1);
  });

  it('a settings-only file has no entries or groups', () => {
    const c = ok(':::socket:/tmp/x.s\n');
    expect(c.settings.get('socket')).toBe('/tmp/x.s');
    expect(c.entries).toEqual([]);
    expect(c.groups).toEqual([]);
  });

  it('a setting value may contain colons', () => {
    expect(ok(':::socket:/tmp/a:b.s').settings.get('socket')).toBe('/tmp/a:b.s');
  });

  it('settings with a CRLF line ending lose the \\r', () => {
    expect(ok(':::socket:/tmp/x.s\r\n').settings.get('socket')).toBe('/tmp/x.s');
  });

  it('rejects a setting without a name or without a value, naming the line', () => {
    for (const line of [':::socket', ':::socket:', '::::/tmp/x.s', ':::', ':::socket:   ']) {
      const errors = bad(`# x\n${line}\n`);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.line).toBe(2);
      expect(errors[0]!.message).toMatch(/setting/);
    }
  });
});

describe('parseCltab: comments, blank lines and line endings', () => {
  it('skips # comments, also after leading whitespace', () => {
    const c = ok(['# top', '   # indented', '\t# tabbed', 'g:t:1:wait:true', '#g:u:1:wait:true'].join('\n'));
    expect(c.entries.map((e) => e.tag)).toEqual(['t']);
  });

  it('does not treat # inside a command as a comment', () => {
    expect(only('g:t:1:wait:echo a # b').command).toBe('echo a # b');
  });

  it('skips blank and whitespace-only lines', () => {
    const c = ok('\n   \n\t\ng:t:1:wait:true');
    expect(c.entries).toHaveLength(1);
    expect(c.entries[0]!.line).toBe(4);
  });

  it('tolerates CRLF line endings (the trailing \\r is stripped)', () => {
    const lf = ok('# c\n:::socket:/tmp/x.s\n\ng:t:12:wait:echo a:b\nh:u:long1,:test:true\n');
    const crlf = ok('# c\r\n:::socket:/tmp/x.s\r\n\r\ng:t:12:wait:echo a:b\r\nh:u:long1,:test:true\r\n');
    expect(crlf.entries).toEqual(lf.entries);
    expect(crlf.settings).toEqual(lf.settings);
    expect(crlf.entries[0]!.command).toBe('echo a:b');
    expect(crlf.entries[1]!.command).toBe('true');
  });

  it('a CRLF line whose mode is the last field still parses (no "off\\r" mode)', () => {
    // `g:t:1:off:` — the command is empty, \r must not end up in the command or mode.
    expect(only('g:t:1:off:\r\n').mode).toBe('off');
  });

  it('strips only one trailing \\r', () => {
    expect(only('g:t:1:wait:echo x\r\r\n').command).toBe('echo x\r');
  });
});

describe('expandLevels', () => {
  it('without a comma: the whole string and each of its characters', () => {
    expect(levelsOf('1')).toEqual(['1']);
    expect(levelsOf('12')).toEqual(sorted(['1', '2', '12']));
    expect(levelsOf('start')).toEqual(sorted(['start', 's', 't', 'a', 'r']));
    expect(levelsOf('long3')).toEqual(sorted(['long3', 'l', 'o', 'n', 'g', '3']));
  });

  it('a comma list gives exactly its items (long1,long2,5)', () => {
    expect(levelsOf('long1,long2,5')).toEqual(sorted(['long1', 'long2', '5']));
    expect(levelsOf('1,2')).toEqual(['1', '2']);
  });

  it('a trailing comma is allowed (long3, → only long3)', () => {
    expect(levelsOf('long3,')).toEqual(['long3']);
    expect(levelsOf('a,b,')).toEqual(['a', 'b']);
  });

  it('removes duplicates', () => {
    expect(levelsOf('11')).toEqual(['1', '11']);
    expect(levelsOf('a,a')).toEqual(['a']);
  });

  it('0 is an ordinary level', () => {
    expect(levelsOf('0')).toEqual(['0']);
    expect(levelsOf('0,1')).toEqual(['0', '1']);
  });

  it('a dot inside a level name is fine and does not create the level "."', () => {
    // `1.5` is a safe level name; its per-character expansion must not make `.` a level.
    expect(levelsOf('1.5')).toEqual(sorted(['1.5', '1', '5']));
    expect(levelsOf('v1.2,v1.3')).toEqual(['v1.2', 'v1.3']);
  });

  it('rejects an empty field, a lone comma and empty comma items', () => {
    for (const f of ['', ',', ',,', 'a,,b', ',a']) {
      const r = expandLevels(f);
      expect('error' in r, f).toBe(true);
    }
  });

  it('rejects unsafe levels: whitespace, "/", "." and ".."', () => {
    for (const f of ['a b', ' 1', '1\t', 'a/b', '.', '..', '1,.', '..,2', '1, 2', 'a/b,c']) {
      const r = expandLevels(f);
      expect('error' in r, JSON.stringify(f)).toBe(true);
      if ('error' in r) expect(r.error).toMatch(/level/);
    }
  });
});

describe('entryHasLevel: literal matching', () => {
  it('12 is active at 1, 2 and 12 but not at 3 or 21', () => {
    const e = entry('12');
    expect(entryHasLevel(e, '1')).toBe(true);
    expect(entryHasLevel(e, '2')).toBe(true);
    expect(entryHasLevel(e, '12')).toBe(true);
    expect(entryHasLevel(e, '3')).toBe(false);
    expect(entryHasLevel(e, '21')).toBe(false);
    expect(entryHasLevel(e, '')).toBe(false);
  });

  it('long1,long2,5 is active at exactly those three', () => {
    const e = entry('long1,long2,5');
    for (const l of ['long1', 'long2', '5']) expect(entryHasLevel(e, l), l).toBe(true);
    for (const l of ['long', 'long3', 'l', '1', 'long1,long2,5', '.*', 'long.']) expect(entryHasLevel(e, l), l).toBe(false);
  });

  it('long3, (trailing comma) is active at long3 only, not its characters', () => {
    const e = entry('long3,');
    expect(entryHasLevel(e, 'long3')).toBe(true);
    for (const l of ['l', 'o', 'n', 'g', '3', 'long3,', '']) expect(entryHasLevel(e, l), l).toBe(false);
  });

  it('never uses the told level as a regex', () => {
    const e = entry('start');
    for (const l of ['.', '.*', 's.art', '^start$', '[s]', 'st?art', '(start)', 's|x']) {
      expect(entryHasLevel(e, l), l).toBe(false);
    }
  });

  it('§6 item 12: levels are literal — a told "." never matches, and "0" matches an entry with level field 0', () => {
    // Original: told levels were regexes (`.` matched every single-character level) and
    // an entry whose level field was exactly `0` never matched.
    for (const field of ['1', 'a', '0', '12', 'start', 'x,y', '5,']) {
      expect(entryHasLevel(entry(field), '.'), `field ${field}`).toBe(false);
    }
    const zero = only('g:t:0:wait:true');
    expect(zero.levels).toEqual(['0']);
    expect(entryHasLevel(zero, '0')).toBe(true);
    expect(entryHasLevel(zero, '00')).toBe(false);
    expect(entryHasLevel(zero, '')).toBe(false);
    expect(entryHasLevel(entry('0,1'), '0')).toBe(true);
    expect(entryHasLevel(entry('10'), '0')).toBe(true);
  });

  it('g:t:0:wait:true is active at level 0 (0 is an ordinary level)', () => {
    const c = ok('g:t:0:wait:true\ng:u:1:wait:true');
    expect(c.entries.filter((e) => entryHasLevel(e, '0')).map((e) => e.tag)).toEqual(['t']);
  });
});

describe('unsafeName', () => {
  it('accepts ordinary names', () => {
    for (const n of ['web', 'a.b', 'a-b_c', '0', '12', 'x..y', '...', 'é', '服务', 'a,b', '#x', 'a$b']) {
      expect(unsafeName(n), n).toBeNull();
    }
  });

  it('rejects empty, ".", "..", whitespace, ":", "/" and control characters with a reason', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /empty/],
      ['.', /"\."/],
      ['..', /"\.\."/],
      ['a b', /whitespace/],
      ['a\tb', /whitespace/],
      [' a', /whitespace/],
      ['a\u00a0b', /whitespace/],
      ['a:b', /":"/],
      ['a/b', /"\/"/],
      ['/', /"\/"/],
      ['a\u0001b', /control/],
      ['a\u007fb', /control/],
    ];
    for (const [name, why] of cases) {
      const r = unsafeName(name);
      expect(r, JSON.stringify(name)).not.toBeNull();
      expect(r, JSON.stringify(name)).toMatch(why);
    }
  });
});

describe('parseCltab: errors', () => {
  function oneError(text: string): ConfigError {
    const errors = bad(text);
    expect(errors, errors.map(formatError).join('\n')).toHaveLength(1);
    return errors[0]!;
  }

  it('rejects an unknown mode and lists the expected ones', () => {
    const e = oneError('# x\ng:t:1:sometimes:true');
    expect(e).toMatchObject({ file: FILE, line: 2 });
    expect(e.message).toMatch(/unknown mode "sometimes"/);
    for (const m of RUN_MODES) expect(e.message).toContain(m);
  });

  it('modes are case-sensitive and not trimmed', () => {
    for (const m of ['WAIT', 'Wait', ' wait', 'wait ', 'respawn\t']) {
      expect(oneError(`g:t:1:${m}:true`).message).toMatch(/unknown mode/);
    }
  });

  it('rejects lines with fewer than 5 fields', () => {
    for (const line of ['g', 'g:t', 'g:t:1', 'g:t:1:wait', 'just some words']) {
      const e = oneError(`g0:t0:1:wait:true\n${line}`);
      expect(e.line).toBe(2);
      expect(e.message).toMatch(/group:tag:levels:mode:command/);
      expect(e.message).toMatch(/5 fields/);
    }
  });

  it('rejects a missing (empty) group, tag, levels or mode', () => {
    expect(oneError(':t:1:wait:true').message).toMatch(/group: missing/);
    expect(oneError('g::1:wait:true').message).toMatch(/tag: missing/);
    expect(oneError('g:t::wait:true').message).toMatch(/levels: missing/);
    expect(oneError('g:t:1::true').message).toMatch(/unknown mode ""/);
  });

  it('rejects an empty command (except for mode off)', () => {
    expect(oneError('g:t:1:wait:').message).toMatch(/command: missing/);
    expect(oneError('g:t:1:once:   ').message).toMatch(/command: missing/);
    expect(oneError('g:t:1:wait:\r\n').message).toMatch(/command: missing/);
    expect(only('g:t:1:off:').command).toBe('');
  });

  it('reports every problem of one line', () => {
    const errors = bad('a b:c/d:.:never:');
    const text = errors.map((e) => e.message).join('\n');
    expect(errors.every((e) => e.line === 1)).toBe(true);
    expect(text).toMatch(/group "a b" must not contain whitespace/);
    expect(text).toMatch(/tag "c\/d" must not contain "\/"/);
    expect(text).toMatch(/level "\." must not be "\."/);
    expect(text).toMatch(/unknown mode "never"/);
    expect(text).toMatch(/command: missing/);
  });

  it('rejects unsafe group, tag and level names', () => {
    const cases: Array<[string, RegExp]> = [
      ['my group:t:1:wait:true', /group "my group" must not contain whitespace/],
      ['g:my tag:1:wait:true', /tag "my tag" must not contain whitespace/],
      ['a/b:t:1:wait:true', /group "a\/b" must not contain "\/"/],
      ['g:a/b:1:wait:true', /tag "a\/b" must not contain "\/"/],
      ['.:t:1:wait:true', /group "\." must not be "\."/],
      ['..:t:1:wait:true', /group "\.\." must not be "\.\."/],
      ['g:.:1:wait:true', /tag "\." must not be "\."/],
      ['g:..:1:wait:true', /tag "\.\." must not be "\.\."/],
      ['g:t:.:wait:true', /level "\." must not be "\."/],
      ['g:t:..:wait:true', /level "\.\." must not be "\.\."/],
      ['g:t:1 2:wait:true', /level "1 2" must not contain whitespace/],
      ['g:t:a/b:wait:true', /level "a\/b" must not contain "\/"/],
      ['g:t:1,..:wait:true', /level "\.\." must not be "\.\."/],
      [' g:t:1:wait:true', /group " g" must not contain whitespace/],
    ];
    for (const [line, why] of cases) {
      const e = oneError(line);
      expect(e.line).toBe(1);
      expect(e.message, line).toMatch(why);
    }
  });

  it('rejects empty items in a level list', () => {
    expect(oneError('g:t:a,,b:wait:true').message).toMatch(/empty level/);
    expect(oneError('g:t:,:wait:true').message).toMatch(/at least one level/);
  });

  it('rejects a line longer than MAX_LINE_LENGTH, naming the line', () => {
    const long = `g:t:1:wait:echo ${'x'.repeat(MAX_LINE_LENGTH)}`;
    const e = oneError(`g:a:1:wait:true\n${long}\ng:b:1:wait:true`);
    expect(e.line).toBe(2);
    expect(e.message).toMatch(/line too long/);
    // Exactly at the limit is fine.
    const atLimit = `g:t:1:wait:${'y'.repeat(MAX_LINE_LENGTH - 'g:t:1:wait:'.length)}`;
    expect(atLimit.length).toBe(MAX_LINE_LENGTH);
    expect(only(atLimit).command.length).toBe(MAX_LINE_LENGTH - 'g:t:1:wait:'.length);
  });

  it('rejects binary data (NUL byte) and names the line it is on', () => {
    const e = oneError('g:a:1:wait:true\ng:b:1:wait:true\ng:c:1:wait:tr\u0000ue\n');
    expect(e.message).toMatch(/NUL/);
    expect(e.line).toBe(3);
    expect(oneError('\u0000').line).toBe(1);
  });

  it('rejects a file with any error whole: no partial configuration', () => {
    const r: CltabResult = parseCltab(
      [':::socket:/tmp/x.s', 'g:a:1:wait:true', 'g:b:1:bogus:true', 'g:c:1:wait:true'].join('\n'),
      FILE,
    );
    expect(r.ok).toBe(false);
    expect(r).not.toHaveProperty('cltab');
    if (!r.ok) {
      expect(r.errors).toHaveLength(1);
      expect(r.errors[0]!.line).toBe(3);
    }
  });

  it('reports errors on several lines, in line order', () => {
    const errors = bad(['g:a:1:wait:true', 'g:b:1:bogus:true', '# ok', 'g:c', 'g:d:1:wait:true', ':::x'].join('\n'));
    expect(errors.map((e) => e.line)).toEqual([2, 4, 6]);
    expect(errors.every((e) => e.file === FILE)).toBe(true);
  });

  it('caps the number of errors reported for a hopeless file', () => {
    const errors = bad('nonsense\n'.repeat(1000));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.length).toBeLessThanOrEqual(100);
    expect(errors[0]!.line).toBe(1);
  });
});

describe('parseCltab: duplicate tags', () => {
  it('§6 item 3: duplicate tags are reported clearly with both line numbers', () => {
    const errors = bad(['# a', 'web:httpd:1:wait:true', 'db:pg:1:wait:true', 'web:httpd:2:once:true'].join('\n'));
    expect(errors).toHaveLength(1);
    const e = errors[0]!;
    expect(e.line).toBe(4);
    expect(e.message).toContain('duplicate tag');
    expect(e.message).toContain('"httpd"');
    expect(e.message).toMatch(/line 2\b/);
    expect(formatError(e)).toMatch(/^\/etc\/cltab:4: duplicate tag "httpd" .*line 2/);
  });

  it('tags are unique per file across groups', () => {
    const e = bad('a:x:1:wait:true\nb:x:1:wait:true')[0]!;
    expect(e.line).toBe(2);
    expect(e.message).toMatch(/duplicate tag "x".*line 1/);
  });

  it('a tag used three times is reported twice, each pointing at the first line', () => {
    const errors = bad('g:x:1:wait:true\ng:x:2:wait:true\ng:x:3:wait:true');
    expect(errors.map((e) => e.line)).toEqual([2, 3]);
    for (const e of errors) expect(e.message).toMatch(/duplicate tag "x".*line 1/);
  });

  it('the same group on several lines is fine (only tags must be unique)', () => {
    expect(ok('g:a:1:wait:true\ng:b:1:wait:true').groups).toEqual(['g']);
  });

  it('a group may share its name with a tag', () => {
    expect(ok('web:web:1:wait:true\ndb:web2:1:wait:true').entries).toHaveLength(2);
  });

  it('tags are case-sensitive', () => {
    expect(ok('g:web:1:wait:true\ng:WEB:1:wait:true').entries).toHaveLength(2);
  });

  it('§6 item 20: tags with regex metacharacters are compared literally (a.b and axb are not duplicates)', () => {
    // The 2003 original compared tags with a regex match, so `a.b` "equalled" `axb`.
    const c = ok(
      [
        'g:a.b:1:wait:true',
        'g:axb:1:wait:true',
        'g:a*:1:wait:true',
        'g:aaa:1:wait:true',
        'g:[ab]:1:wait:true',
        'g:a:1:wait:true',
        'g:x+:1:wait:true',
        'g:xx:1:wait:true',
        'g:^y$:1:wait:true',
        'g:y:1:wait:true',
      ].join('\n'),
    );
    expect(c.entries.map((e) => e.tag)).toEqual(['a.b', 'axb', 'a*', 'aaa', '[ab]', 'a', 'x+', 'xx', '^y$', 'y']);
    // And a real duplicate of a metacharacter tag is still caught.
    expect(bad('g:a.b:1:wait:true\ng:a.b:2:wait:true')[0]!.message).toContain('duplicate tag');
  });
});

describe('formatError', () => {
  it('gives file:line: message', () => {
    expect(formatError({ file: 'cl/tab', line: 7, message: 'something is wrong' })).toBe('cl/tab:7: something is wrong');
  });

  it('formats parser errors with the file name that was passed in', () => {
    const errors = bad('g:t:1:nope:true', 'examples/cltab');
    expect(formatError(errors[0]!)).toMatch(/^examples\/cltab:1: unknown mode "nope": expected one of wait, once, respawn, test, off, monitor$/);
  });
});

// Reconstruction of Cluster::Init 0.215 t/cltab.master (reference §5.1).
const CLTAB_MASTER = [
  '# Cluster::Init test fixture (reconstructed t/cltab.master)',
  ':::socket:t/clinit.s',
  ':::clstat:t/clstat',
  ':::log:t/clinitlog',
  '',
  'hellogrp:hello1:1:wait:echo hello world! > t/out',
  'hellogrp:hello2:2:respawn:echo hello world! >> t/out',
  'hellogrp:hello3:3:wait:sleep 5; : > t/out',
  'hellogrp:hello4:4:once:echo 1 > t/out; sleep 4; echo 3 >> t/out',
  'hellogrp:hello4a:4:wait:sleep 2; echo 2 >> t/out',
  'hellogrp:hellolong:long1,long2,5:wait:echo long > t/out',
  'hellogrp:hellolong3:long3,:wait:echo long3 > t/out',
  'pidgrp:pid1:1:respawn:echo $$ > t/out; exec sleep 10',
  'foogrp:foo1:12:once:echo foo1start > t/out; sleep 6; echo foo1end >> t/out',
  'foogrp:foo3:3:once:echo foo3 > t/out',
  'bargrp:bar1:1:once:echo bar1start >> t/out; sleep 6; echo bar1end >> t/out',
  'bazgrp:baz1:1:once:sleep 20; echo baz1 >> t/out',
  'scramjet:scram1:1:wait:date',
  'hellogrp:htest1:f:test:true',
  'hellogrp:htest2:f:test:false',
  'hellogrp:htest3:t:test:true',
  'test:test1:1:wait:sleep 3',
  'test:test2:1:wait:sleep 2',
  'test:test3:2:wait:sleep 2',
  'test:test4:2:wait:sleep 3',
  'test:test5:3:test:true',
  'test:test6:3:test:sleep 1',
  '',
].join('\n');

describe('reference §5.1 fixture t/cltab.master', () => {
  const c = ok(CLTAB_MASTER, 't/cltab');
  const active = (group: string, level: string): string[] =>
    c.entries.filter((e) => e.group === group && entryHasLevel(e, level)).map((e) => e.tag);

  it('parses with its settings, groups and 22 entries', () => {
    expect(c.file).toBe('t/cltab');
    expect(Object.fromEntries(c.settings)).toEqual({ socket: 't/clinit.s', clstat: 't/clstat', log: 't/clinitlog' });
    expect(c.groups).toEqual(['hellogrp', 'pidgrp', 'foogrp', 'bargrp', 'bazgrp', 'scramjet', 'test']);
    expect(c.entries).toHaveLength(22);
    expect(new Set(c.entries.map((e) => e.tag)).size).toBe(22);
    expect(c.entries[0]).toMatchObject({ group: 'hellogrp', tag: 'hello1', levelField: '1', mode: 'wait', line: 6 });
    expect(c.entries.find((e) => e.tag === 'hellolong')).toMatchObject({
      levelField: 'long1,long2,5',
      mode: 'wait',
      command: 'echo long > t/out',
    });
    expect(c.entries.find((e) => e.tag === 'pid1')?.mode).toBe('respawn');
  });

  it('has the expected entries per group, in file order', () => {
    const byGroup = (g: string): string[] => c.entries.filter((e) => e.group === g).map((e) => e.tag);
    expect(byGroup('hellogrp')).toEqual([
      'hello1',
      'hello2',
      'hello3',
      'hello4',
      'hello4a',
      'hellolong',
      'hellolong3',
      'htest1',
      'htest2',
      'htest3',
    ]);
    expect(byGroup('pidgrp')).toEqual(['pid1']);
    expect(byGroup('foogrp')).toEqual(['foo1', 'foo3']);
    expect(byGroup('bargrp')).toEqual(['bar1']);
    expect(byGroup('bazgrp')).toEqual(['baz1']);
    expect(byGroup('scramjet')).toEqual(['scram1']);
    expect(byGroup('test')).toEqual(['test1', 'test2', 'test3', 'test4', 'test5', 'test6']);
  });

  it('activates the entries the original tests expect at each level', () => {
    // 0230group / 0231level / 0233passfail
    expect(active('test', '1')).toEqual(['test1', 'test2']);
    expect(active('test', '2')).toEqual(['test3', 'test4']);
    expect(active('test', '3')).toEqual(['test5', 'test6']);
    expect(c.entries.filter((e) => e.group === 'test' && entryHasLevel(e, '3')).every((e) => e.mode === 'test')).toBe(true);
    // 20wait / 30once
    expect(active('hellogrp', '1')).toEqual(['hello1']);
    expect(active('hellogrp', '3')).toEqual(['hello3']);
    expect(active('hellogrp', '4')).toEqual(['hello4', 'hello4a']);
    // 25long
    expect(active('hellogrp', 'long1')).toEqual(['hellolong']);
    expect(active('hellogrp', 'long2')).toEqual(['hellolong']);
    expect(active('hellogrp', '5')).toEqual(['hellolong']);
    expect(active('hellogrp', 'long3')).toEqual(['hellolong3']);
    expect(active('hellogrp', 'l')).toEqual([]);
    // 60multichar: foo1 (levels 12) is active at 1 and 2, not 3 or 99
    expect(active('foogrp', '1')).toEqual(['foo1']);
    expect(active('foogrp', '2')).toEqual(['foo1']);
    expect(active('foogrp', '12')).toEqual(['foo1']);
    expect(active('foogrp', '3')).toEqual(['foo3']);
    expect(active('foogrp', '99')).toEqual([]);
    // 40respawn / 45init0
    expect(active('pidgrp', '1')).toEqual(['pid1']);
    expect(active('pidgrp', '99')).toEqual([]);
    expect(active('pidgrp', '0')).toEqual([]);
    // 80test
    expect(active('hellogrp', 'f')).toEqual(['htest1', 'htest2']);
    expect(active('hellogrp', 't')).toEqual(['htest3']);
    // 50multigrp
    expect(active('bargrp', '1')).toEqual(['bar1']);
    expect(active('bazgrp', '1')).toEqual(['baz1']);
    // No entry anywhere answers to a regex-looking level.
    expect(c.entries.filter((e) => entryHasLevel(e, '.'))).toEqual([]);
  });

  it('the same fixture with CRLF line endings parses identically', () => {
    const crlf = ok(CLTAB_MASTER.replace(/\n/g, '\r\n'), 't/cltab');
    expect(crlf.entries).toEqual(c.entries);
    expect(crlf.settings).toEqual(c.settings);
    expect(crlf.groups).toEqual(c.groups);
  });

  it('appending 0233passfail’s test:test7:3:test:false keeps it valid; appending a duplicate tag does not', () => {
    const more = ok(`${CLTAB_MASTER}test:test7:3:test:false\n`);
    expect(more.entries.filter((e) => e.group === 'test' && entryHasLevel(e, '3')).map((e) => e.tag)).toEqual([
      'test5',
      'test6',
      'test7',
    ]);
    const dup = bad(`${CLTAB_MASTER}test:test1:3:test:false\n`);
    expect(dup).toHaveLength(1);
    expect(dup[0]!.message).toMatch(/duplicate tag "test1" \(first used on line 22\)/);
    expect(dup[0]!.line).toBe(28);
  });

  it('47reread / 48off one-line replacement cltabs parse', () => {
    expect(only('scram:scram2:1:wait:sleep 1')).toMatchObject({ group: 'scram', tag: 'scram2', mode: 'wait' });
    expect(only('offgrp:off1:1:off:echo $$ > t/out; sleep 30').mode).toBe('off');
  });
});
