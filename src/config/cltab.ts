// cltab: `group:tag:levels:mode:command` entries and `:::name:value` settings.
// Pure: text in, configuration or file:line errors out. Never throws on any input.

import { nameProblem } from './names.js';

export const RUN_MODES = ['wait', 'once', 'respawn', 'test', 'off'] as const;
export type RunMode = (typeof RUN_MODES)[number];

export interface CltabEntry {
  readonly group: string;
  readonly tag: string;
  /** The level field as written, e.g. `12` or `long1,long2,5`. */
  readonly levelField: string;
  /** Every level the entry is active at (literal strings, compared with ===). */
  readonly levels: readonly string[];
  readonly mode: RunMode;
  readonly command: string;
  readonly line: number;
}

export interface Cltab {
  readonly file: string;
  readonly entries: readonly CltabEntry[];
  readonly settings: ReadonlyMap<string, string>;
  /** Group names in order of first appearance. */
  readonly groups: readonly string[];
}

export interface ConfigError {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

export type CltabResult =
  | { readonly ok: true; readonly cltab: Cltab }
  | { readonly ok: false; readonly errors: readonly ConfigError[] };

export const MAX_LINE_LENGTH = 64 * 1024;
const MAX_ERRORS = 100;

/**
 * An admin file whose last line has no newline, or that is empty, was caught mid-write (an
 * editor or `printf >` still writing): not used until it is complete.
 */
export function halfWritten(text: string, file: string): ConfigError | null {
  // Empty is how a file looks between truncate and write: "nothing wanted" is a comment line.
  if (text === '') return { file, line: 1, message: 'empty: the file looks truncated mid-write; not used (for "nothing wanted" write a comment line)' };
  if (text.endsWith('\n')) return null;
  return { file, line: text.split('\n').length, message: 'the last line has no newline: the file looks half-written; not used until it ends with a newline' };
}

export function formatError(e: ConfigError): string {
  return `${e.file}:${e.line}: ${e.message}`;
}

/** Why `name` cannot be a group, tag or level, or null when it is safe. */
/** Why a group, tag or level name is unacceptable, or null (see names.ts). */
export function unsafeName(name: string): string | null {
  return nameProblem('level', name);
}

/**
 * Expand a level field: a comma list (trailing comma allowed), or without a comma the
 * whole string plus each of its characters (`12` → `12`, `1`, `2`).
 */
export function expandLevels(field: string): { levels: string[] } | { error: string } {
  let items: string[];
  if (field.includes(',')) {
    items = field.split(',');
    while (items.length > 0 && items[items.length - 1] === '') items.pop();
    if (items.length === 0) return { error: 'levels: expected at least one level before ","' };
    if (items.some((i) => i === '')) return { error: `levels "${field}": empty level in comma list` };
  } else {
    // A character that cannot be a level on its own (only `.`, as in `1.5`) is not one.
    items = [field, ...Array.from(field).filter((c) => unsafeName(c) === null)];
  }
  for (const level of items) {
    const why = unsafeName(level);
    if (why) return { error: `level "${level}" ${why}` };
  }
  return { levels: [...new Set(items)] };
}

export function entryHasLevel(entry: CltabEntry, level: string): boolean {
  return entry.levels.includes(level);
}

function isRunMode(s: string): s is RunMode {
  return (RUN_MODES as readonly string[]).includes(s);
}

function printable(s: string, max = 40): string {
  const shown = s.length > max ? `${s.slice(0, max)}…` : s;
  return JSON.stringify(shown);
}

export function parseCltab(text: string, file: string): CltabResult {
  const errors: ConfigError[] = [];
  const entries: CltabEntry[] = [];
  const settings = new Map<string, string>();
  const groups = new Set<string>();
  const tagLines = new Map<string, number>();
  const err = (line: number, message: string): void => {
    if (errors.length < MAX_ERRORS) errors.push({ file, line, message });
  };

  const nul = text.indexOf('\u0000');
  if (nul >= 0) {
    const line = text.slice(0, nul).split('\n').length;
    return { ok: false, errors: [{ file, line, message: 'binary data (NUL byte): expected a text cltab' }] };
  }

  const lines = (text.startsWith('\uFEFF') ? text.slice(1) : text).split('\n');
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    let raw = lines[i] ?? '';
    if (raw.endsWith('\r')) raw = raw.slice(0, -1);
    if (raw.length > MAX_LINE_LENGTH) {
      err(n, `line too long (${raw.length} characters, at most ${MAX_LINE_LENGTH})`);
      continue;
    }
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;

    if (raw.startsWith(':::')) {
      const rest = raw.slice(3);
      const colon = rest.indexOf(':');
      const name = colon < 0 ? rest : rest.slice(0, colon);
      const value = colon < 0 ? '' : rest.slice(colon + 1).trim();
      if (name === '' || colon < 0) {
        err(n, 'setting: expected ":::name:value"');
        continue;
      }
      if (value === '') {
        err(n, `setting "${name}": expected a value after ":::${name}:"`);
        continue;
      }
      settings.set(name, value);
      continue;
    }

    const parts = raw.split(':');
    if (parts.length < 5) {
      err(n, `expected "group:tag:levels:mode:command" (5 fields), found ${parts.length}`);
      continue;
    }
    const [group = '', tag = '', levelField = '', mode = ''] = parts;
    const command = parts.slice(4).join(':');
    const fields: Array<[string, string]> = [['group', group], ['tag', tag]];
    let bad = false;
    for (const [what, value] of fields) {
      const why = unsafeName(value);
      if (why) {
        err(n, value === '' ? `${what}: missing` : `${what} ${printable(value)} ${why}`);
        bad = true;
      }
    }
    const levels = expandLevels(levelField);
    if (levelField === '') {
      err(n, 'levels: missing (expected e.g. "start" or "1,2")');
      bad = true;
    } else if ('error' in levels) {
      err(n, levels.error);
      bad = true;
    }
    if (!isRunMode(mode)) {
      err(n, `unknown mode ${printable(mode)}: expected one of ${RUN_MODES.join(', ')}`);
      bad = true;
    }
    if (command.trim() === '' && mode !== 'off') {
      err(n, 'command: missing (expected a shell command after the mode)');
      bad = true;
    }
    if (tag !== '' && tagLines.has(tag)) {
      err(n, `duplicate tag ${printable(tag)} (first used on line ${tagLines.get(tag)}); tags are unique per file`);
      bad = true;
    } else if (tag !== '') {
      tagLines.set(tag, n);
    }
    if (bad || 'error' in levels || !isRunMode(mode)) continue;
    groups.add(group);
    entries.push({ group, tag, levelField, levels: levels.levels, mode, command, line: n });
  }

  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, cltab: { file, entries, settings, groups: [...groups] } };
}
