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
  projects: [
    project('server', ['<rootDir>/packages/server/test']),
    project('client', ['<rootDir>/packages/client/test']),
    project('cli', ['<rootDir>/packages/cli/test']),
    project('recipes', ['<rootDir>/packages/recipes/test']),
    project('e2e', ['<rootDir>/test']),
  ],
};
