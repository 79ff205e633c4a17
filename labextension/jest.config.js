/**
 * Unit tests of the sidebar in jsdom: plain-DOM views, the model and real lumino widgets.
 * `@jupyterlab/*` packages ship ES modules only, so they (and the few ESM packages they pull
 * in) are compiled to CommonJS by ts-jest too (`allowJs`), as @jupyterlab/testing's preset does.
 */
const esModules = [
  '@jupyterlab',
  '@jupyter',
  '@microsoft',
  '@codemirror',
  '@lezer',
  'exenv',
  'exenv-es6',
  'lib0',
  'nanoid',
  'y-protocols',
  'yjs',
  'marked'
].join('|');

module.exports = {
  testEnvironment: 'jsdom',
  roots: ['<rootDir>/test'],
  transform: {
    '^.+\\.[tj]sx?$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }]
  },
  transformIgnorePatterns: [
    `/node_modules/(?!(${esModules})/)`,
    '<rootDir>/test/.*\\.js$'
  ],
  setupFiles: ['<rootDir>/test/shim.js'],
  moduleNameMapper: {
    '\\.css$': '<rootDir>/test/styleMock.js',
    '\\.svg$': '<rootDir>/test/svgMock.js'
  },
  testMatch: ['**/*.spec.ts'],
  reporters: ['default']
};
