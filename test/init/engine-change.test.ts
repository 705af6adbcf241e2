// The engine tells its owner which levels groups settled at: the monitor acts on a finished test at
// once (a takeover's start waits on it) and gathers every other process event for a few ms.
import { describe, expect, it } from 'vitest';
import { parseCltab } from '../../src/config/cltab.js';
import { Engine } from '../../src/init/engine.js';
import { RealRunner } from '../../src/init/runner.js';
import { waitFor } from '../helpers/daemon.js';

describe('engine: onChange', () => {
  it('names the level a group settled at: test when its test passed, start when it runs', async () => {
    const parsed = parseCltab('g:t:test:test:true\ng:r:start:respawn:exec sleep 30\n', 'cltab');
    if (!parsed.ok) throw new Error('cltab');
    const settled: string[][] = [];
    const quiet = (): void => undefined;
    const engine = new Engine({ runner: new RealRunner({ pollMs: 20 }), logger: { info: quiet, warn: quiet, error: quiet }, onChange: (at) => void settled.push([...at]) });
    engine.setConfig(parsed.cltab);
    try {
      engine.tell('g', 'test');
      await waitFor('test passed', () => engine.groupStatus('g')?.state === 'PASSED', 10_000);
      expect(settled.flat()).toEqual(['test']);
      engine.tell('g', 'start');
      await waitFor('started', () => engine.groupStatus('g')?.state === 'DONE', 10_000);
      expect(settled.flat()).toEqual(['test', 'start']);
    } finally {
      await new Promise<void>((resolve) => engine.haltAll(resolve));
    }
  });
});
