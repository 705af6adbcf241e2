// `peerha check`: validate cltab, hactl and the monitor config together, the way an operator
// wants before a change goes live. Every problem is `file:line: message`.

import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
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

/** Commands in cltab run as root on every node: nobody but the owner may write these files. */
async function checkPermissions(path: string, problems: ConfigError[]): Promise<void> {
  try {
    const st = await lstat(path);
    if (st.mode & 0o022) {
      problems.push({ file: path, line: 0, message: `writable by group or others (mode ${(st.mode & 0o777).toString(8)}): its commands run as root on every node; chmod go-w` });
    }
  } catch {
    // reported by read()
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
  /** Read, check permissions and parse one file; its parsed value when valid. */
  const load = async <T>(path: string | undefined, parse: (text: string, file: string) => { ok: true; value: T } | { ok: false; errors: readonly ConfigError[] }): Promise<T | null> => {
    if (!path) return null;
    checked.push(path);
    const text = await read(path, problems);
    if (text === null) return null;
    await checkPermissions(path, problems);
    const r = parse(text, path);
    if (r.ok) return r.value;
    problems.push(...r.errors);
    return null;
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
