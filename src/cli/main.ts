// peerha command line: subcommand dispatch. Each subcommand parses its own flags with
// node:util parseArgs and answers --help.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { filterStatus, parseClstat, type ClstatLine } from '../config/clstat.js';
import { parseCltab } from '../config/cltab.js';
import { createLogger } from '../io/log.js';
import { DEFAULT_CLSTAT, DEFAULT_SOCKET, resolvePaths, runDaemon, shortHostname } from '../init/daemon.js';
import { FsStore } from '../cluster/store.js';
import { NoDaemonError, request, type Reply } from '../init/protocol.js';
import type { Timings } from '../init/machines.js';
import { DEFAULT_CONFIG_PATH, formatError, loadMonitorConfig, parseDuration, resolveMonitorConfig } from '../config/monitor.js';
import { runMonitor } from '../monitor/daemon.js';
import { PlanError, planFor, renderPlan } from '../monitor/plan.js';
import { ansi, newestCltab, noLiveMonitor, pickView, plain, readHastats, readHastatViews, remoteNotes, renderGroup, renderStatus, setArgumentProblem, SetRefused, settledAs, setWant } from './cluster.js';
import { formatProblems, rootInputs, runCheck } from './check.js';
import { fenceConfirm, fenceDescribe, fenceHistory, fenceList, fenceTest } from './fence.js';

type Command = (argv: string[]) => Promise<number>;

const USAGE = `peerha — leaderless high-availability monitor

Usage: peerha <command> [options]

Try it:
  demo       a 3-node cluster on this machine: start, kill a node, watch the failover

Cluster (every node runs a monitor; they share only the directory DIR):
  monitor    run this node's monitor in the foreground
  status     the cluster view (--root DIR); add --json for the hastat
  set        set a group's wanted level cluster-wide (edits DIR/hactl)
  check      validate cltab, hactl and the configuration (file:line messages)
  plan       dry run: what a node would do now, and why
  halt       dissolve the cluster: every group stops, every monitor leaves
  fence      fence agents: list, describe, test; confirm a manual fence; history

Standalone group engine (one machine, like Cluster::Init):
  init       run the group engine daemon in the foreground
  tell       tell a group to go to a level (or re-read cltab)
  status     show group states (--local: this machine's engine)
  shutdown   stop every group and the daemon

Run 'peerha <command> --help' for a command's options; 'peerha --version' for the version.
`;

const EXIT_NO_DAEMON = 3;

/** The installed package's version: dist/cli/main.js sits two levels below package.json. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;
const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

function parse<O extends Options>(argv: string[], options: O, allowPositionals = true) {
  try {
    return parseArgs({ args: argv, options: { ...options, ...HELP_OPTION }, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${name}=${v}: expected a number of milliseconds`);
  return n;
}

/** Socket path for clients: --socket, else $PEERHA_SOCKET, else the cltab's :::socket:, else default. */
function clientSocket(values: { socket?: string; cltab?: string }): string {
  if (values.socket) return values.socket;
  if (process.env.PEERHA_SOCKET) return process.env.PEERHA_SOCKET;
  if (values.cltab) {
    try {
      const r = parseCltab(readFileSync(values.cltab, 'utf8'), values.cltab);
      return resolvePaths(values.cltab, r.ok ? r.cltab : null).socket;
    } catch {
      // fall through to the default
    }
  }
  return DEFAULT_SOCKET;
}

const INIT_HELP = `Usage: peerha init --cltab FILE [--socket PATH] [--clstat PATH] [--node NAME] [--cycle D]

Runs the group engine in the foreground (for systemd or an inittab respawn line).
  --cltab FILE    the cltab (group:tag:levels:mode:command lines)
  --socket PATH   control socket (default ${DEFAULT_SOCKET}, or the cltab's :::socket:)
  --clstat PATH   status file (default ${DEFAULT_CLSTAT}, or the cltab's :::clstat:)
  --node NAME     name written in clstat (default: short hostname)
  --cycle D       clstat heartbeat and cltab check period, e.g. 500ms, 1s (default 1s)
SIGTERM/SIGINT stop every group (SIGINT, SIGTERM after 5 s, SIGKILL after 15 s) and exit 0.
Exit 2 on a bad cltab at start, 1 when another daemon serves the socket.
Timings for tests: PEERHA_TERM_AFTER_MS, PEERHA_KILL_AFTER_MS, PEERHA_KILL_REPEAT_MS,
PEERHA_BACKOFF_MIN_MS, PEERHA_BACKOFF_MAX_MS, PEERHA_RESET_AFTER_MS, PEERHA_BURST_WINDOW_MS.
`;

const init: Command = async (argv) => {
  const { values } = parse(argv, {
    cltab: { type: 'string', short: 'c' },
    socket: { type: 'string', short: 's' },
    clstat: { type: 'string' },
    node: { type: 'string' },
    cycle: { type: 'string' },
  }, false);
  if (values.help) return help(INIT_HELP);
  if (!values.cltab) throw new UsageError('init: --cltab FILE is required');
  const cycle = values.cycle === undefined ? undefined : parseDuration(values.cycle);
  if (typeof cycle === 'object') throw new UsageError(`init: --cycle ${JSON.stringify(values.cycle)}: ${cycle.error}`);
  if (cycle !== undefined && cycle < 10) throw new UsageError(`init: --cycle ${values.cycle} is too short (at least 10ms)`);
  const cycleMs = cycle;
  const code = await runDaemon({
    cltabPath: values.cltab,
    socketPath: values.socket,
    clstatPath: values.clstat,
    node: values.node,
    cycleMs,
    timings: envTimings(),
    logger: createLogger('peerha-init'),
  });
  // Exit even if a process that survived SIGKILL keeps timers alive; its group stays recorded.
  process.exit(code);
};

function envTimings(): Partial<Timings> {
  return Object.fromEntries(
    Object.entries({
      termAfterMs: envInt('PEERHA_TERM_AFTER_MS'),
      killAfterMs: envInt('PEERHA_KILL_AFTER_MS'),
      killRepeatMs: envInt('PEERHA_KILL_REPEAT_MS'),
      backoffMinMs: envInt('PEERHA_BACKOFF_MIN_MS'),
      backoffMaxMs: envInt('PEERHA_BACKOFF_MAX_MS'),
      resetAfterMs: envInt('PEERHA_RESET_AFTER_MS'),
      burstWindowMs: envInt('PEERHA_BURST_WINDOW_MS'),
      maxRestarts: envInt('PEERHA_MAX_RESTARTS'),
      restartWindowMs: envInt('PEERHA_RESTART_WINDOW_MS'),
    }).filter(([, v]) => v !== undefined),
  );
}

const TELL_HELP = `Usage: peerha tell GROUP LEVEL [--socket PATH] [--wait[=SECONDS]]
       peerha tell             (re-read cltab)

Tells the local group engine to move GROUP to LEVEL and prints the reply.
  --socket PATH     control socket (default $PEERHA_SOCKET or ${DEFAULT_SOCKET})
  --cltab FILE      take the socket path from this cltab's :::socket: setting
  --wait[=SECONDS]  return once GROUP settled at LEVEL (default 60 s)
Exit: 0 accepted (with --wait: DONE or PASSED), 1 refused (with --wait: FAILED),
      2 --wait timed out, 3 no daemon.
`;

function splitWait(argv: string[]): { argv: string[]; wait: number | null } {
  let wait: number | null = null;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--wait') {
      wait = 60;
    } else if (a.startsWith('--wait=')) {
      wait = Number(a.slice(7));
      if (!Number.isFinite(wait) || wait < 0) throw new UsageError(`tell: ${a}: expected seconds`);
    } else rest.push(a);
  }
  return { argv: rest, wait };
}

const tell: Command = async (rawArgv) => {
  const { argv, wait } = splitWait(rawArgv);
  const { values, positionals } = parse(argv, { socket: { type: 'string', short: 's' }, cltab: { type: 'string', short: 'c' } });
  if (values.help) return help(TELL_HELP);
  const socket = clientSocket(values);
  if (positionals.length === 0) {
    const [r] = await request(socket, [{ op: 'reread' }]);
    return printReply(r!);
  }
  if (positionals.length !== 2) throw new UsageError('tell: expected GROUP LEVEL');
  const [group, level] = positionals as [string, string];
  const [r] = await request(socket, [{ op: 'tell', group, level }]);
  printReply(r!);
  if (!r!.ok) return 1;
  if (wait === null) return 0;
  const [w] = await request(socket, [{ op: 'wait', group, level, timeoutMs: Math.round(wait * 1000) }]);
  console.log(w!.message);
  if (w!.timeout) return 2;
  return w!.ok ? 0 : 1;
};

function printReply(r: Reply): number {
  (r.ok ? process.stdout : process.stderr).write(`${r.message}\n`);
  return r.ok ? 0 : 1;
}

const STATUS_HELP = `Usage: peerha status --root DIR [--json] [--watch] [GROUP]
       peerha status --local [--socket PATH | --clstat PATH] [--json] [GROUP [LEVEL]]

--root DIR (or $PEERHA_ROOT): the cluster as the freshest hastat in DIR shows it — nodes,
groups, where each runs — and how old that view is (every age in it counts from now); GROUP
shows its entries, instances and recent transitions; --json prints that hastat (with GROUP:
only that group); --watch refreshes every second and keeps to one node's view while it is live.
Works from any machine mounting DIR. Colour on a terminal only; NO_COLOR turns it off.
Exit 1 for a group in neither cltab, hactl nor any view; 3 when no monitor has written a view
for its timeout ("no live monitor": what is shown is how things stood then) or none exists.

Shows the local group engine's groups as 'group level state' lines (filtered like
clinit -v: with GROUP 'level state', with GROUP and LEVEL just 'state').
  --local          this machine's engine (the cluster view comes with 'peerha monitor')
  --socket PATH    ask the daemon (default $PEERHA_SOCKET or ${DEFAULT_SOCKET})
  --clstat PATH    read a clstat file instead (works without a running daemon)
  --json           the same as JSON
`;

const status: Command = async (argv) => {
  const { values, positionals } = parse(argv, {
    local: { type: 'boolean' },
    socket: { type: 'string', short: 's' },
    clstat: { type: 'string' },
    cltab: { type: 'string', short: 'c' },
    json: { type: 'boolean' },
    root: { type: 'string' },
    watch: { type: 'boolean', short: 'w' },
  });
  if (values.help) return help(STATUS_HELP);
  const root = values.root ?? (values.local ? undefined : process.env.PEERHA_ROOT);
  if (!values.local) {
    if (!root) throw new UsageError('status: give --root DIR (the shared directory) or --local');
    return clusterStatus(root, !!values.json, positionals[0], !!values.watch);
  }
  if (positionals.length > 2) throw new UsageError('status: expected at most GROUP LEVEL');
  const [group, level] = positionals;
  let lines: ClstatLine[];
  let notes: Array<{ group: string; text: string }> = [];
  let extra: Record<string, unknown> = {};
  if (values.clstat) {
    let text = '';
    try {
      text = readFileSync(values.clstat, 'utf8');
    } catch {
      // a missing clstat means nothing runs
    }
    const c = parseClstat(text);
    lines = [...c.groups];
    notes = [...c.notes];
    extra = { header: c.header };
  } else {
    const [r] = await request(clientSocket(values), [{ op: 'status' }]);
    lines = (r!.groups ?? []).flatMap((g) => (g.level === null ? [] : [{ group: g.group, level: g.level, state: g.state }]));
    notes = (r!.groups ?? []).flatMap((g) => g.notes.map((text) => ({ group: g.group, text })));
    extra = { node: r!.node, groups: r!.groups, configErrors: r!.configErrors };
  }
  const selected = lines.filter((l) => (group === undefined || l.group === group) && (level === undefined || l.level === level));
  if (values.json) {
    const detail = (extra.groups as Array<{ group: string }> | undefined) ?? [];
    console.log(
      JSON.stringify(
        {
          version: 1,
          ...('header' in extra ? { header: extra.header } : { node: extra.node, configErrors: extra.configErrors }),
          groups: selected.map((l) => ({ ...l, notes: notes.filter((n) => n.group === l.group).map((n) => n.text), detail: detail.find((d) => d.group === l.group) })),
        },
        null,
        2,
      ),
    );
    return 0;
  }
  const out = filterStatus(selected, group, level);
  if (group !== undefined && level !== undefined) process.stdout.write(out.join('\n'));
  else if (out.length > 0) process.stdout.write(out.join('\n') + '\n');
  return 0;
};

const SHUTDOWN_HELP = `Usage: peerha shutdown [--socket PATH]

Stops every group (with the usual SIGINT → SIGTERM → SIGKILL escalation) and the daemon;
returns after the daemon exited. Exit 3 when no daemon answers.
`;

const shutdown: Command = async (argv) => {
  const { values } = parse(argv, { socket: { type: 'string', short: 's' }, cltab: { type: 'string', short: 'c' } }, false);
  if (values.help) return help(SHUTDOWN_HELP);
  const [r] = await request(clientSocket(values), [{ op: 'shutdown' }]);
  return printReply(r!);
};

function help(text: string): number {
  process.stdout.write(text);
  return 0;
}

async function clusterStatus(root: string, json: boolean, group: string | undefined, watch: boolean): Promise<number> {
  const tty = !!process.stdout.isTTY;
  const paint = tty && !process.env.NO_COLOR ? ansi : plain;
  // --watch shows one node's view while it is live: views differ in order and in what only
  // their writer knows ("running here"), so switching every refresh made rows flip.
  let source: string | null = null;
  const once = async (): Promise<number> => {
    const views = await readHastatViews(root);
    const now = Date.now();
    const pick = pickView(views, now, source);
    if (!pick) {
      process.stderr.write(`peerha status: no hastat under ${root}/nodes (is a monitor running?)\n`);
      return 3;
    }
    const h = pick.view.h;
    source = h.node;
    const entries = group === undefined ? [] : ((await newestCltab(root))?.entries.filter((e) => e.group === group) ?? []);
    if (group !== undefined && entries.length === 0 && !views.some((v) => v.h.groups[group])) {
      process.stderr.write(`peerha status: no group ${JSON.stringify(group)}: not in cltab, not in hactl, running nowhere\n`);
      return 1;
    }
    const dead = pick.live ? null : noLiveMonitor(h.node, pick.ageMs);
    if (dead) process.stderr.write(`peerha status: ${dead}\n`);
    if (json) {
      console.log(JSON.stringify(group === undefined ? h : { ...h, groups: h.groups[group] ? { [group]: h.groups[group] } : {} }, null, 2));
      return dead ? 3 : 0;
    }
    const all = [h, ...views.filter((v) => v !== pick.view).map((v) => v.h)];
    const ageOf = (node: string): number => Math.max(0, now - (views.find((v) => v.h.node === node)?.mtimeMs ?? now));
    const text = group !== undefined ? renderGroup(all, group, entries, paint, ageOf) : renderStatus(h, undefined, paint, remoteNotes(all, h), all, pick.ageMs);
    if (watch && tty) process.stdout.write('\u001b[H\u001b[2J');
    process.stdout.write((dead ? `${paint('bad', dead)}\n\n` : '') + text);
    return dead ? 3 : 0;
  };
  if (!watch) return once();
  for (;;) {
    await once();
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const MONITOR_HELP = `Usage: peerha monitor [--config FILE] [--root DIR [--create]] [--node NAME] [--cycle D] [--timeout D] [--stop-timeout D]

Runs this node's cluster monitor in the foreground (systemd, or an inittab respawn line).
  --config FILE   YAML configuration (default ${DEFAULT_CONFIG_PATH}, optional)
  --root DIR      the shared directory (or $PEERHA_ROOT, or root: in the config); it must exist
  --create        create DIR when it does not exist (else a missing DIR is refused: an unmounted
                  share would make a one-node cluster of its own)
  --node NAME     this node's name (or $PEERHA_NODE; default: short hostname)
  --cycle D       cycle period, e.g. 500ms, 1s (default 1s)
  --timeout D     a peer silent this long is stale (default 5s, at least 2 × cycle)
  --stop-timeout D  how long a group's stop level may take before what runs is killed
                  (default and most: timeout/2 − 100ms, so the watchdog finishes before takeover)
SIGTERM/SIGINT: run every local group's stop level, publish a 'left' marker, exit 0 (peers take
over at once).
`;

const monitor: Command = async (argv) => {
  const { values } = parse(argv, {
    config: { type: 'string' },
    root: { type: 'string' },
    node: { type: 'string' },
    cycle: { type: 'string' },
    timeout: { type: 'string' },
    'stop-timeout': { type: 'string' },
    create: { type: 'boolean' },
  }, false);
  if (values.help) return help(MONITOR_HELP);
  const file = loadMonitorConfig(values.config ?? DEFAULT_CONFIG_PATH, { optional: values.config === undefined });
  const resolved = file.ok ? resolveMonitorConfig(file.config, { root: values.root, node: values.node, cycle: values.cycle, timeout: values.timeout, stopTimeout: values['stop-timeout'] }, process.env) : file;
  if (!resolved.ok) {
    for (const e of resolved.errors) process.stderr.write(`${formatError(e)}\n`);
    return 2;
  }
  const c = resolved.config;
  const noRoot = await rootProblem(c.root, !!values.create);
  if (noRoot) {
    process.stderr.write(`peerha monitor: ${noRoot}\n`);
    return 2;
  }
  const offset = envInt('PEERHA_CLOCK_OFFSET_MS') ?? 0;
  const log = createLogger('peerha-monitor', c.logLevel);
  const reload = () => {
    const f = loadMonitorConfig(values.config ?? DEFAULT_CONFIG_PATH, { optional: values.config === undefined });
    const r = f.ok ? resolveMonitorConfig(f.config, { root: values.root, node: values.node, cycle: values.cycle, timeout: values.timeout, stopTimeout: values['stop-timeout'] }, process.env) : f;
    if (!r.ok) {
      log.error({ errors: r.errors.map(formatError) }, 'configuration reload failed; keeping the running configuration');
      return null;
    }
    log.level = r.config.logLevel;
    return { ...r.config, timings: envTimings(), clockOffsetMs: offset };
  };
  const code = await runMonitor({ ...c, timings: envTimings(), clockOffsetMs: offset }, log, reload);
  process.exit(code);
};

/** Why the monitor must not start on `root` (missing unless `create`, not a folder), or null. */
async function rootProblem(root: string, create: boolean): Promise<string | null> {
  const st = await stat(root).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : e));
  if (st instanceof Error) return `${root}: ${st.message}`;
  if (st === null && create) return mkdir(root, { recursive: true }).then(() => null, (e: Error) => `cannot create ${root}: ${e.message}`);
  if (st === null) return `${root}: no such directory (is the shared filesystem mounted?); --create makes it`;
  return st.isDirectory() ? null : `${root}: expected a directory`;
}

const SET_HELP = `Usage: peerha set GROUP LEVEL --root DIR [--nodes a,b] [--wait[=SECONDS]] [--force]
       peerha set GROUP --remove --root DIR

Sets what the cluster wants: edits DIR/hactl (under a lock) so every monitor picks it up. The edit
changes the group's one line (or appends one); comments, blank lines and order stay.
LEVEL 'stop' stops the group everywhere. --nodes limits it to these nodes, preferred first.
Refused (exit 1, nothing written) when DIR/hactl does not parse (it says where), and when the
cltab has no such group or no entry at LEVEL — unless --force.
--wait: exit 0 once GROUP runs at LEVEL on exactly one node (one of --nodes, when given; nowhere,
for stop); 2 on timeout.
`;

const set: Command = async (rawArgv) => {
  const { argv, wait } = splitWait(rawArgv);
  const { values, positionals } = parse(argv, { root: { type: 'string' }, nodes: { type: 'string' }, remove: { type: 'boolean' }, force: { type: 'boolean' } });
  if (values.help) return help(SET_HELP);
  const root = values.root ?? process.env.PEERHA_ROOT;
  if (!root) throw new UsageError('set: --root DIR is required');
  const [group, level] = positionals;
  if (!group || (!level && !values.remove) || positionals.length > 2) throw new UsageError('set: expected GROUP LEVEL (or GROUP --remove)');
  const nodes = values.nodes !== undefined ? values.nodes.split(',') : null;
  const refused = setArgumentProblem(group, values.remove ? null : level!, nodes);
  if (refused) throw new UsageError(refused);
  try {
    await setWant(root, group, values.remove ? null : level!, nodes, { force: !!values.force });
  } catch (e) {
    if (!(e instanceof SetRefused)) throw e;
    process.stderr.write(`peerha set: refused, hactl left as it was:\n${e.message}\n`);
    return 1;
  }
  console.log(values.remove ? `${group} removed from hactl` : `${group} ${level}${nodes ? ` ${nodes.join(',')}` : ''}`);
  if (wait === null || values.remove) return 0;
  const deadline = Date.now() + wait * 1000;
  for (;;) {
    const h = (await readHastats(root))[0];
    const done = h ? settledAs(h, group, level!, nodes) : null;
    if (done) {
      console.log(done);
      return 0;
    }
    if (Date.now() > deadline) {
      const inst = h ? Object.entries(h.groups[group]?.instances ?? {}) : [];
      console.log(`timed out: ${group} is ${inst.map(([n, i]) => `${n}:${i.level}/${i.state}`).join(' ') || 'nowhere'}`);
      return 2;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
};

const DEMO_HELP = `Usage: peerha demo [--nodes N] [--keep]

Starts N local monitors (default 3) on a temp directory with an HTTP service group and a worker
group, kills the node serving HTTP, and shows the failover and a summary. Stops everything it
started and removes its temp directory. --keep keeps the cluster running until Ctrl-C.
`;

const demo: Command = async (argv) => {
  const { values } = parse(argv, { nodes: { type: 'string' }, keep: { type: 'boolean' }, cycle: { type: 'string' }, timeout: { type: 'string' } }, false);
  if (values.help) return help(DEMO_HELP);
  const n = Number(values.nodes ?? 3);
  if (!Number.isInteger(n) || n < 2 || n > 16) throw new UsageError('demo: --nodes expects 2 to 16');
  const { runDemo } = await import('./demo.js');
  return runDemo({ nodes: n, keep: !!values.keep, cycle: values.cycle ?? '250ms', timeout: values.timeout ?? '1s', out: (l) => console.log(l) });
};

const CHECK_HELP = `Usage: peerha check [--root DIR [--node NAME]] [--cltab F] [--hactl F] [--config F]

Validates cltab, hactl and the monitor configuration as the monitor would: syntax, duplicate
tags, hactl groups missing from cltab and levels no entry has (on whatever parsed, even when a
file has errors), a group on two hactl lines (the earlier one is shadowed), config values and
settings together, and unsafe permissions (files writable by group or others, directories on
their path writable by others: their commands run as root on every node; a running monitor
refuses an admin copy writable by others).
Prints every problem as file:line: message. Exit 0 when all is well, 1 otherwise.
`;

const check: Command = async (argv) => {
  const { values } = parse(argv, { root: { type: 'string' }, node: { type: 'string' }, cltab: { type: 'string' }, hactl: { type: 'string' }, config: { type: 'string' } }, false);
  if (values.help) return help(CHECK_HELP);
  const fromRoot = values.root ? await rootInputs(values.root, values.node) : {};
  const input = { ...fromRoot, ...(values.cltab ? { cltab: values.cltab } : {}), ...(values.hactl ? { hactl: values.hactl } : {}), ...(values.config ? { config: values.config } : {}) };
  if (!input.cltab && !input.hactl && !input.config) throw new UsageError('check: nothing to check: give --root DIR or --cltab/--hactl/--config');
  const { problems, checked } = await runCheck(input);
  if (problems.length > 0) {
    process.stdout.write(formatProblems(problems) + '\n');
    process.stdout.write(`${problems.length} problem(s) in ${checked.join(', ')}\n`);
    return 1;
  }
  process.stdout.write(`ok: ${checked.join(', ')}\n`);
  return 0;
};

const PLAN_HELP = `Usage: peerha plan --root DIR [--node NAME] [--config FILE] [--stale-ok] [--json]

Dry run: what NAME's monitor would do now, and why. Runs one cycle of the monitor's own step()
on the state NAME last published (its hastat: liveness, quorum, plan windows, failed-test
cooldowns, conflict backoffs) against DIR as it is now, and prints the tells and fences that cycle
would make. Changes nothing. NAME defaults to $PEERHA_NODE or the short hostname; --config gives
the fence methods. Refuses a snapshot older than the monitor's timeout (exit 1) unless --stale-ok;
exit 3 when NAME has no readable hastat.
`;

const plan: Command = async (argv) => {
  const { values } = parse(argv, { root: { type: 'string' }, node: { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' }, 'stale-ok': { type: 'boolean' } }, false);
  if (values.help) return help(PLAN_HELP);
  const file = loadMonitorConfig(values.config ?? DEFAULT_CONFIG_PATH, { optional: values.config === undefined });
  const resolved = file.ok ? resolveMonitorConfig(file.config, { root: values.root, node: values.node }, process.env) : file;
  if (!resolved.ok) {
    for (const e of resolved.errors) process.stderr.write(`${formatError(e)}\n`);
    return 2;
  }
  const c = resolved.config;
  try {
    const r = await planFor(c, c.node, { staleOk: !!values['stale-ok'] });
    if (values.json) console.log(JSON.stringify(r, null, 2));
    else process.stdout.write(renderPlan(r));
    return 0;
  } catch (e) {
    if (!(e instanceof PlanError)) throw e;
    process.stderr.write(`peerha plan: ${e.message}\n`);
    return e.code;
  }
};

const HALT_HELP = `Usage: peerha halt --root DIR [--wait[=SECONDS]]
       peerha halt --undo --root DIR

Dissolves the cluster: writes DIR/halt; every monitor stops its groups and leaves (exit 0), and
monitors started while DIR/halt exists wait without joining. --wait returns once every node has
left (a node whose heartbeat stays still for --stale seconds, default 10, counts as gone).
--undo removes DIR/halt so monitors (re)join.
`;

const halt: Command = async (rawArgv) => {
  const { argv, wait } = splitWait(rawArgv);
  const { values } = parse(argv, { root: { type: 'string' }, undo: { type: 'boolean' }, stale: { type: 'string' } }, false);
  if (values.help) return help(HALT_HELP);
  const root = values.root ?? process.env.PEERHA_ROOT;
  if (!root) throw new UsageError('halt: --root DIR is required');
  const file = join(root, 'halt');
  if (values.undo) {
    await rm(file, { force: true });
    console.log(`removed ${file}: monitors may join again`);
    return 0;
  }
  await new FsStore(root, '').writeInside('halt', JSON.stringify({ time: new Date().toISOString(), by: shortHostname(), pid: process.pid }) + '\n');
  console.log(`wrote ${file}: every monitor stops its groups and leaves`);
  if (wait === null) return 0;
  const staleMs = Number(values.stale ?? 10) * 1000;
  const deadline = Date.now() + wait * 1000;
  const lastSeq = new Map<string, { seq: number; since: number }>();
  for (;;) {
    const store = new FsStore(root, '');
    const pending: string[] = [];
    for (const n of await store.listNodes()) {
      const r = await store.readNodeFile(n, 'clstat');
      const h = r ? parseClstat(r.text).header : null;
      if (!h || h.left) continue;
      const prev = lastSeq.get(n);
      if (!prev || prev.seq !== h.seq) lastSeq.set(n, { seq: h.seq, since: Date.now() });
      else if (Date.now() - prev.since >= staleMs) continue;
      pending.push(n);
    }
    if (pending.length === 0) {
      console.log('every node has left');
      return 0;
    }
    if (Date.now() > deadline) {
      console.log(`timed out; still running: ${pending.join(', ')}`);
      return 2;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
};

const FENCE_HELP = `Usage: peerha fence list [--json]
       peerha fence describe AGENT [--json]
       peerha fence test NODE [--config FILE] [--root DIR]
       peerha fence confirm NODE --root DIR
       peerha fence history [NODE] --root DIR [--json]

Fencing (STOMITH) with the standard fence agents (Debian package fence-agents):
  list       installed agents
  describe   an agent's parameters (type, required, default) and actions, from AGENT -o metadata
  test       run the status action of every configured method against NODE; fences nothing
  confirm    tell the cluster an operator made sure NODE is off (completes a manual fence)
  history    every fence the nodes ran (merged from DIR/nodes/*/fence.log)
`;

const fence: Command = async (argv) => {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, root: { type: 'string' }, config: { type: 'string' }, node: { type: 'string' } });
  const [sub, arg] = positionals;
  if (values.help || !sub) return help(FENCE_HELP);
  const root = values.root ?? process.env.PEERHA_ROOT;
  switch (sub) {
    case 'list':
      return fenceList(!!values.json);
    case 'describe':
      if (!arg) throw new UsageError('fence describe: expected AGENT');
      return fenceDescribe(arg, !!values.json);
    case 'test': {
      if (!arg) throw new UsageError('fence test: expected NODE');
      const f = loadMonitorConfig(values.config ?? DEFAULT_CONFIG_PATH, { optional: values.config === undefined });
      const r = f.ok ? resolveMonitorConfig(f.config, { root: root ?? '/', node: values.node }, process.env) : f;
      if (!r.ok) {
        for (const e of r.errors) process.stderr.write(`${formatError(e)}\n`);
        return 2;
      }
      return fenceTest(arg, r.config.fence);
    }
    case 'confirm':
      if (!arg) throw new UsageError('fence confirm: expected NODE');
      if (!root) throw new UsageError('fence confirm: --root DIR is required');
      return fenceConfirm(root, arg, shortHostname());
    case 'history':
      if (!root) throw new UsageError('fence history: --root DIR is required');
      return fenceHistory(root, arg, !!values.json);
    default:
      throw new UsageError(`fence: unknown subcommand ${JSON.stringify(sub)}`);
  }
};

const COMMANDS: Record<string, Command> = { init, tell, status, shutdown, monitor, set, demo, check, plan, halt, fence };

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name === undefined ? 1 : 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`peerha ${packageVersion()}\n`);
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`peerha: unknown command '${name}'\n\n${USAGE}`);
    return 1;
  }
  try {
    return await cmd(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`peerha ${name}: ${e.message}\n(see 'peerha ${name} --help')\n`);
      return 1;
    }
    if (e instanceof NoDaemonError) {
      process.stderr.write(`peerha ${name}: ${e.message}\n`);
      return EXIT_NO_DAEMON;
    }
    throw e;
  }
}

