/**
 * Pure helpers shared by the views: snippets, number/time formatting, filtering and the
 * split of jobs into running and recent. No DOM; words go through the caller's `TranslationBundle`.
 */

import type { TranslationBundle } from '@jupyterlab/translation';

import { IJob, IModelSummary, ISweep } from './types';

/** Job states that will not change any more (mirrors `aiaas_jupyter.jobs.TERMINAL`). */
export const TERMINAL_STATES = ['finished', 'error', 'cancelled', 'lost'];

/** How a model is best referred to: its first alias (`name@prod`) or its latest version. */
export function preferredRef(model: IModelSummary): string {
  const aliases = Object.keys(model.aliases || {}).sort();
  if (aliases.includes('prod')) {
    return `${model.name}@prod`;
  }
  return aliases.length
    ? `${model.name}@${aliases[0]}`
    : `${model.name}:${model.latest}`;
}

export type SnippetKind = 'predict' | 'load';

/**
 * The ready-to-run cell text for a model. `predict` calls the deployment (or says how to
 * deploy first); `load` loads the registered artifact into the kernel.
 */
export function snippet(model: IModelSummary, kind: SnippetKind): string {
  const ref = preferredRef(model);
  if (kind === 'load') {
    return [
      'import aiaas_jupyter',
      `model = aiaas_jupyter.load_model("${ref}")`,
      'model'
    ].join('\n');
  }
  const lines = [];
  if (!model.deployed) {
    lines.push(`%aiaas deploy ${ref}`);
  }
  lines.push(`%aiaas predict ${model.name} --input X -o predictions`);
  return lines.join('\n');
}

/** The snippet a plain click or drag inserts: predict when deployed, else load. */
export function defaultSnippet(model: IModelSummary): string {
  return snippet(model, model.deployed ? 'predict' : 'load');
}

/** Short metric text: `accuracy 0.967`, `mse 1.2e-3`. */
export function formatMetric(
  metric: { name: string; value: number } | null
): string {
  if (!metric || typeof metric.value !== 'number' || !isFinite(metric.value)) {
    return '';
  }
  return `${metric.name} ${formatNumber(metric.value)}`;
}

export function formatNumber(value: number): string {
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e5)) {
    return value.toExponential(2);
  }
  return String(Number(value.toPrecision(3)));
}

/**
 * `3 s ago`, `5 min ago`, `2 h ago`, `4 d ago`; '' for a missing or unreadable time. Views call it
 * again on their own timer (see `dom.ts` `updateTimes`), so the text keeps ticking between data.
 */
export function relativeTime(
  iso: string | null | undefined,
  trans: TranslationBundle,
  now: number = Date.now()
): string {
  const t = parseTime(iso);
  if (t === null) {
    return '';
  }
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) {
    return trans.__('%1 s ago', s);
  }
  if (s < 3600) {
    return trans.__('%1 min ago', Math.floor(s / 60));
  }
  if (s < 86400) {
    return trans.__('%1 h ago', Math.floor(s / 3600));
  }
  return trans.__('%1 d ago', Math.floor(s / 86400));
}

/** Milliseconds since the epoch, or null for a missing or unreadable time. */
export function parseTime(iso: string | null | undefined): number | null {
  if (!iso) {
    return null;
  }
  const t = Date.parse(iso);
  return isNaN(t) ? null : t;
}

/**
 * `4.2 s`, `2 min 5 s`, `1 h 3 min`. Rounds to the unit shown FIRST and splits afterwards, so
 * 59.97 s is `1 min 0 s` (not `60.0 s`) and 119.6 s is `2 min 0 s` (not `1 min 60 s`).
 */
export function formatDuration(
  seconds: number | null | undefined,
  trans: TranslationBundle
): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '';
  }
  const tenths = Math.round(Math.max(0, seconds) * 10) / 10;
  if (tenths < 60) {
    return trans.__('%1 s', tenths.toFixed(1));
  }
  const whole = Math.round(seconds);
  if (whole < 3600) {
    return trans.__('%1 min %2 s', Math.floor(whole / 60), whole % 60);
  }
  const minutes = Math.round(seconds / 60);
  return trans.__('%1 h %2 min', Math.floor(minutes / 60), minutes % 60);
}

/**
 * Does `model` match the filter text? Every whitespace-separated term must occur in the
 * name, framework, an alias or `deployed` (case-insensitive).
 */
export function matchesFilter(model: IModelSummary, filter: string): boolean {
  const terms = filter.toLowerCase().split(/\s+/).filter(Boolean);
  if (!terms.length) {
    return true;
  }
  const hay = [
    model.name,
    model.framework,
    ...Object.keys(model.aliases || {})
  ];
  if (model.deployed) {
    hay.push('deployed');
  }
  const text = hay.join(' ').toLowerCase();
  return terms.every(term => text.includes(term));
}

/** Running/pending jobs (oldest first) and the most recent `recent` others (newest first). */
export function splitJobs(
  jobs: IJob[],
  recent = 10
): { active: IJob[]; done: IJob[] } {
  const active = jobs
    .filter(j => !TERMINAL_STATES.includes(j.status))
    .sort((a, b) => (a.submitted || '').localeCompare(b.submitted || ''));
  const done = jobs
    .filter(j => TERMINAL_STATES.includes(j.status))
    .sort((a, b) =>
      (b.finished || b.submitted || '').localeCompare(
        a.finished || a.submitted || ''
      )
    )
    .slice(0, recent);
  return { active, done };
}

/** Aliases as `@prod→v2 @staging→v3`. */
export function formatAliases(aliases: Record<string, number>): string {
  return Object.keys(aliases || {})
    .sort()
    .map(a => `@${a}→v${aliases[a]}`)
    .join(' ');
}

/** Trial states that will not change any more (mirrors `registry.sweeps_table.TRIAL_TERMINAL`). */
export const TRIAL_TERMINAL = [
  'finished',
  'pruned',
  'error',
  'cancelled',
  'lost'
];

/** Trials of a sweep that ended (any terminal state), and how many there are in all. */
export function sweepTrials(sweep: ISweep): { ended: number; total: number } {
  const counts = sweep.counts || {};
  const n = (status: string) => Math.max(0, Number(counts[status]) || 0);
  const ended = TRIAL_TERMINAL.reduce((sum, status) => sum + n(status), 0);
  const counted = Object.keys(counts).reduce(
    (sum, status) => sum + n(status),
    0
  );
  return { ended, total: Math.max(sweep.n_trials || 0, counted) };
}

/** The share of a sweep's trials that ended, 0..1: the server's `progress`, else from the counts. */
export function sweepProgress(sweep: ISweep): number {
  if (typeof sweep.progress === 'number' && isFinite(sweep.progress)) {
    return Math.max(0, Math.min(1, sweep.progress));
  }
  const { ended, total } = sweepTrials(sweep);
  return total > 0 ? Math.min(1, ended / total) : 0;
}

/**
 * `3 running · 12 done · 3 pruned · 1 failed`: the trial states with trials in them, in the
 * order a trial goes through them; a state the sidebar does not know is listed by its name.
 */
export function formatTrialCounts(
  counts: Record<string, number>,
  trans: TranslationBundle
): string {
  const label = (status: string, n: number): string => {
    switch (status) {
      case 'pending':
        return trans.__('%1 queued', n);
      case 'running':
        return trans.__('%1 running', n);
      case 'finished':
        return trans.__('%1 done', n);
      case 'pruned':
        return trans.__('%1 pruned', n);
      case 'error':
        return trans.__('%1 failed', n);
      case 'cancelled':
        return trans.__('%1 cancelled', n);
      case 'lost':
        return trans.__('%1 lost', n);
      default:
        return `${n} ${status}`;
    }
  };
  const known = ['pending', 'running', ...TRIAL_TERMINAL];
  const order = [
    ...known,
    ...Object.keys(counts || {})
      .filter(s => !known.includes(s))
      .sort()
  ];
  return order
    .filter(status => (Number(counts?.[status]) || 0) > 0)
    .map(status => label(status, Number(counts[status])))
    .join(' · ');
}

/** `accuracy=0.933 (#4)`: the best value and its trial; '' while no trial has a value. */
export function formatBest(sweep: ISweep): string {
  const value = sweep.best_value;
  if (typeof value !== 'number' || !isFinite(value)) {
    return '';
  }
  const metric = sweep.metric || 'score';
  const trial =
    typeof sweep.best_trial === 'number' ? ` (#${sweep.best_trial})` : '';
  return `${metric}=${formatNumber(value)}${trial}`;
}

/** The snippet that shows a sweep's leaderboard as a table in the notebook. */
export function sweepSnippet(id: string): string {
  return `%aiaas sweep show ${id}`;
}
