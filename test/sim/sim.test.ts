// The deterministic cluster simulator (src/sim) drives the same step() the monitor ships
// (src/monitor/step.ts), through its own driver (src/sim/driver.ts): real decide(), quorum,
// liveness, fencing policy, replication, halt and leave; the real group engine on scripted
// processes; a simulated store with the real layout; watchdogs, fence agents, commands and an
// operator confirming manual fences — under seeded faults, with the invariants checked at every
// step. Resources outlive processes: a group's resource stays on a node until one of its stop
// entries ran there (the engine's stop level, the watchdog, a restarted monitor) or the machine
// went down, and "never two holders" counts them. A failing seed prints its replayable trace
// (`npm run sim -- --seed S --trace`). The CI campaign runs that CLI as it ships (dist, built by
// `npm test`) on two threads; the controls run in this process.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseClstat, type Clstat } from '../../src/config/clstat.js';
import { dateBeat } from '../../src/cluster/beats.js';
import { liveness } from '../../src/cluster/liveness.js';
import { decide, type View } from '../../src/monitor/decide.js';
import type { Logic } from '../../src/monitor/logic.js';
import { decideConfig, readPeerClstat } from '../../src/monitor/view.js';
import { report, runSeed, type RunOptions, type RunResult } from '../../src/sim/sim.js';
import { ROOT } from '../helpers/daemon.js';

/** The CI budget: seeds 1…SEEDS, cluster sizes drawn from a 1–16 mix. */
const SEEDS = 2000;

/** `npm run sim -- …` (the CLI as it ships, built by `npm test`): its exit code and stdout. */
function simCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [join(ROOT, 'dist', 'sim', 'cli.js'), ...args], { encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0, stdout, stderr });
    });
  });
}

interface CampaignJson {
  histories: number;
  failures: number;
  failing: Array<{ seed: number; violation: string }>;
  historiesPerMinute: number;
  wallSeconds: number;
  jobs: number;
  simulatedClusterHours: number;
  convergenceCycles: { p50: number; p99: number; max: number } | null;
  coverage: {
    sizes: Record<string, number>;
    faultKinds: Record<string, number>;
    haltsAmidFaults: number;
    noQuorum: number;
    thawOverlapsMs: { count: number; min?: number; max?: number };
    totals: Record<string, number>;
  };
}

describe('cluster simulator', () => {
  // Two threads (the CLI's workers): the 2,000 histories are CPU-bound.
  it(`${SEEDS} seeded histories (1–16 nodes, every fault kind): never two owners, never two holders, progress within the bound, quorum-less nodes run nothing`, async () => {
    const run = await simCli(['--seeds', String(SEEDS), '--jobs', '2', '--json', '--max-failures', '5']);
    const c = JSON.parse(run.stdout.trim().split('\n').pop() ?? 'null') as CampaignJson | null;
    expect(c, `sim CLI printed no JSON (exit ${run.code}):\n${run.stderr.slice(-2000)}`).not.toBeNull();
    const cov = c!.coverage;
    const thaw = cov.thawOverlapsMs;
    console.log(
      `[measured] simulator: ${c!.histories} histories in ${c!.wallSeconds.toFixed(1)} s (${c!.historiesPerMinute} histories/minute, ${c!.jobs} threads), ` +
        `${c!.simulatedClusterHours.toFixed(1)} simulated cluster-hours; convergence after the last fault p50 ${c!.convergenceCycles?.p50.toFixed(1)} / ` +
        `p99 ${c!.convergenceCycles?.p99.toFixed(1)} / max ${c!.convergenceCycles?.max.toFixed(1)} cycles; ${cov.noQuorum} histories ended without quorum; ` +
        `whole-node freezes that overlapped a holder elsewhere: ${thaw.count}, released ${thaw.count ? `${thaw.min!.toFixed(0)}–${thaw.max!.toFixed(0)} ms` : '-'} after the thaw; ${JSON.stringify(cov.totals)}`,
    );
    // The first few failing histories with their traces (all of them are listed by the assertion).
    if (c!.failures) console.log(c!.failing.slice(0, 5).map((f) => report(runSeed(f.seed, { trace: true }), { tail: 150 })).join('\n\n'));
    expect(c!.failing.map((f) => `seed ${f.seed}: ${f.violation}`)).toEqual([]);
    expect(c!.histories).toBe(SEEDS);
    expect(run.code).toBe(0);
    // the budget covers the mix it claims
    for (const n of [1, 2, 3, 4, 5, 8, 16]) expect(cov.sizes[n] ?? 0).toBeGreaterThan(0);
    for (const kind of ['crash', 'crash-fencer', 'kill-monitor', 'leave', 'pause', 'partition', 'slow', 'reads', 'fence-faulty', 'hactl', 'cltab', 'halt', 'io-error', 'start', 'view', 'full', 'clock-step', 'symlink']) expect(cov.faultKinds[kind] ?? 0, kind).toBeGreaterThan(20);
    const totals = cov.totals;
    // one-sided views both ways, and double runs they caused that the poison pill ended in time
    expect(totals.viewsLost, 'viewsLost').toBeGreaterThan(20);
    expect(totals.viewsStuck, 'viewsStuck').toBeGreaterThan(20);
    expect(totals.viewsCut, 'viewsCut').toBeGreaterThan(20);
    for (const k of ['fullDisks', 'clockSteps', 'symlinks']) expect(totals[k], k).toBeGreaterThan(20);
    expect(totals.fenceEffects).toBeGreaterThan(20);
    expect(totals.watchdogKills).toBeGreaterThan(20);
    expect(totals.fencerDied).toBeGreaterThan(0);
    // What the old copy of the loop never covered: fence agents (success, failure, timeout, a
    // status that disagrees), commands, an operator's manual confirmation, halts amid other faults
    // (monitors leave, exit, are restarted and wait), cltab edits while a node is cut off, bad
    // edits that must change nothing, and failed store batches that make a cycle retry.
    for (const k of ['fenceFailed', 'fenceTimedOut', 'fenceSlow', 'fenceMismatch', 'agentFences', 'commandFences', 'manualConfirms', 'haltExits', 'cltabEditsPartitioned', 'badEdits', 'failedBatches', 'cycleRetries']) expect(totals[k], k).toBeGreaterThan(3);
    expect(cov.haltsAmidFaults).toBeGreaterThan(50);
    // Heartbeats a freeze held back past the watchdog's bound: abandoned, never landed late.
    expect(totals.staleHeartbeats, 'staleHeartbeats').toBeGreaterThan(0);
    // Resources: released by stop entries (the engine's, the watchdog's, a restarted monitor's)
    // and by machines going down; the watchdog and restarted monitors really ran recorded entries
    // (a restarted monitor finds a record only where no watchdog ran it: self_fence off, or the
    // old watchdog still at it).
    for (const k of ['acquired', 'releasedByStop', 'releasedByDown', 'watchdogStopRuns', 'outsideStopEntries']) expect(totals[k], k).toBeGreaterThan(20);
    expect(totals.leftoverStopRuns, 'leftoverStopRuns').toBeGreaterThan(5);
    // Stop entries the spawn gate refused (a monitor not yet petted after a freeze) ran later.
    expect(totals.heldStopRetries, 'heldStopRetries').toBeGreaterThan(20);
    // ~2 min on the two threads of a quiet 2-core machine (3.2 min on one); 12.5–13 min in CI
    // beside the GlusterFS lab (its bricks and FUSE clients keep both cores busy), on one thread
    // or two. The bound is for a hung run, not for speed.
  }, 1_500_000);

  it('a seed replays exactly: same scenario, same event log, same outcome', () => {
    for (const seed of [7, 1234]) {
      const a = runSeed(seed, { trace: true });
      const b = runSeed(seed, { trace: true });
      expect(b.trace).toEqual(a.trace);
      expect(b.steps).toBe(a.steps);
      expect(b.ok).toBe(a.ok);
      expect(a.trace.length).toBeGreaterThan(10);
    }
  });

  // The simulator can fail: broken logic inside step() is caught within the CI seed budget, at a
  // seed where the real logic does not break the same invariant (so that the control, not
  // something else the history runs into, is what broke it).
  /** A focused mix: every fault slows one node's store (each operation up to 4/5 of timeout late). */
  const STALLS: RunOptions = { nodes: 4, faultRate: 3, faultKinds: ['slow'] };
  /** The 1–16 mix with monotonic clocks up to 10 % fast or slow (the default is 2 %). */
  const DRIFT: RunOptions = { maxDrift: 0.1 };
  const firstViolation = (logic: Partial<Logic>, invariant: string, opts: RunOptions = {}): RunResult | null => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = runSeed(seed, { ...opts, logic });
      if (!r.ok && r.violation!.invariant === invariant && runSeed(seed, opts).violation?.invariant !== invariant) return r;
    }
    return null;
  };
  const caught = (name: string, logic: Partial<Logic>, invariant: string, opts: RunOptions = {}): void => {
    const r = firstViolation(logic, invariant, opts);
    expect(r, `${name}: no violation of "${invariant}" in ${SEEDS} seeds`).not.toBeNull();
    console.log(`[measured] ${name}: caught at seed ${r!.seed}: ${r!.violation!.detail}`);
  };

  it('catches a decide() with neither claims nor announcements (every claim counts as released, no plan window, no peer plan or test seen): two owners', () => {
    // A won claim tests and starts at once; what keeps two nodes from both doing so is the claim
    // and seeing each other's plan or test before starting. Without all of them:
    const unseenAnnouncements = (v: View): View => ({
      ...v,
      nodes: new Map([...v.nodes].map(([n, nv]) => [n, n === v.me ? nv : { ...nv, groups: new Map([...nv.groups].filter(([, i]) => i.level !== 'plan' && i.level !== 'test')) }])),
    });
    const logic: Partial<Logic> = {
      claimReleased: () => true,
      decideConfig: (s) => ({ ...decideConfig(s), planWindowMs: 0 }),
      decide: (v, c, now, random) => decide(unseenAnnouncements(v), c, now, random),
    };
    caught('no claims, no announcements', logic, 'never two owners');
    const replay = report(runSeed(firstViolation(logic, 'never two owners')!.seed, { trace: true, logic }));
    expect(replay).toMatch(/VIOLATION of "never two owners"/);
    expect(replay).toMatch(/npm run sim -- --seed \d+ --trace/);
  }, 300_000);

  it('catches a view that takes over a stale node without waiting for its self-fence or a fence: two owners', () => {
    caught('release without fence', { isReleased: (state) => state !== 'up' }, 'never two owners');
  }, 300_000);

  it('catches a step() that calls a peer stale before its watchdog bound (timeout/4 < timeout/2): two owners', () => {
    caught('takeover before the self-fence bound', { liveness: (m, now, timeoutMs) => liveness(m, now, timeoutMs / 4) }, 'never two owners');
  }, 300_000);

  it('catches a step() that pets the watchdog after a frozen cycle (hiding the freeze) and publishes without a deadline: two owners', () => {
    // Hidden from the pet alone, the freeze still shows: the clstat the frozen cycle formatted
    // misses its deadline (the watchdog's bound) and is abandoned, and the next cycle sees the
    // failed publish. Without both, a holder whose store stalls mid-cycle past the watchdog's
    // bound pets after it, and the respawn the watchdog's kill left waiting runs beside the
    // peer that took over. The 1–16 mix caught that at one seed in 2,000 (seed 1184; at none after
    // a change of poll timing); stalls alone (4 nodes, slow stores only) at 6 in 200 (seeds 1–200).
    caught('pet after a freeze', { petAfterCycle: () => 'pet', publishDeadline: () => undefined }, 'never two owners', STALLS);
  }, 300_000);

  it('catches a beat dating that trusts the peers\' clock rates exactly (clocks 10 % apart): two owners', () => {
    // A beat is dated from its stamp on the writer's clock; how far that clock may run slow
    // against ours (settings.clockDrift, from the scenario's clocks here) keeps the dating no
    // earlier than the beat was made. Without it a slow writer's silence is called a timeout too soon.
    caught('dating without drift', { dateBeat: (clock, beat, seenAt) => dateBeat(clock, beat, seenAt, 0) }, 'never two owners', DRIFT);
  }, 300_000);

  it('catches a step() that acts on a torn read of a peer clstat: two owners', () => {
    // Whatever was read counts: no final-newline check, no line count against the header's.
    const anyText = (text: string | null): string | null => (text === null || text.endsWith('\n') ? text : `${text}\n`);
    const noCount = (text: string): Clstat => {
      const c = parseClstat(text);
      if (!c.header) return c;
      const { lines: _lines, sum: _sum, ...header } = c.header;
      return { ...c, header, sumOk: true };
    };
    caught('torn read acted on', { readPeerClstat: (text) => readPeerClstat(anyText(text), noCount) }, 'never two owners');
  }, 300_000);

  it('catches a liveness that takes an unreadable peer for a dead one: two owners', () => {
    const unknownIsStale: Logic['liveness'] = (m, now, timeoutMs) => {
      const out = liveness(m, now, timeoutMs);
      for (const [n, v] of out) if (v.state === 'unknown') out.set(n, { ...v, state: 'stale' });
      return out;
    };
    caught('unreadable taken for stale', { liveness: unknownIsStale }, 'never two owners');
  }, 300_000);

  it('catches a step() that ignores the poison pill (a live node held stale keeps its groups): two owners', () => {
    // A focused mix (5 nodes, three times the faults): the 1–16 mix first catches it at seed 858,
    // 65 s on a quiet machine; this one at seed 67.
    caught('poison pill ignored', { declaredStaleBy: () => [] }, 'never two owners', { nodes: 5, faultRate: 3 });
  }, 300_000);

  // Resources outlive processes (issue 12): after a crash the watchdog's (or a restarted monitor's)
  // stop entries release them, and peers may take over only once those can have run. Focused
  // histories: 3 nodes (two of three keep a majority), three times the faults; for the takeover
  // timing, every stop entry slow (50–90 % of stop_timeout) and timeout = 10 cycles, so that
  // stop_timeout is long next to the plan window (the margin that hides a takeover that comes a
  // little early). A control counts only at a seed where the real machinery holds no double.
  const FOCUS: RunOptions = { nodes: 3, faultRate: 3 };
  const SLOW_STOPS: RunOptions = { ...FOCUS, slowStops: true, timeoutCycles: 10 };
  const CONTROL_SEEDS = 150;
  const caughtHolding = (name: string, control: RunOptions, base: RunOptions): void => {
    for (let seed = 1; seed <= CONTROL_SEEDS; seed++) {
      const r = runSeed(seed, { ...base, ...control });
      if (r.ok || r.violation!.invariant !== 'never two holders') continue;
      if (runSeed(seed, base).violation?.invariant === 'never two holders') continue; // not this control's doing
      console.log(`[measured] ${name}: caught at seed ${seed}: ${r.violation!.detail}`);
      return;
    }
    expect.fail(`${name}: no double holder the real machinery avoids in ${CONTROL_SEEDS} seeds`);
  };

  it('real machinery, crash paths with slow stop entries, stalled stores and drifting clocks (focused mixes): no violation', () => {
    const failures: Array<[RunResult, RunOptions]> = [];
    for (const opts of [FOCUS, SLOW_STOPS, STALLS, DRIFT]) {
      for (let seed = 1; seed <= 40; seed++) {
        const r = runSeed(seed, opts);
        if (!r.ok) failures.push([r, opts]);
      }
    }
    if (failures.length) console.log(failures.slice(0, 5).map(([r, o]) => report(runSeed(r.seed, { ...o, trace: true }), { tail: 150 })).join('\n\n'));
    expect(failures.map(([f]) => `${f.options.faultKinds ? 'stalls ' : f.options.maxDrift ? 'drift ' : ''}seed ${f.seed}${f.options.slowStops ? ' (slow stops)' : ''}: ${f.violation!.invariant}: ${f.violation!.detail}`)).toEqual([]);
  }, 120_000);

  it('catches a watchdog that kills the groups but never runs their stop entries: two holders', () => {
    caughtHolding('watchdog without stop entries', { model: { watchdogStops: false } }, FOCUS);
  }, 120_000);

  it('catches peers that take a node over when its watchdog fires (timeout/2), before its stop entries can have run: two holders', () => {
    caughtHolding('takeover at timeout/2', { logic: { liveness: (m, now, timeoutMs) => liveness(m, now, timeoutMs / 2) } }, SLOW_STOPS);
  }, 120_000);

  // Seeds the simulator found (issue 13's session of 2026-12-02); rare (about 1 in 1,000 focused
  // histories), so replayed here rather than scanned for.
  it('a refused stop entry is held until it can run: seed 20101 holds twice only when refused stops count as done and the watchdog kills its stop entries at a thaw', () => {
    // Either fix alone saves this history (the watchdog's thaw grace came later, seed 3522).
    const control = runSeed(20101, { ...FOCUS, model: { heldStops: false, watchdogThawGrace: false } });
    expect(control.violation?.invariant).toBe('never two holders');
    expect(runSeed(20101, { ...FOCUS, model: { heldStops: false } }).violation).toBeNull();
    expect(runSeed(20101, { ...FOCUS, model: { watchdogThawGrace: false } }).violation).toBeNull();
    const real = runSeed(20101, FOCUS);
    expect(real.violation).toBeNull();
    expect(real.stats.heldStopRetries).toBeGreaterThan(0);
  });

  it('a freeze during a leave does not kill its stop entries at the thaw (seeds 234 and 724, slow stops)', () => {
    for (const seed of [234, 724]) expect(runSeed(seed, SLOW_STOPS).violation, `seed ${seed}`).toBeNull();
  });

  it('a stop entry the watchdog killed runs again, not counts as done (seeds 3058 and 4374, slow stops)', () => {
    for (const seed of [3058, 4374]) expect(runSeed(seed, SLOW_STOPS).violation, `seed ${seed}`).toBeNull();
  });

  it("the watchdog's stop_timeout overrun by a whole-node freeze gives its stop entries their time again (seed 3522); a cltab whose reads all failed is not judged by its old text (seed 4131)", () => {
    for (const seed of [3522, 4131]) expect(runSeed(seed, SLOW_STOPS).violation, `seed ${seed}`).toBeNull();
    // The control: a watchdog that kills its stop entries at the thaw leaves the resource held.
    expect(runSeed(3522, { ...SLOW_STOPS, model: { watchdogThawGrace: false } }).violation?.invariant).toBe('never two holders');
  });

  it('a monitor that dies right after making its folder leaves a left node, not one every plan waits for (seed 31535, 5 nodes); two nodes blind to each other from their start never take each other for gone (seed 1478)', () => {
    expect(runSeed(31535, { nodes: 5, faultRate: 3 }).violation).toBeNull();
    expect(runSeed(1478, {}).violation).toBeNull();
  });

  it('a node cut off from the store never starts on a plan nobody saw (seed 30273); a clstat that reads as missing is read again (seeds 2833, 3859)', () => {
    expect(runSeed(30273, { nodes: 5, faultRate: 3 }).violation).toBeNull();
    for (const seed of [2833, 3859]) expect(runSeed(seed, SLOW_STOPS).violation, `seed ${seed}`).toBeNull();
  });

  it('a monitor that waits out a halt and dies there leaves no folder for every plan to wait on (seeds 1265, 80239)', () => {
    expect(runSeed(1265, SLOW_STOPS).violation).toBeNull();
    expect(runSeed(80239, { nodes: 8, faultRate: 3 }).violation).toBeNull();
  });

  it('catches a stop_timeout longer than its bound (stop_timeout = 2 × timeout > timeout/2 − 100 ms): two holders', () => {
    // The watchdog counts from the last heartbeat, so a stop_timeout must exceed the bound by more
    // than the takeover's own plan window and test before a double holder shows.
    caughtHolding('stop_timeout = 2 × timeout', { stopTimeoutFactor: 2 }, SLOW_STOPS);
  }, 120_000);

  it('catches a step() that ignores DIR/halt: the cluster keeps running', () => {
    caught('halt skipped', { haltRequested: () => null }, 'progress');
  }, 300_000);

  it('catches a decide() that ignores a lost quorum: quorum-less nodes keep running', () => {
    caught('ignore quorum', { decide: (v, c, now, random) => decide({ ...v, quorum: true }, c, now, random) }, 'quorum-less nodes run nothing');
  }, 300_000);

  it('catches a decide() that never plans a homeless group: no progress', () => {
    // A plan is a claim (told as `test` once won) or, without one, a `plan`.
    caught('never plans', { decide: (v, c, now, random) => { const d = decide(v, c, now, random); return { ...d, actions: d.actions.filter((a) => a.level !== 'plan' && a.claim === undefined) }; } }, 'progress');
  }, 300_000);
});
