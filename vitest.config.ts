import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['{core,config,chain,pricing,provisioners,daemon,test}/**/*.test.ts'],
    // 2 cores: suites that start anvil, sshd or child processes must not all run at once.
    pool: 'forks',
    // prints the fault suite's figures as one line at the end of the run (test/faults/figures.ts)
    globalSetup: ['test/faults/globalSetup.ts'],
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
})
