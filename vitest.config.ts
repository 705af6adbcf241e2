import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests spawn real daemons; keep parallelism modest on a 2-core machine.
    maxWorkers: 2,
    projects: [
      // First and alone: the simulator's campaign is CPU-bound on two threads. Beside the
      // GlusterFS lab (its bricks and FUSE clients take most of both cores) one thread of it took
      // 12–15 minutes in CI, two threads no less.
      { extends: true, test: { name: 'simulator', include: ['test/sim/**/*.test.ts'], sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'cluster', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, 'test/sim/**'], sequence: { groupOrder: 1 } } },
    ],
  },
});
