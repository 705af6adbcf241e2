// Heartbeat names and their dating (beats.ts): a beat is dated from its writer's stamp, never
// earlier than it was made on our clock, whatever the clocks' offset, and their rates within drift.

import { describe, expect, it } from 'vitest';
import { beatName, dateBeat, parseBeatName, stampedBeat, type Beat, type BeatClock } from '../../src/cluster/beats.js';
import { formatClstat, parseClstat } from '../../src/config/clstat.js';
import { Rng } from '../../src/sim/rng.js';

const beat = (seq: number, inc: string, stampMs: number): Beat => parseBeatName(stampedBeat(beatName('n2', seq, 1, 0, inc), stampMs))!;

describe('beat names', () => {
  it('carry the incarnation and a stamp in whole µs; older names without them still parse', () => {
    const name = stampedBeat(beatName('n1', 7, 3, 2, 'k9'), 1234.5678);
    expect(name).toBe('n1@7@3@2@k9@1234567');
    expect(parseBeatName(name)).toEqual({ node: 'n1', seq: 7, gen: 3, copies: 2, inc: 'k9', stamp: 1234.567, name });
    expect(parseBeatName('n1@7@3@2')).toEqual({ node: 'n1', seq: 7, gen: 3, copies: 2, name: 'n1@7@3@2' });
    for (const bad of ['n1@7@3@2@k9', 'n1@7@3@2@K9@1', 'n1@7@3@2@k9@01', 'n1@7@3@2@@1', 'n1@7@3@2@k9@1@2', 'n1@7@3@2@k9@-1']) expect(parseBeatName(bad), bad).toBeNull();
  });

  it('parse the same when seen again (cached) and after the cache filled up and started over', () => {
    const names = Array.from({ length: 5000 }, (_, i) => stampedBeat(beatName(`n${i % 70}`, i, 1, 0, 'k9'), i));
    const first = names.map((n) => ({ ...parseBeatName(n)! }));
    expect(names.map((n) => parseBeatName(n))).toEqual(first);
    expect(first[4999]).toEqual({ node: 'n29', seq: 4999, gen: 1, copies: 0, inc: 'k9', stamp: 4999, name: names[4999] });
    for (let i = 0; i < 2; i++) expect(parseBeatName('n1@7@3@2@k9')).toBeNull();
  });
});

describe('a clstat\'s stamp', () => {
  it('is its writer\'s monotonic clock in whole µs; a bad one is left out, the header still read', () => {
    const text = formatClstat({ header: { node: 'n1', pid: 9, seq: 4, time: 'x', inc: 'k9', gen: 2, mono: 1234.5678 }, groups: [] });
    expect(text).toMatch(/^# peerha node=n1 pid=9 seq=4 time=x inc=k9 gen=2 mono=1234567 lines=0 /);
    expect(parseClstat(text).header).toMatchObject({ seq: 4, inc: 'k9', mono: 1234.567 });
    for (const bad of ['-5', '1.5', 'x', '']) {
      const h = parseClstat(text.replace('mono=1234567', `mono=${bad}`)).header;
      expect(h?.seq, bad).toBe(4);
      expect(h && 'mono' in h, bad).toBe(false);
    }
  });
});

describe('dateBeat', () => {
  it('dates every beat between when it was made and when it was seen, for any offset, rates within drift and listing lags', () => {
    const drift = 0.001;
    // The simulator's seeded generator: the same cases every run.
    const rng = new Rng(13);
    const random = (): number => rng.uniform(0, 1);
    let early = 0;
    let gained = 0;
    let beats = 0;
    for (let run = 0; run < 200; run++) {
      // Our clock = offset + rate × the writer's, the rate within drift of 1 either way.
      const offset = random() * 1e7;
      const rate = 1 + (random() * 2 - 1) * drift * 0.999;
      let clock: BeatClock | undefined;
      let stamp = random() * 1e6;
      for (let seq = 1; seq <= 100; seq++) {
        stamp += 50 + random() * 100;
        const made = offset + rate * stamp;
        const seenAt = made + random() * 40;
        const dated = dateBeat(clock, beat(seq, 'a1', stamp), seenAt, drift);
        clock = dated.clock;
        expect(dated.at).toBeLessThanOrEqual(seenAt);
        early = Math.max(early, made - dated.at);
        if (seq > 20) {
          gained += seenAt - dated.at;
          beats++;
        }
      }
    }
    // Not earlier than made but for the µs the stamps are floored to.
    expect(early).toBeLessThan(0.002);
    // Most of a listing's lag (20 ms on average here) is gone once a few beats were seen early.
    expect(gained / beats).toBeGreaterThan(15);
  });

  it('starts over from the sighting after a new incarnation or a stamp that went back, and without a stamp', () => {
    const first = dateBeat(undefined, beat(1, 'a1', 500), 10_000, 0.001);
    expect(first.at).toBe(10_000);
    const second = dateBeat(first.clock, beat(2, 'a1', 600), 10_150, 0.001);
    expect(second.at).toBeCloseTo(10_100.1, 6);
    // A restarted monitor (its clock's origin moved): no credit from the old one's stamps.
    const restarted = dateBeat(second.clock, beat(3, 'b2', 700), 10_300, 0.001);
    expect(restarted).toEqual({ at: 10_300, clock: { inc: 'b2', from: 0.7e3, intercept: 10_300 - 700 * 1.001 } });
    // A beat that improves on nothing keeps the clock as it was (no new object).
    expect(second.clock).toBe(first.clock);
    // A stamp before the one the bound was learnt from is no clock to trust.
    expect(dateBeat(second.clock, beat(3, 'a1', 450), 10_300, 0.001).at).toBe(10_300);
    // An older monitor's beat carries no stamp: dated when seen, as before.
    expect(dateBeat(second.clock, parseBeatName('n2@3@1@0')!, 10_300, 0.001)).toEqual({ at: 10_300, clock: undefined });
  });
});
