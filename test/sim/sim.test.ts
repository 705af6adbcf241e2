// The deterministic cluster simulator (src/sim): N real decide()/quorum()/observe()/liveness()/
// fenceTargets() and view pieces, the real group engine on scripted processes, a simulated shared
// store, watchdogs and a fence hook, under seeded faults — with the invariants checked at every step.
// A failing seed prints its replayable trace (`npm run sim -- --seed S --trace`).

import { describe, expect, it } from 'vitest';
import { decide } from '../../src/monitor/decide.js';
import { decideConfig } from '../../src/monitor/view.js';
import type { SimLogic } from '../../src/sim/logic.js';
import { report, runSeed, type RunResult } from '../../src/sim/sim.js';

/** The CI budget: seeds 1…SEEDS, cluster sizes drawn from a 1–16 mix. */
const SEEDS = 2000;

function explain(r: RunResult): string {
  return report(runSeed(r.seed, { trace: true }), { tail: 150 });
}

describe('cluster simulator', () => {
  it(`${SEEDS} seeded histories (1–16 nodes, every fault kind): never two owners, progress within the bound, quorum-less nodes run nothing`, () => {
    const t0 = performance.now();
    const failures: RunResult[] = [];
    const sizes = new Map<number, number>();
    const faults = new Map<string, number>();
    const conv: number[] = [];
    const totals = { fences: 0, fenceEffects: 0, fencerDied: 0, fenceFailed: 0, fenceTimedOut: 0, fenceSlow: 0, watchdogKills: 0, selfFenceKills: 0, noQuorum: 0, simMs: 0 };
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = runSeed(seed);
      if (!r.ok) failures.push(r);
      sizes.set(r.nodes, (sizes.get(r.nodes) ?? 0) + 1);
      for (const f of r.scenario.faults) faults.set(f.kind, (faults.get(f.kind) ?? 0) + 1);
      if (r.convergeMs !== null) conv.push(r.convergeMs / r.cycleMs);
      totals.fences += r.stats.fences;
      totals.fenceEffects += r.stats.fenceEffects;
      totals.fencerDied += r.stats.fencerDied;
      totals.fenceFailed += r.stats.fenceFailed;
      totals.fenceTimedOut += r.stats.fenceTimedOut;
      totals.fenceSlow += r.stats.fenceSlow;
      totals.watchdogKills += r.stats.watchdogKills;
      totals.selfFenceKills += r.stats.selfFenceKills;
      totals.noQuorum += r.mode === 'no quorum' ? 1 : 0;
      totals.simMs += r.simMs;
    }
    const ms = performance.now() - t0;
    conv.sort((a, b) => a - b);
    console.log(
      `[measured] simulator: ${SEEDS} histories in ${(ms / 1000).toFixed(1)} s (${((SEEDS / ms) * 60_000).toFixed(0)} histories/minute, one thread), ` +
        `${(totals.simMs / 3.6e6).toFixed(1)} simulated cluster-hours; convergence after the last fault p50 ${conv[Math.floor(conv.length / 2)]?.toFixed(1)} / ` +
        `p99 ${conv[Math.floor(conv.length * 0.99)]?.toFixed(1)} / max ${conv[conv.length - 1]?.toFixed(1)} cycles; ${totals.fences} fences (${totals.fenceEffects} powered a node off, ${totals.fencerDied} fencers died mid-fence; ${totals.fenceFailed} failed, ${totals.fenceTimedOut} timed out, ${totals.fenceSlow} slow), ` +
        `${totals.watchdogKills} watchdog kills, ${totals.selfFenceKills} self-fence kills; ${totals.noQuorum} histories ended without quorum`,
    );
    if (failures.length) console.log(failures.map(explain).join('\n\n'));
    expect(failures.map((f) => `seed ${f.seed}: ${f.violation!.invariant}: ${f.violation!.detail}`)).toEqual([]);
    // the budget covers the mix it claims
    for (const n of [1, 2, 3, 4, 5, 8, 16]) expect(sizes.get(n) ?? 0).toBeGreaterThan(0);
    for (const kind of ['crash', 'crash-fencer', 'kill-monitor', 'leave', 'pause', 'partition', 'slow', 'reads', 'fence-faulty', 'hactl', 'start']) expect(faults.get(kind) ?? 0).toBeGreaterThan(20);
    expect(totals.fenceEffects).toBeGreaterThan(20);
    expect(totals.watchdogKills).toBeGreaterThan(20);
    expect(totals.fencerDied).toBeGreaterThan(0);
    // every fence outcome: success, failure, timeout, a slow agent, a fencer dying mid-fence
    for (const k of ['fenceFailed', 'fenceTimedOut', 'fenceSlow'] as const) expect(totals[k], k).toBeGreaterThan(5);
  }, 300_000);

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

  // The simulator can fail: broken decision logic is caught within the CI seed budget.
  const firstViolation = (logic: Partial<SimLogic>, invariant: string): RunResult | null => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = runSeed(seed, { logic });
      if (!r.ok && r.violation!.invariant === invariant) return r;
    }
    return null;
  };

  it('catches a decide() with no plan dwell (plan window 0 while the store lags): two owners', () => {
    const r = firstViolation({ decideConfig: (s) => ({ ...decideConfig(s), planWindowMs: 0 }) }, 'never two owners');
    expect(r, 'no violation found').not.toBeNull();
    console.log(`[measured] plan window 0: caught at seed ${r!.seed}: ${r!.violation!.detail}`);
    const replay = report(runSeed(r!.seed, { trace: true, logic: { decideConfig: (s) => ({ ...decideConfig(s), planWindowMs: 0 }) } }));
    expect(replay).toMatch(/VIOLATION of "never two owners"/);
    expect(replay).toMatch(/npm run sim -- --seed \d+ --trace/);
  }, 120_000);

  it("catches a view that takes over a stale node without waiting for its self-fence or a fence: two owners", () => {
    const r = firstViolation({ isReleased: (state) => state !== 'up' }, 'never two owners');
    expect(r, 'no violation found').not.toBeNull();
    console.log(`[measured] release without fence: caught at seed ${r!.seed}: ${r!.violation!.detail}`);
  }, 120_000);

  it('catches a decide() that ignores a lost quorum: quorum-less nodes keep running', () => {
    const r = firstViolation({ decide: (v, c, now, random) => decide({ ...v, quorum: true }, c, now, random) }, 'quorum-less nodes run nothing');
    expect(r, 'no violation found').not.toBeNull();
    console.log(`[measured] ignore quorum: caught at seed ${r!.seed}: ${r!.violation!.detail}`);
  }, 120_000);

  it('catches a decide() that never plans a homeless group: no progress', () => {
    const r = firstViolation({ decide: (v, c, now, random) => { const d = decide(v, c, now, random); return { ...d, actions: d.actions.filter((a) => a.level !== 'plan') }; } }, 'progress');
    expect(r, 'no violation found').not.toBeNull();
    console.log(`[measured] never plans: caught at seed ${r!.seed}: ${r!.violation!.detail}`);
  }, 120_000);
});
