/**
 * ESLint (flat config) as the JupyterLab extension template configures it: eslint + typescript-eslint
 * recommended, the Jupyter plugin (translation, signal and command checks that catch JupyterLab bugs
 * before the browser test does), the template's naming/curly/eqeqeq rules, and prettier last so that
 * formatting is prettier's alone. The jest tests are linted too, against the tsconfig that includes them.
 */
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import prettierRecommended from 'eslint-plugin-prettier/recommended';
import globals from 'globals';
import jupyterPlugin from '@jupyter/eslint-plugin';

export default defineConfig([
  {
    ignores: ['node_modules', 'lib', 'coverage', '**/*.js', '**/*.d.ts']
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  jupyterPlugin.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: {
      globals: {
        ...globals.browser,
        ...globals.es2015,
        ...globals.node
      },
      parserOptions: {
        project: 'tsconfig.json',
        sourceType: 'module'
      }
    },
    rules: {
      '@typescript-eslint/naming-convention': [
        'error',
        {
          selector: 'interface',
          format: ['PascalCase'],
          custom: {
            regex: '^I[A-Z]',
            match: true
          }
        }
      ],
      '@typescript-eslint/no-unused-vars': ['warn', { args: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-namespace': 'off',
      '@typescript-eslint/no-use-before-define': 'off',
      eqeqeq: 'error',
      'prefer-arrow-callback': 'error'
    }
  },
  {
    // test/ is outside tsconfig.json (rootDir src); tsconfig.test.json includes src and test
    files: ['test/**/*.ts'],
    languageOptions: {
      parserOptions: { project: 'tsconfig.test.json' }
    }
  },
  prettierRecommended,
  {
    // after prettier's config, which turns `curly` and `quotes` off: both are safe with prettier in these
    // forms (eslint-config-prettier's "special rules"), and the template means them: braces always, and
    // no template literal without placeholders (the one quoting check prettier cannot make)
    files: ['**/*.ts', '**/*.tsx'],
    rules: {
      curly: ['error', 'all'],
      quotes: [
        'error',
        'single',
        { avoidEscape: true, allowTemplateLiterals: false }
      ]
    }
  }
]);
