// `peerha check`: validate cltab, hactl and the monitor config together, the way an operator
// wants before a change goes live. Every problem is `file:line: message`.

import { lstat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { isRefused, readRegularFile } from '../cluster/store.js';
import { entryHasLevel, formatError, halfWritten, parseCltab, type Cltab, type ConfigError } from '../config/cltab.js';
import { parseHactl, type Hactl } from '../config/hactl.js';
import { parseMonitorConfig, resolveMonitorConfig, stopLevelOf, type StopLevels } from '../config/monitor.js';
import { describeAgent } from '../fence/agent.js';
import { validateFenceMethods } from '../fence/validate.js';

export interface CheckInput {
  cltab?: string;
  hactl?: string;
  config?: string;
}

// Async reads only: these files may be on the shared directory, where a failing close() in
// the sync API aborts Node on a FUSE mount.
async function read(path: string, problems: ConfigError[]): Promise<string | null> {
  const r = await readRegularFile(path);
  if (!isRefused(r)) return r.text;
  problems.push({ file: path, line: 0, message: `cannot read (${r.error})` });
  return null;
}

const octal = (mode: number): string => (mode & 0o7777).toString(8);

/**
 * Commands in cltab run as root on every node: nobody but the owner may write these files, nor
 * replace them — a directory on the path writable by others (without the sticky bit) lets anyone
 * rename another file over them.
 */
async function checkPermissions(path: string, problems: ConfigError[], dirsSeen: Set<string>): Promise<void> {
  try {
    const st = await lstat(path);
    if (st.mode & 0o022) {
      problems.push({ file: path, line: 0, message: `writable by group or others (mode ${octal(st.mode)}): its commands run as root on every node; chmod go-w` });
    }
  } catch {
    // reported by read()
  }
  for (let dir = dirname(resolve(path)); !dirsSeen.has(dir); dir = dirname(dir)) {
    dirsSeen.add(dir);
    const st = await lstat(dir).catch(() => null);
    if (st && st.mode & 0o002 && !(st.mode & 0o1000)) {
      problems.push({ file: dir, line: 0, message: `directory writable by others (mode ${octal(st.mode)}) on the path to ${path}: anyone may replace the files in it; chmod o-w` });
    }
    if (dir === dirname(dir)) break;
  }
}

/** Problems across files: wanted groups without entries, wanted levels no entry has. */
export function crossCheck(cltab: Cltab, hactl: Hactl): ConfigError[] {
  const out: ConfigError[] = [];
  for (const w of hactl.wants.values()) {
    const entries = cltab.entries.filter((e) => e.group === w.group);
    if (entries.length === 0) {
      out.push({ file: hactl.file, line: w.line, message: `group ${w.group} has no entries in ${cltab.file}` });
      continue;
    }
    if (w.level !== 'stop' && !entries.some((e) => entryHasLevel(e, w.level))) {
      out.push({ file: hactl.file, line: w.line, message: `level ${w.level} of group ${w.group}: no entry of ${cltab.file} has it (the group would run nothing)` });
    }
  }
  return out;
}

/** A group's own stop level (other than `stop`) wanted in hactl: the monitor would stop and replan it for ever. */
export function stopLevelWanted(hactl: Hactl, levels: StopLevels): ConfigError[] {
  return [...hactl.wants.values()]
    .filter((w) => w.level !== 'stop' && w.level === stopLevelOf(levels, w.group))
    .map((w) => ({ file: hactl.file, line: w.line, message: `level ${w.level} is group ${w.group}'s stop_level: want it stopped with "${w.group} stop"` }));
}

export async function runCheck(input: CheckInput): Promise<{ problems: ConfigError[]; checked: string[] }> {
  const problems: ConfigError[] = [];
  const checked: string[] = [];
  const dirsSeen = new Set<string>();
  type Parsed<T> = { ok: true; value: T } | { ok: false; errors: readonly ConfigError[]; partial?: T };
  /**
   * Read, check permissions and parse one file: its parsed value when valid, else what did parse
   * (`partial`: checks across files still run on it, as the monitor would refuse the whole file).
   */
  const load = async <T>(path: string | undefined, parse: (text: string, file: string) => Parsed<T>): Promise<T | null> => {
    if (!path) return null;
    checked.push(path);
    const text = await read(path, problems);
    if (text === null) return null;
    await checkPermissions(path, problems, dirsSeen);
    const r = parse(text, path);
    if (r.ok) return r.value;
    problems.push(...r.errors);
    return r.partial ?? null;
  };
  const cut = (t: string, f: string) => {
    const e = halfWritten(t, f);
    return e ? { ok: false as const, errors: [e] } : null;
  };
  const cltab = await load(input.cltab, (t, f) => {
    const half = cut(t, f);
    if (half) return half;
    const r = parseCltab(t, f);
    return r.ok ? { ok: true, value: r.cltab } : r;
  });
  const hactl = await load(input.hactl, (t, f) => {
    const half = cut(t, f);
    if (half) return half;
    const r = parseHactl(t, f);
    // A group on two lines: the monitor takes the last one, the admin may have meant the other.
    problems.push(...(r.warnings ?? []));
    return r.ok ? { ok: true, value: r.hactl } : r;
  });
  const config = await load(input.config, (t, f) => {
    const r = parseMonitorConfig(t, f);
    return r.ok ? { ok: true, value: r.config } : r;
  });
  if (config && input.config) {
    problems.push(...validateFenceMethods(input.config, config.values.fenceMethods ?? [], describeAgent));
    // What the monitor refuses across settings (timeout vs cycle, stop_timeout vs timeout), as the
    // file alone sets them: root and node come from elsewhere on each machine.
    const resolved = resolveMonitorConfig(config, { root: config.values.root ?? '/', node: config.values.node ?? 'check' }, {}, 'check');
    if (!resolved.ok) problems.push(...resolved.errors.filter((e) => e.file === input.config));
  }
  if (cltab && hactl) problems.push(...crossCheck(cltab, hactl));
  if (hactl && config?.values.stopLevel) problems.push(...stopLevelWanted(hactl, config.values.stopLevel));
  // Per file (in the order they came up), by line.
  const fileOrder = new Map<string, number>();
  for (const p of problems) if (!fileOrder.has(p.file)) fileOrder.set(p.file, fileOrder.size);
  problems.sort((a, b) => fileOrder.get(a.file)! - fileOrder.get(b.file)! || a.line - b.line);
  return { problems, checked };
}

/** The files of a shared root: the admin copies when present, else this node's replicas. */
export async function rootInputs(root: string, node?: string): Promise<CheckInput> {
  const pick = async (file: string): Promise<string | undefined> => {
    for (const p of [join(root, file), ...(node ? [join(root, 'nodes', node, file)] : [])]) {
      // A symlink is picked, to be refused by read() with a message rather than passed over.
      const st = await lstat(p).catch(() => null);
      if (st && (st.isFile() || st.isSymbolicLink())) return p;
    }
    return undefined;
  };
  return { cltab: await pick('cltab'), hactl: await pick('hactl') };
}

export function formatProblems(problems: readonly ConfigError[]): string {
  return problems.map(formatError).join('\n');
}
