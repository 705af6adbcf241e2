// Property/fuzz tests for the cltab parser: whatever the input, parseCltab never throws and
// returns either a well-formed configuration or file:line errors that point inside the file.
// Deterministic: a seeded mulberry32 PRNG, no extra dependency.
import { beforeEach, describe, expect, it } from 'vitest';
import {
  MAX_LINE_LENGTH,
  RUN_MODES,
  expandLevels,
  formatError,
  parseCltab,
  unsafeName,
  type CltabResult,
} from '../../src/config/cltab.js';

const FILE = 'fuzz/cltab';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;
const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)] as T;
}

/** Short, printable description of an input for failure messages. */
function show(text: string): string {
  const s = JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}…(${text.length} chars)` : text);
  return s;
}

/** Inputs this test fed to the parser (each test states and checks its own count). */
let fed = 0;

/**
 * Parse `text` and check every invariant. Returns the result so callers can add their own checks.
 * Throws (fails the test) with the seed/case and input when an invariant does not hold.
 */
function check(text: string, where: string): CltabResult {
  fed++;
  let r: CltabResult;
  try {
    r = parseCltab(text, FILE);
  } catch (e) {
    throw new Error(`${where}: parseCltab threw ${String(e)} on ${show(text)}`);
  }
  const fail = (why: string): never => {
    throw new Error(`${where}: ${why}\ninput: ${show(text)}\nresult: ${JSON.stringify(r, (_k, v: unknown) => (v instanceof Map ? [...v] : v)).slice(0, 2000)}`);
  };
  const lines = text.split('\n');
  const lineCount = lines.length;

  if (r.ok) {
    const c = r.cltab;
    if (c.file !== FILE) fail('wrong file');
    const tags = new Set<string>();
    const groups: string[] = [];
    let lastLine = 0;
    for (const e of c.entries) {
      if (unsafeName(e.group) !== null) fail(`unsafe group ${JSON.stringify(e.group)}`);
      if (unsafeName(e.tag) !== null) fail(`unsafe tag ${JSON.stringify(e.tag)}`);
      if (!(RUN_MODES as readonly string[]).includes(e.mode)) fail(`unknown mode ${JSON.stringify(e.mode)}`);
      if (e.levels.length === 0) fail(`no levels for ${e.tag}`);
      for (const l of e.levels) if (unsafeName(l) !== null) fail(`unsafe level ${JSON.stringify(l)}`);
      if (new Set(e.levels).size !== e.levels.length) fail('repeated level');
      const exp = expandLevels(e.levelField);
      if ('error' in exp || exp.levels.join('\u0001') !== e.levels.join('\u0001')) fail('levels disagree with expandLevels');
      if (e.mode !== 'off' && e.command.trim() === '') fail('empty command');
      if (tags.has(e.tag)) fail(`duplicate tag ${e.tag} accepted`);
      tags.add(e.tag);
      if (!groups.includes(e.group)) groups.push(e.group);
      if (!Number.isInteger(e.line) || e.line < 1 || e.line > lineCount) fail(`entry line ${e.line} out of 1..${lineCount}`);
      if (e.line <= lastLine) fail('entries out of file order');
      lastLine = e.line;
      let src = lines[e.line - 1] ?? '';
      if (src.endsWith('\r')) src = src.slice(0, -1);
      if (src !== `${e.group}:${e.tag}:${e.levelField}:${e.mode}:${e.command}`) fail(`entry does not reproduce line ${e.line}`);
    }
    if (JSON.stringify(groups) !== JSON.stringify(c.groups)) fail('groups list disagrees with entries');
    for (const [k, v] of c.settings) {
      if (k === '' || k.includes(':')) fail(`bad setting name ${JSON.stringify(k)}`);
      if (v === '' || v !== v.trim()) fail(`bad setting value ${JSON.stringify(v)}`);
    }
    if (text.includes('\u0000')) fail('NUL accepted');
  } else {
    if (!Array.isArray(r.errors) || r.errors.length < 1) fail('ok:false without errors');
    if ('cltab' in r) fail('partial configuration returned with errors');
    for (const e of r.errors) {
      if (e.file !== FILE) fail('wrong file in error');
      if (!Number.isInteger(e.line) || e.line < 1 || e.line > lineCount) fail(`error line ${e.line} out of 1..${lineCount}`);
      if (typeof e.message !== 'string' || e.message.trim() === '') fail('empty message');
      if (!formatError(e).startsWith(`${FILE}:${e.line}: `)) fail('formatError');
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Generators

const MODES = [...RUN_MODES];
const NAME_CHARS = 'abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_.+@%=~'.split('').concat(['é', 'ß', '服', '😀']);

function safeName(rng: Rng): string {
  for (;;) {
    let s = '';
    const n = int(rng, 1, 8);
    for (let i = 0; i < n; i++) s += pick(rng, NAME_CHARS);
    if (unsafeName(s) === null) return s;
  }
}

function levelField(rng: Rng): string {
  const k = rng();
  if (k < 0.4) return safeName(rng).replace(/,/g, '');
  const items: string[] = [];
  const n = int(rng, 1, 4);
  for (let i = 0; i < n; i++) items.push(safeName(rng));
  return items.join(',') + (rng() < 0.3 ? ',' : '');
}

function command(rng: Rng): string {
  return pick(rng, [
    'true',
    'false',
    'sleep 1',
    'echo a:b:c',
    'date +%H:%M:%S',
    'PATH=/bin:/usr/bin exec sleep 10',
    'echo "x # y" > /tmp/out',
    "sh -c 'echo $$; sleep 3'",
    'echo ::: > /dev/null',
  ]);
}

interface GenEntry {
  group: string;
  tag: string;
  levelField: string;
  mode: string;
  command: string;
}

/** A random valid cltab (unique tags) and the entries it should yield. */
function validCltab(rng: Rng, maxEntries = 12): { text: string; entries: GenEntry[]; settings: Map<string, string> } {
  const lines: string[] = [];
  const entries: GenEntry[] = [];
  const settings = new Map<string, string>();
  const groups = Array.from({ length: int(rng, 1, 4) }, () => safeName(rng));
  const n = int(rng, 0, maxEntries);
  for (let i = 0; i < n; i++) {
    const k = rng();
    if (k < 0.1) lines.push(pick(rng, ['', '   ', '\t']));
    else if (k < 0.2) lines.push(pick(rng, ['# comment', '   # indented: a:b:c', '#g:t:1:wait:true']));
    else if (k < 0.28) {
      const name = pick(rng, ['socket', 'clstat', 'log', 'other']);
      const value = pick(rng, ['/tmp/x.s', 't/clstat', '/var/run/a:b', 'v']);
      settings.set(name, value);
      lines.push(`:::${name}:${value}`);
    } else {
      const e: GenEntry = {
        group: pick(rng, groups),
        tag: `${safeName(rng)}${i}`,
        levelField: levelField(rng),
        mode: pick(rng, MODES),
        command: command(rng),
      };
      entries.push(e);
      lines.push(`${e.group}:${e.tag}:${e.levelField}:${e.mode}:${e.command}`);
    }
  }
  return { text: lines.join('\n') + (rng() < 0.5 ? '\n' : ''), entries, settings };
}

const FIXTURE = [
  '# reconstructed t/cltab.master (excerpt)',
  ':::socket:t/clinit.s',
  ':::clstat:t/clstat',
  'hellogrp:hello1:1:wait:echo hello world! > t/out',
  'hellogrp:hello4:4:once:echo 1 > t/out; sleep 4; echo 3 >> t/out',
  'hellogrp:hellolong:long1,long2,5:wait:echo long > t/out',
  'hellogrp:hellolong3:long3,:wait:echo long3 > t/out',
  'pidgrp:pid1:1:respawn:echo $$ > t/out; sleep 10',
  'foogrp:foo1:12:once:echo foo1start > t/out; sleep 6; echo foo1end >> t/out',
  'scramjet:scram1:1:wait:date +%H:%M:%S',
  'hellogrp:htest1:f:test:true',
  'test:test6:3:test:sleep 1',
  'offgrp:off1:1:off:',
  '',
].join('\n');

const INSERTS = [
  '\r',
  '\u0000',
  '\n',
  ':',
  ',',
  '#',
  ' ',
  '\t',
  '.',
  '..',
  '/',
  'é',
  '😀',
  '\uD800', // lone surrogate
  '\uDC00',
  '\uFEFF', // BOM
  '\u2028',
  '\u0085',
  '\u00a0',
  '\u0007',
  '\u007f',
  ':::',
  'wait',
  'off',
];

function mutate(rng: Rng, text: string): string {
  let s = text;
  const n = int(rng, 1, 8);
  for (let m = 0; m < n; m++) {
    const at = s.length === 0 ? 0 : int(rng, 0, s.length - 1);
    switch (int(rng, 0, 8)) {
      case 0: // delete a character
        s = s.slice(0, at) + s.slice(at + 1);
        break;
      case 1: // duplicate a character
        s = s.slice(0, at + 1) + s.slice(at);
        break;
      case 2: // swap two adjacent characters
        if (s.length > 1 && at < s.length - 1) s = s.slice(0, at) + s[at + 1] + s[at] + s.slice(at + 2);
        break;
      case 3: // insert something nasty
        s = s.slice(0, at) + pick(rng, INSERTS) + s.slice(at);
        break;
      case 4: // replace a character
        s = s.slice(0, at) + pick(rng, INSERTS) + s.slice(at + 1);
        break;
      case 5: {
        // duplicate a line (often a duplicate tag)
        const ls = s.split('\n');
        const i = int(rng, 0, ls.length - 1);
        ls.splice(int(rng, 0, ls.length), 0, ls[i] ?? '');
        s = ls.join('\n');
        break;
      }
      case 6: {
        // delete a line
        const ls = s.split('\n');
        ls.splice(int(rng, 0, ls.length - 1), 1);
        s = ls.join('\n');
        break;
      }
      case 7: {
        // swap two lines
        const ls = s.split('\n');
        const i = int(rng, 0, ls.length - 1);
        const j = int(rng, 0, ls.length - 1);
        [ls[i], ls[j]] = [ls[j] ?? '', ls[i] ?? ''];
        s = ls.join('\n');
        break;
      }
      default: // truncate
        s = s.slice(0, at);
    }
  }
  return s;
}

function binaryJunk(rng: Rng, withNul: boolean): string {
  const n = int(rng, 0, 400);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(withNul ? int(rng, 0, 255) : int(rng, 1, 255));
  return s;
}

const SOUP = [':', ':', ':', ',', ',', '\n', '\n', '\r\n', '\r', '#', ' ', '\t', '.', '/', 'g', 't', '1', '0', '12', ':::', 'socket', ...MODES, 'é'];

function colonSoup(rng: Rng): string {
  const n = int(rng, 0, 80);
  let s = '';
  for (let i = 0; i < n; i++) s += pick(rng, SOUP);
  return s;
}

const toCrlf = (s: string): string => s.replace(/\n/g, '\r\n');

// ---------------------------------------------------------------------------------------------

describe('cltab fuzz: parseCltab never throws and always answers sensibly', () => {
  beforeEach(() => {
    fed = 0;
  });

  it('random binary junk (3,000 inputs, half without NUL bytes)', () => {
    const rng = mulberry32(0xc17ab);
    for (let i = 0; i < 3000; i++) {
      check(binaryJunk(rng, i % 2 === 0), `binary #${i}`);
    }
    expect(fed).toBe(3000);
  });

  it('random soups of colons, commas, newlines, modes and names (3,000 inputs)', () => {
    const rng = mulberry32(0x5eed01);
    let oks = 0;
    for (let i = 0; i < 3000; i++) {
      if (check(colonSoup(rng), `soup #${i}`).ok) oks++;
    }
    // Some soups are empty/blank/comment-only and therefore valid; most are not.
    expect(oks).toBeGreaterThan(0);
    expect(oks).toBeLessThan(3000);
    expect(fed).toBe(3000);
  });

  it('mutations of a valid cltab: deleted/duplicated/swapped characters, \\r, \\0, unicode, lines (4,000 inputs)', () => {
    const rng = mulberry32(0xdeadbeef);
    expect(check(FIXTURE, 'fixture').ok).toBe(true);
    let oks = 0;
    let errs = 0;
    for (let i = 0; i < 4000; i++) {
      const base = i % 4 === 0 ? validCltab(rng).text : FIXTURE;
      let text = mutate(rng, base);
      if (i % 3 === 0) text = toCrlf(text);
      if (check(text, `mutation #${i}`).ok) oks++;
      else errs++;
    }
    expect(oks).toBeGreaterThan(0);
    expect(errs).toBeGreaterThan(0);
    expect(fed).toBe(4001);
  });

  it('randomly generated valid cltabs parse to exactly their entries, also with CRLF (1,000 inputs ×2)', () => {
    const rng = mulberry32(0x600d);
    for (let i = 0; i < 1000; i++) {
      const g = validCltab(rng);
      for (const [variant, text] of [
        ['lf', g.text],
        ['crlf', toCrlf(g.text)],
      ] as const) {
        const r = check(text, `valid #${i} (${variant})`);
        if (!r.ok) throw new Error(`valid #${i} (${variant}) rejected: ${r.errors.map(formatError).join('; ')}\n${show(text)}`);
        expect(r.cltab.entries.map(({ group, tag, levelField, mode, command }) => ({ group, tag, levelField, mode, command }))).toEqual(g.entries);
        expect(r.cltab.settings).toEqual(g.settings);
      }
    }
    expect(fed).toBe(2000);
  });

  it('huge lines (> 64 KiB) are rejected with their line number (20 inputs), the limit itself is fine', () => {
    const rng = mulberry32(0xb16);
    for (let i = 0; i < 20; i++) {
      const before = int(rng, 0, 5);
      const lines = Array.from({ length: before }, (_, j) => `g:t${j}:1:wait:true`);
      const fill = pick(rng, ['x', ':', 'a:b,', '\u00e9', ' ']);
      const huge = `g:huge:1:wait:${fill.repeat(Math.ceil((MAX_LINE_LENGTH + 1 + int(rng, 0, 5000)) / fill.length))}`;
      lines.push(huge, 'g:after:1:wait:true');
      let text = lines.join('\n');
      if (i % 2 === 1) text = toCrlf(text);
      const r = check(text, `huge #${i}`);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.errors).toHaveLength(1);
        expect(r.errors[0]!.line).toBe(before + 1);
        expect(r.errors[0]!.message).toMatch(/line too long/);
      }
    }
    // A single line without any newline, far beyond the limit.
    const r = check(':'.repeat(1_000_000), 'one megabyte of colons');
    expect(r.ok).toBe(false);
    // A line exactly at the limit (after \r stripping) is accepted.
    const at = `g:t:1:wait:${'y'.repeat(MAX_LINE_LENGTH - 11)}`;
    expect(check(`${at}\r\n`, 'at limit, CRLF').ok).toBe(true);
  });

  it('a 100,000-line valid file (unique tags) parses OK; CRLF too', () => {
    const N = 100_000;
    const lines: string[] = [];
    for (let i = 0; i < N; i++) {
      const mode = MODES[i % MODES.length]!;
      lines.push(`grp${i % 50}:tag${i}:${i % 3 === 0 ? '12' : `l${i % 7},start,`}:${mode}:echo ${i}:done`);
    }
    const text = `${lines.join('\n')}\n`;
    for (const [variant, t] of [
      ['lf', text],
      ['crlf', toCrlf(text)],
    ] as const) {
      const r = check(t, `100k (${variant})`);
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.cltab.entries).toHaveLength(N);
        expect(r.cltab.groups).toHaveLength(50);
        expect(r.cltab.entries[N - 1]).toMatchObject({ tag: `tag${N - 1}`, line: N, command: `echo ${N - 1}:done` });
      }
    }
  });

  it('a 100,000-line file with one duplicate tag at the end names both lines', () => {
    const N = 100_000;
    const lines = Array.from({ length: N - 1 }, (_, i) => `g:t${i}:1:wait:true`);
    lines.push('h:t41:2:once:true');
    const r = check(lines.join('\n'), '100k duplicate');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errors).toHaveLength(1);
      expect(r.errors[0]!.line).toBe(N);
      expect(r.errors[0]!.message).toMatch(/duplicate tag "t41".*line 42/);
    }
  });

  it('a 100,000-line file of garbage gives a bounded number of errors', () => {
    const rng = mulberry32(0x9a4b);
    const lines = Array.from({ length: 100_000 }, () => colonSoup(rng).replace(/[\r\n]/g, ''));
    const r = check(lines.join('\r\n'), '100k garbage');
    if (!r.ok) expect(r.errors.length).toBeLessThanOrEqual(100);
  });
});
