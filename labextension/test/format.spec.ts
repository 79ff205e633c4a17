import {
  defaultSnippet,
  formatAliases,
  formatDuration,
  formatMetric,
  formatNumber,
  matchesFilter,
  preferredRef,
  relativeTime,
  snippet,
  splitJobs
} from '../src/format';
import { IJob } from '../src/types';
import { trans } from './fakeModel';
import { model } from './fixtures';

describe('snippets', () => {
  it('prefers @prod, then the first alias, then the latest version', () => {
    expect(preferredRef(model('iris', { latest: 3 }))).toBe('iris:3');
    expect(
      preferredRef(model('iris', { aliases: { staging: 3, beta: 2 } }))
    ).toBe('iris@beta');
    expect(
      preferredRef(model('iris', { aliases: { staging: 3, prod: 2 } }))
    ).toBe('iris@prod');
  });

  it('loads an undeployed model and predicts with a deployed one', () => {
    const plain = model('iris-rf', { aliases: { prod: 1 } });
    expect(defaultSnippet(plain)).toBe(
      'import aiaas_jupyter\nmodel = aiaas_jupyter.load_model("iris-rf@prod")\nmodel'
    );
    expect(snippet(plain, 'predict')).toBe(
      '%aiaas deploy iris-rf@prod\n%aiaas predict iris-rf --input X -o predictions'
    );
    const deployed = model('iris-rf', {
      deployed: true,
      endpoint: 'http://127.0.0.1:1/v2/models/iris-rf'
    });
    expect(defaultSnippet(deployed)).toBe(
      '%aiaas predict iris-rf --input X -o predictions'
    );
  });
});

describe('formatting', () => {
  it('formats metrics and numbers', () => {
    expect(formatMetric({ name: 'accuracy', value: 0.96666 })).toBe(
      'accuracy 0.967'
    );
    expect(formatMetric({ name: 'mse', value: 0.000123 })).toBe('mse 1.23e-4');
    expect(formatMetric(null)).toBe('');
    expect(formatMetric({ name: 'r2', value: NaN })).toBe('');
    expect(formatNumber(123456)).toBe('1.23e+5');
    expect(formatNumber(0)).toBe('0');
    expect(formatNumber(12.34)).toBe('12.3');
  });

  it('formats relative times and durations', () => {
    const now = Date.parse('2026-11-23T12:00:00Z');
    expect(relativeTime('2026-11-23T11:59:30Z', trans, now)).toBe('30 s ago');
    expect(relativeTime('2026-11-23T11:55:00Z', trans, now)).toBe('5 min ago');
    expect(relativeTime('2026-11-23T09:00:00Z', trans, now)).toBe('3 h ago');
    expect(relativeTime('2026-11-20T12:00:00Z', trans, now)).toBe('3 d ago');
    expect(relativeTime('not a time', trans, now)).toBe('');
    expect(relativeTime(null, trans, now)).toBe('');
    expect(formatDuration(1.234, trans)).toBe('1.2 s');
    expect(formatDuration(125, trans)).toBe('2 min 5 s');
    expect(formatDuration(null, trans)).toBe('');
  });

  // rounding first, then splitting: the old code gave "60.0 s" for 59.97 and "1 min 60 s" for 119.6
  it.each([
    [0, '0.0 s'],
    [0.04, '0.0 s'],
    [9.96, '10.0 s'],
    [59.94, '59.9 s'],
    [59.97, '1 min 0 s'],
    [60, '1 min 0 s'],
    [119.6, '2 min 0 s'],
    [125, '2 min 5 s'],
    [3599.4, '59 min 59 s'],
    [3599.6, '1 h 0 min'],
    [3600, '1 h 0 min'],
    [86399.6, '24 h 0 min']
  ])('formatDuration(%p) is %p', (seconds, text) => {
    expect(formatDuration(seconds, trans)).toBe(text);
  });

  it('puts every word through the translation bundle', () => {
    const seen: string[] = [];
    const bundle = {
      __: (msg: string, ...args: unknown[]) => {
        seen.push(msg);
        return `<${msg}|${args.join(',')}>`;
      },
      _n: (one: string, many: string, n: number) => `<${n === 1 ? one : many}>`
    } as unknown as typeof trans;
    const now = Date.parse('2026-11-23T12:00:00Z');
    expect(relativeTime('2026-11-23T11:55:00Z', bundle, now)).toBe(
      '<%1 min ago|5>'
    );
    expect(formatDuration(125, bundle)).toBe('<%1 min %2 s|2,5>');
    expect(seen).toEqual(['%1 min ago', '%1 min %2 s']);
  });

  it('formats aliases sorted', () => {
    expect(formatAliases({ staging: 3, prod: 2 })).toBe('@prod→v2 @staging→v3');
    expect(formatAliases({})).toBe('');
  });
});

describe('filter', () => {
  const m = model('Iris-RF', {
    framework: 'sklearn',
    aliases: { prod: 1 },
    deployed: true
  });
  it('matches every term against name, framework, aliases and deployed', () => {
    expect(matchesFilter(m, '')).toBe(true);
    expect(matchesFilter(m, '  ')).toBe(true);
    expect(matchesFilter(m, 'iris')).toBe(true);
    expect(matchesFilter(m, 'IRIS sklearn')).toBe(true);
    expect(matchesFilter(m, 'prod deployed')).toBe(true);
    expect(matchesFilter(m, 'torch')).toBe(false);
    expect(matchesFilter(model('x'), 'deployed')).toBe(false);
  });
});

describe('jobs', () => {
  const job = (
    id: string,
    status: string,
    submitted: string,
    finished: string | null = null
  ): IJob => ({
    id,
    model: 'm',
    status,
    progress: 0.5,
    worker: null,
    gpus: 0,
    submitted,
    started: null,
    finished,
    duration_s: null,
    version: null,
    error: null
  });
  it('splits running from recent, ordered and bounded', () => {
    const jobs = [
      job('a', 'running', '2026-11-23T10:00:02'),
      job('b', 'pending', '2026-11-23T10:00:01'),
      job('c', 'finished', '2026-11-23T09:00:00', '2026-11-23T09:00:05'),
      job('d', 'error', '2026-11-23T09:10:00', '2026-11-23T09:10:05'),
      ...Array.from({ length: 12 }, (_, i) =>
        job(
          `old${i}`,
          'finished',
          '2026-11-22T00:00:00',
          `2026-11-22T00:00:${10 + i}`
        )
      )
    ];
    const { active, done } = splitJobs(jobs);
    expect(active.map(j => j.id)).toEqual(['b', 'a']);
    expect(done.map(j => j.id).slice(0, 3)).toEqual(['d', 'c', 'old11']);
    expect(done).toHaveLength(10);
  });
});
