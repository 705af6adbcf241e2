import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { expect, it } from 'vitest';
import { BIN, processesWith } from '../helpers/daemon.js';

it('peerha demo: fails over with 0 double-active moments, exits 0 and leaves nothing behind', () => {
  const r = spawnSync(process.execPath, [BIN, 'demo'], { encoding: 'utf8', timeout: 60_000 });
  const out = r.stdout + r.stderr;
  expect(r.status, out).toBe(0);
  expect(out).toMatch(/cold start\s+\d+\.\d+ s/);
  expect(out).toMatch(/failover\s+\d+\.\d+ s \(n\d killed → n\d answering\)/);
  expect(out).toMatch(/double-active moments\s+0\n/);
  const dir = /monitors on (\S+)\/shared/.exec(out)?.[1];
  expect(dir).toBeTruthy();
  expect(existsSync(dir!)).toBe(false);
  expect(processesWith(dir!)).toEqual([]);
  const port = /HTTP service on 127\.0\.0\.1:(\d+)/.exec(out)?.[1];
  expect(processesWith(`http-server.mjs ${port}`)).toEqual([]);
  expect(processesWith(`(demo ${port})`)).toEqual([]);
}, 90_000);
