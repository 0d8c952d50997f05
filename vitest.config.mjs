import { defineConfig } from 'vitest/config';

// Suites are files under tests/; the GPU suites need VK_ICD_FILENAMES when no hardware adapter exists,
// which scripts/run-tests.mjs sets (see tests/helpers/webgpu-env.ts).
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
