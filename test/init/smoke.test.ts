import { afterEach, expect, it } from 'vitest';
import { startDaemon, type DaemonHandle } from '../helpers/daemon.js';

let d: DaemonHandle | null = null;
afterEach(async () => {
  await d?.stop();
  d = null;
});

it('starts, tells a group, shuts down and removes clstat and socket', async () => {
  d = await startDaemon('g:a:1:wait:echo hi >> $OUT\ng:b:1:respawn:sleep 30\n');
  expect((await d.tell('g', '1')).message).toBe('level transition started');
  await d.waitState('g', '1', 'DONE');
  expect(d.outLines()).toEqual(['hi']);
  const r = d.cli(['shutdown']);
  expect(r.code).toBe(0);
  expect(await d.exited()).toBe(0);
  expect(d.statusLines()).toEqual([]);
});
