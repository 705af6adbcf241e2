// `peerha status --json` from a real cluster validates against docs/hastat.schema.json.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { Cluster, lockedWorkload, waitFor } from '../helpers/cluster.js';

type Schema = {
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
};

/** The subset of JSON Schema the hastat schema uses; returns every violation with its path. */
function validate(v: unknown, s: Schema, path = '$'): string[] {
  const errs: string[] = [];
  const typeOf = (x: unknown): string => (x === null ? 'null' : Array.isArray(x) ? 'array' : Number.isInteger(x) ? 'integer' : typeof x);
  if (s.const !== undefined && v !== s.const) errs.push(`${path}: expected ${JSON.stringify(s.const)}`);
  if (s.enum && !s.enum.includes(v)) errs.push(`${path}: ${JSON.stringify(v)} not in ${JSON.stringify(s.enum)}`);
  if (s.type) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    const t = typeOf(v);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) errs.push(`${path}: ${t} is not ${types.join('|')}`);
  }
  if (typeOf(v) === 'object') {
    const o = v as Record<string, unknown>;
    for (const r of s.required ?? []) if (!(r in o)) errs.push(`${path}: missing ${r}`);
    for (const [k, x] of Object.entries(o)) {
      const sub = s.properties?.[k] ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
      if (sub) errs.push(...validate(x, sub, `${path}.${k}`));
      else if (s.additionalProperties === false) errs.push(`${path}: unexpected ${k}`);
    }
  }
  if (Array.isArray(v) && s.items) v.forEach((x, i) => errs.push(...validate(x, s.items!, `${path}[${i}]`)));
  return errs;
}

let c: Cluster | null = null;
afterEach(async () => {
  await c?.cleanup();
  c = null;
});

it('status --json (the hastat) validates against the documented schema, including after a failover', async () => {
  const schema = JSON.parse(readFileSync(join(import.meta.dirname, '../../docs/hastat.schema.json'), 'utf8')) as Schema;
  c = new Cluster();
  c.writeRoot('cltab', `web:web-test:test:test:true\nweb:web-run:start:respawn:${lockedWorkload(c.dir, 'web')}\n`);
  c.writeRoot('hactl', 'web start\nghost start\n');
  for (const n of ['n1', 'n2', 'n3']) c.start(n);
  const owner = await c.waitRunning('web');
  await c.killNode(owner);
  const alive = ['n1', 'n2', 'n3'].filter((n) => n !== owner);
  await c.waitRunning('web', 'start', 15_000, alive);
  await waitFor('a view that shows the dead node stale', () => alive.every((n) => c!.hastat(n)?.nodes[owner]?.state === 'stale'), 10_000);
  const r = await c.cli(['status', '--root', c.root, '--json']);
  expect(r.code, r.stderr).toBe(0);
  const h = JSON.parse(r.stdout) as { groups: Record<string, { failovers?: number }>; errors: string[] };
  expect(validate(h, schema)).toEqual([]);
  expect(h.errors.join()).toMatch(/ghost/);
  for (const n of alive) expect(validate(c.hastat(n), schema)).toEqual([]);
  // and the validator itself rejects what it should
  expect(validate({ ...h, version: 2, extra: 1 }, schema)).toEqual(['$: expected 1'.replace('$', '$.version'), '$: unexpected extra']);
}, 60_000);
