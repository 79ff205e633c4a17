/** Unit tests of the sidebar's pure modules and plain-DOM views, in jsdom (no JupyterLab). */
module.exports = {
  testEnvironment: 'jsdom',
  roots: ['<rootDir>/test'],
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }]
  },
  testMatch: ['**/*.spec.ts'],
  reporters: ['default']
};
