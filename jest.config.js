/** One root jest run over every package and the cross-package tests in test/. */
const project = (name, roots) => ({
  displayName: name,
  roots,
  testEnvironment: 'node',
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true, tsconfig: '<rootDir>/tsconfig.test.json' }] },
  moduleNameMapper: { '^@coord/(proto|server|client|cli|recipes)$': '<rootDir>/packages/$1/src' },
  rootDir: __dirname,
});
module.exports = {
  verbose: true,
  testTimeout: 60000,
  // Two suites at a time (jest's default on 2 cores is one). Most suites wait on real server
  // processes, so the pair keeps both cores about 80% busy: 391 s for the whole suite where
  // one at a time took 634 s (2 cores, 104 suites). Tests assert no wall-clock speed, and
  // their deadlines leave room for a loaded machine.
  maxWorkers: 2,
  projects: [
    project('server', ['<rootDir>/packages/server/test']),
    project('client', ['<rootDir>/packages/client/test']),
    project('cli', ['<rootDir>/packages/cli/test']),
    project('recipes', ['<rootDir>/packages/recipes/test']),
    project('e2e', ['<rootDir>/test']),
  ],
};
