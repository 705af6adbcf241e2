// Runs vitest and ends with the plain `N passed, N failed` line CI reads. A test file that fails
// outside any test (on import, in beforeAll/afterAll) counts as failed: once, or once per test it
// kept from running. Skipped and todo tests are counted and named on the line before.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { relative } from 'node:path';

// What the tests need from the system first (installed as root, named otherwise); the labs are
// warmed only when the chaos tests are among those run.
if (process.env.PEERHA_NO_INSTALL !== '1') {
  const only = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const labs = only.length === 0 || only.some((a) => a.includes('chaos'));
  const deps = spawnSync('bash', ['scripts/system-deps.sh'], { stdio: 'inherit', env: { ...process.env, PEERHA_DEPS_NO_LABS: labs ? '0' : '1' } });
  if (deps.status !== 0) console.log(`scripts/system-deps.sh failed (exit ${deps.status}); the tests run anyway`);
}

const report = '.vitest-report.json';
rmSync(report, { force: true });
const args = ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)];
const run = spawnSync('npx', args, { stdio: 'inherit' });
let passed = 0;
let failed = 0;
const skipped = [];
const broken = [];
try {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  for (const file of r.testResults) {
    const name = relative(process.cwd(), file.name);
    const tests = file.assertionResults;
    passed += tests.filter((t) => t.status === 'passed').length;
    failed += tests.filter((t) => t.status === 'failed').length;
    const notRun = tests.filter((t) => t.status === 'skipped' || t.status === 'pending' || t.status === 'todo');
    if (file.status === 'failed' && !tests.some((t) => t.status === 'failed')) {
      // Failed outside a test: whatever it did not run failed with it.
      failed += Math.max(1, notRun.length);
      broken.push(`${name}: ${String(file.message || 'failed outside a test').split('\n')[0]}`);
    } else skipped.push(...notRun.map((t) => `${name} > ${t.fullName ?? t.title}`));
  }
} catch {
  failed = Math.max(failed, 1);
  broken.push(`no test report (${report}): vitest did not finish`);
}
for (const b of broken) console.log(`failed outside a test: ${b}`);
console.log(`${skipped.length} skipped${skipped.length ? `: ${skipped.join('; ')}` : ''}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : (run.status ?? 1));
