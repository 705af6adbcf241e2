// The status page in a real headless browser (Debian's chromium, driven by playwright-core):
// after a kill -9 failover a person sees the group on its new node, the dead node stale and the
// failover counted. Saves a screenshot; PEERHA_UPDATE_SCREENSHOT=1 copies it to docs/.
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterEach, expect, it } from 'vitest';
import { clusterPerTest, lockedWorkload, waitFor } from '../helpers/cluster.js';
import { listenOf, METRICS_YAML, requireChromium } from '../helpers/metrics.js';

const cluster = clusterPerTest();
let browser: Browser | null = null;
afterEach(async () => {
  await browser?.close();
  browser = null;
});

it('after kill -9 of the node running web, the page shows web on its new node, the dead node stale and one failover', async () => {
  const executablePath = requireChromium();
  const c = cluster({ yaml: METRICS_YAML });
  c.writeRoot('cltab', `web:web-test:test:test:true\nweb:web-run:start:respawn:${lockedWorkload(c.dir, 'web')}\ndb:db-run:start:respawn:sleep 7342.1\n`);
  c.writeRoot('hactl', 'web start n3,n2,n1\ndb start n1,n2\n');
  await c.startHeartbeating('n3');
  for (const n of ['n1', 'n2']) c.start(n);
  await c.waitRunning('web');
  await c.waitRunning('db');
  expect(c.runningOn('web')).toBe('n3');
  const addresses = new Map([['n1', await listenOf(c.monitors.get('n1')!)], ['n2', await listenOf(c.monitors.get('n2')!)]]);

  await c.killNode('n3');
  const now = await c.waitRunning('web', 'start', 20_000, ['n1', 'n2']);
  // The new owner's page: its events show web starting there.
  await waitFor(`${now} to see n3 stale and the failover`, () => c.hastat(now)?.nodes.n3?.state === 'stale' && c.hastat(now)?.groups.web?.failovers === 1, 15_000);

  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage'] });
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  const problems: string[] = [];
  page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())));
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.goto(`http://${addresses.get(now)!}/`);
  // What a person reads, by the text on the screen.
  const web = page.locator('tr[data-group="web"]');
  await web.locator('td').nth(2).filter({ hasText: new RegExp(`^${now}$`) }).waitFor({ timeout: 10_000 });
  const cells = async (row: string): Promise<string[]> => page.locator(row).locator('td').allInnerTexts();
  const webCells = await cells('tr[data-group="web"]');
  expect(webCells.slice(0, 3)).toEqual(['web', 'start', now]);
  expect(webCells[3]).toBe(`${now}: start DONE`);
  expect(webCells[4]).toBe('1');
  const n3 = await cells('tr[data-node="n3"]');
  expect(n3[0]).toBe('n3');
  expect(n3[1]).toBe('stale (down?)');
  expect(Number.parseFloat(n3[2]!)).toBeGreaterThan(1.5);
  for (const n of ['n1', 'n2']) expect((await cells(`tr[data-node="${n}"]`))[1]).toBe('up');
  expect(await page.locator('#failovers').innerText()).toBe('1');
  expect(await page.locator('#quorum').innerText()).toMatch(/^quorum — 2 live/);
  expect(await page.locator('#age').innerText()).toMatch(new RegExp(`^view of ${now}, built \\d+\\.\\d s ago`));
  const events = await page.locator('#events').innerText();
  expect(events).toMatch(/n3: last heartbeat \(now stale\)/);
  expect(events).toContain(`web on ${now}: start DONE`);
  // The page refreshes itself: a later view replaces this one.
  const builtAt = async (): Promise<string | undefined> => /\((\S+)\)$/.exec(await page.locator('#age').innerText())?.[1];
  const first = await builtAt();
  await waitFor('the page to show a newer view', async () => (await builtAt()) !== first && (await page.locator('#problem').isHidden()), 10_000, 200);
  // Its inline script and style ran under the page's Content-Security-Policy, without an error.
  expect(problems).toEqual([]);

  const shot = join(c.dir, 'status-page.png');
  await page.screenshot({ path: shot, fullPage: true });
  if (process.env.PEERHA_UPDATE_SCREENSHOT === '1') copyFileSync(shot, join(import.meta.dirname, '../../docs/status-page.png'));
}, 90_000);
