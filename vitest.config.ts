import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['{core,config,chain,pricing,provisioners,daemon,test}/**/*.test.ts'],
    // 2 cores: suites that start anvil, sshd or child processes must not all run at once.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
})
