import { defineConfig } from 'vitest/config';

/** Vitest configuration: real sockets on loopback, so files run in separate forks with bounded timeouts. */
export const config = defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 10_000,
  },
});

// vitest loads the default export of its config file; this is the one place the project has one.
export default config;
