// `npm run sim -- [options]`: the deterministic cluster simulator.
//
//   --seed S [--trace]        run (replay) one history; --trace prints its event log
//   --seeds N [--start S]     run N histories from seed S (default 1), report failures and rate
//   --nodes N | A-B           cluster size (exact, or drawn from A..B; default a 1–16 mix)
//   --jobs J                  worker threads (default: CPUs)
//   --drift F                 largest monotonic clock drift (fraction, default 0.02)
//   --faults X                scale the number of faults (default 1)
//   --timeout-cycles N        timeout = N cycles (default: drawn from 4, 5, 6, 8, 10)
//   --slow-stops              every stop entry takes 50–90 % of stop_timeout (default: half of them)
//   --fault-kinds LIST        draw only these kinds of fault (e.g. slow,pause; default: every kind)
//   --stop-timeout F          stop_timeout = F × timeout (default timeout/2 − 100 ms; more is a
//                             negative control: config refuses it)
//   --max-failures K          stop after K failing seeds (default 5)
//   --quiet                   only the summary
//   --json                    the summary as one JSON object on the last stdout line, and nothing
//                             else on stdout (failures and progress go to stderr)
//   --help                    the usage line
//
// A campaign's workers take seeds from one shared counter as they finish (histories differ in
// length many times over); each history is the same whichever worker runs it.

import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { replayCommand as replayFor, report, runSeed, type RunOptions, type RunResult } from './sim.js';
import { FAULT_KINDS, type FaultKind } from './scenario.js';

interface Args {
  seed: number | null;
  seeds: number;
  start: number;
  nodes: number | [number, number] | undefined;
  jobs: number;
  trace: boolean;
  drift: number | undefined;
  faults: number | undefined;
  timeoutCycles: number | undefined;
  slowStops: boolean;
  faultKinds: FaultKind[] | undefined;
  stopTimeout: number | undefined;
  maxFailures: number;
  quiet: boolean;
  json: boolean;
}

const USAGE = 'usage: npm run sim -- [--seed S [--trace]] [--seeds N] [--start S] [--nodes N|A-B] [--jobs J] [--drift F] [--faults X] [--timeout-cycles N] [--slow-stops] [--fault-kinds LIST] [--stop-timeout F] [--max-failures K] [--quiet] [--json] [--help]\n';

function usage(msg: string): never {
  process.stderr.write(`sim: ${msg}\n${USAGE}`);
  process.exit(2);
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { seed: null, seeds: 1000, start: 1, nodes: undefined, jobs: availableParallelism(), trace: false, drift: undefined, faults: undefined, timeoutCycles: undefined, slowStops: false, faultKinds: undefined, stopTimeout: undefined, maxFailures: 5, quiet: false, json: false };
  const num = (v: string | undefined, what: string): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < 0) usage(`${what} needs a non-negative number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[i + 1];
    switch (k) {
      case '--seed':
        a.seed = num(v, k);
        i++;
        break;
      case '--seeds':
        a.seeds = num(v, k);
        i++;
        break;
      case '--start':
        a.start = num(v, k);
        i++;
        break;
      case '--nodes': {
        const m = /^(\d+)(?:-(\d+))?$/.exec(v ?? '');
        if (!m || Number(m[1]) < 1 || (m[2] !== undefined && Number(m[2]) < Number(m[1]))) usage('--nodes needs N or A-B (A ≥ 1)');
        a.nodes = m[2] !== undefined ? [Number(m[1]), Number(m[2])] : Number(m[1]);
        i++;
        break;
      }
      case '--jobs':
        a.jobs = Math.max(1, Math.floor(num(v, k)));
        i++;
        break;
      case '--drift':
        a.drift = num(v, k);
        i++;
        break;
      case '--faults':
        a.faults = num(v, k);
        i++;
        break;
      case '--timeout-cycles':
        a.timeoutCycles = num(v, k);
        if (a.timeoutCycles < 2) usage('--timeout-cycles needs at least 2');
        i++;
        break;
      case '--stop-timeout':
        a.stopTimeout = num(v, k);
        i++;
        break;
      case '--fault-kinds': {
        const kinds = (v ?? '').split(',').filter(Boolean);
        const unknown = kinds.filter((x) => !(FAULT_KINDS as readonly string[]).includes(x));
        if (kinds.length === 0 || unknown.length) usage(`--fault-kinds needs a comma-separated list of ${FAULT_KINDS.join(', ')}${unknown.length ? ` (not: ${unknown.join(', ')})` : ''}`);
        a.faultKinds = kinds as FaultKind[];
        i++;
        break;
      }
      case '--slow-stops':
        a.slowStops = true;
        break;
      case '--max-failures':
        a.maxFailures = Math.max(1, Math.floor(num(v, k)));
        i++;
        break;
      case '--trace':
        a.trace = true;
        break;
      case '--quiet':
        a.quiet = true;
        break;
      case '--json':
        a.json = true;
        break;
      case '--help':
      case '-h':
        process.stdout.write(USAGE + '(see the top of src/sim/cli.ts and docs/simulator.md for what each option does)\n');
        process.exit(0);
      default:
        usage(`unknown argument ${k}`);
    }
  }
  return a;
}

function runOptions(a: Args): RunOptions {
  return {
    ...(a.nodes !== undefined ? { nodes: a.nodes } : {}),
    ...(a.drift !== undefined ? { maxDrift: a.drift } : {}),
    ...(a.faults !== undefined ? { faultRate: a.faults } : {}),
    ...(a.timeoutCycles !== undefined ? { timeoutCycles: a.timeoutCycles } : {}),
    ...(a.slowStops ? { slowStops: true } : {}),
    ...(a.faultKinds ? { faultKinds: a.faultKinds } : {}),
    ...(a.stopTimeout !== undefined ? { stopTimeoutFactor: a.stopTimeout } : {}),
  };
}

function replayCommand(a: Args, seed: number): string {
  return replayFor(seed, runOptions(a));
}

interface Summary {
  seed: number;
  ok: boolean;
  nodes: number;
  simMs: number;
  steps: number;
  convergeCycles: number | null;
  boundCycles: number;
  violation: string | null;
  /** What the history covered (the campaign's JSON adds them up). */
  faultKinds?: string[];
  stats?: Record<string, number>;
  noQuorum?: boolean;
  thawOverlapsMs?: readonly number[];
}

function summarize(r: RunResult): Summary {
  return {
    seed: r.seed,
    ok: r.ok,
    nodes: r.nodes,
    simMs: r.simMs,
    steps: r.steps,
    convergeCycles: r.convergeMs === null ? null : r.convergeMs / r.cycleMs,
    boundCycles: r.boundMs / r.cycleMs,
    violation: r.violation ? `${r.violation.invariant}: ${r.violation.detail}` : null,
    faultKinds: r.scenario.faults.map((f) => f.kind),
    stats: { ...r.stats },
    noQuorum: r.mode === 'no quorum',
    thawOverlapsMs: r.thawOverlapsMs,
  };
}

/** What a campaign covered: node counts, fault kinds, the sum of every counter, and more. */
function coverage(results: readonly Summary[]): Record<string, unknown> {
  const count = (xs: readonly (string | number)[]): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const x of xs) out[x] = (out[x] ?? 0) + 1;
    return out;
  };
  const totals: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.stats ?? {})) totals[k] = (totals[k] ?? 0) + v;
  const kinds = (r: Summary): string[] => r.faultKinds ?? [];
  const thaw = results.flatMap((r) => r.thawOverlapsMs ?? []);
  return {
    sizes: count(results.map((r) => r.nodes)),
    faultKinds: count(results.flatMap(kinds)),
    // A halt while at least two other faults are under way: monitors leave, exit, restart and wait.
    haltsAmidFaults: results.filter((r) => kinds(r).includes('halt') && kinds(r).filter((k) => k !== 'halt').length >= 2).length,
    noQuorum: results.filter((r) => r.noQuorum).length,
    thawOverlapsMs: thaw.length ? { count: thaw.length, min: Math.min(...thaw), max: Math.max(...thaw) } : { count: 0 },
    totals,
  };
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function campaign(a: Args): Promise<number> {
  const t0 = performance.now();
  const seeds = Array.from({ length: a.seeds }, (_, i) => a.start + i);
  const results: Summary[] = [];
  const failures: Summary[] = [];
  let lastPrint = t0;
  // With --json, stdout carries only the final JSON line; everything else goes to stderr.
  const say = (text: string): void => {
    (a.json ? process.stderr : process.stdout).write(text);
  };
  const onResult = (s: Summary): void => {
    results.push(s);
    if (!s.ok) {
      failures.push(s);
      say(`FAIL seed ${s.seed} (${s.nodes} nodes): ${s.violation}\n  replay: ${replayCommand(a, s.seed)}\n`);
    }
    const now = performance.now();
    if (!a.quiet && now - lastPrint > 10_000) {
      lastPrint = now;
      say(`  ${results.length}/${seeds.length} histories, ${failures.length} failing, ${((results.length / (now - t0)) * 60_000).toFixed(0)} histories/minute\n`);
    }
  };
  const jobs = Math.min(a.jobs, seeds.length);
  const self = fileURLToPath(import.meta.url);
  // Workers take the next seed as they finish one (histories differ in length many times over):
  // none sits idle while another still has a queue.
  const next = new Int32Array(new SharedArrayBuffer(4));
  await new Promise<void>((resolve) => {
    let running = jobs;
    for (let j = 0; j < jobs; j++) {
      const w = new Worker(self, { workerData: { seeds, next, options: runOptions(a), maxFailures: a.maxFailures } });
      w.on('message', (m: Summary) => {
        onResult(m);
        if (failures.length >= a.maxFailures) void w.terminate();
      });
      w.on('error', (e) => {
        process.stderr.write(`worker failed: ${String(e)}\n`);
        failures.push({ seed: -1, ok: false, nodes: 0, simMs: 0, steps: 0, convergeCycles: null, boundCycles: 0, violation: String(e) });
      });
      w.on('exit', () => {
        if (--running === 0) resolve();
      });
    }
  });
  const ms = performance.now() - t0;
  const conv = results.filter((r) => r.convergeCycles !== null).map((r) => r.convergeCycles!);
  const bounds = results.filter((r) => r.boundCycles > 0).map((r) => r.boundCycles);
  const simHours = results.reduce((s, r) => s + r.simMs, 0) / 3.6e6;
  const steps = results.reduce((s, r) => s + r.steps, 0);
  if (a.json) {
    const summary = {
      seeds: a.seeds,
      start: a.start,
      nodes: a.nodes === undefined ? 'mix 1-16' : Array.isArray(a.nodes) ? a.nodes.join('-') : a.nodes,
      histories: results.length,
      failures: failures.length,
      failing: failures.map((f) => ({ seed: f.seed, nodes: f.nodes, violation: f.violation, replay: f.seed >= 0 ? replayCommand(a, f.seed) : null })),
      historiesPerMinute: Math.round((results.length / ms) * 60_000),
      wallSeconds: +(ms / 1000).toFixed(2),
      jobs,
      simulatedClusterHours: +simHours.toFixed(2),
      steps,
      convergenceCycles: conv.length ? { p50: +pct(conv, 50).toFixed(2), p99: +pct(conv, 99).toFixed(2), max: +pct(conv, 100).toFixed(2), histories: conv.length } : null,
      boundCycles: bounds.length ? { min: +pct(bounds, 0).toFixed(2), median: +pct(bounds, 50).toFixed(2), max: +pct(bounds, 100).toFixed(2) } : null,
      coverage: coverage(results),
    };
    process.stdout.write(JSON.stringify(summary) + '\n');
    return failures.length ? 1 : 0;
  }
  process.stdout.write(
    [
      `${results.length} histories (seeds ${a.start}…${a.start + a.seeds - 1}, nodes ${a.nodes === undefined ? 'mix 1–16' : Array.isArray(a.nodes) ? a.nodes.join('–') : a.nodes}), ${failures.length} failing, in ${(ms / 1000).toFixed(1)} s on ${jobs} thread(s)`,
      `${((results.length / ms) * 60_000).toFixed(0)} histories/minute; ${simHours.toFixed(1)} simulated cluster-hours; ${steps} steps`,
      `convergence after the last fault: p50 ${pct(conv, 50).toFixed(1)}, p99 ${pct(conv, 99).toFixed(1)}, max ${pct(conv, 100).toFixed(1)} cycles (bound per history: min ${pct(bounds, 0).toFixed(0)}, median ${pct(bounds, 50).toFixed(0)}, max ${pct(bounds, 100).toFixed(0)} cycles) over ${conv.length} histories with quorum`,
      `${results.length - failures.length} passed, ${failures.length} failed`,
    ].join('\n') + '\n',
  );
  return failures.length ? 1 : 0;
}

function main(): void {
  const a = parseArgs(process.argv.slice(2));
  if (a.seed !== null) {
    const r = runSeed(a.seed, { ...runOptions(a), trace: a.trace });
    const failed = !r.ok;
    if (a.json) {
      process.stdout.write(JSON.stringify({ ...summarize(r), replay: replayCommand(a, a.seed) }) + '\n');
      process.exit(failed ? 1 : 0);
    }
    // A failing seed without --trace: replay it traced so the report shows what happened.
    const shown = failed && !a.trace ? runSeed(a.seed, { ...runOptions(a), trace: true }) : r;
    process.stdout.write(report(shown, { replay: replayCommand(a, a.seed), ...(a.trace ? {} : { tail: 200 }) }) + '\n');
    process.exit(failed ? 1 : 0);
  }
  campaign(a).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`sim: ${String(e)}\n`);
      process.exit(1);
    },
  );
}

if (isMainThread) main();
else {
  const { seeds, next, options, maxFailures } = workerData as { seeds: number[]; next: Int32Array; options: RunOptions; maxFailures: number };
  let failures = 0;
  for (let i = Atomics.add(next, 0, 1); i < seeds.length; i = Atomics.add(next, 0, 1)) {
    const seed = seeds[i]!;
    let s: Summary;
    try {
      s = summarize(runSeed(seed, options));
    } catch (e) {
      s = { seed, ok: false, nodes: 0, simMs: 0, steps: 0, convergeCycles: null, boundCycles: 0, violation: `simulator error: ${e instanceof Error ? e.stack ?? e.message : String(e)}` };
    }
    parentPort!.postMessage(s);
    if (!s.ok && ++failures >= maxFailures) break;
  }
}
