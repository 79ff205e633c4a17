/**
 * Pure helpers shared by the views: snippets, number/time formatting, filtering and the
 * split of jobs into running and recent. No DOM, no JupyterLab: unit-tested directly.
 */

import { IJob, IModelSummary } from './types';

/** Job states that will not change any more (mirrors `aiaas_jupyter.jobs.TERMINAL`). */
export const TERMINAL_STATES = ['finished', 'error', 'cancelled', 'lost'];

/** How a model is best referred to: its first alias (`name@prod`) or its latest version. */
export function preferredRef(model: IModelSummary): string {
  const aliases = Object.keys(model.aliases || {}).sort();
  if (aliases.includes('prod')) {
    return `${model.name}@prod`;
  }
  return aliases.length ? `${model.name}@${aliases[0]}` : `${model.name}:${model.latest}`;
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
export function formatMetric(metric: { name: string; value: number } | null): string {
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

/** `3 s ago`, `5 min ago`, `2 h ago`, `4 d ago`; '' for a missing or unreadable time. */
export function relativeTime(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) {
    return '';
  }
  const t = Date.parse(iso);
  if (isNaN(t)) {
    return '';
  }
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) {
    return `${s} s ago`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ago`;
  }
  if (s < 86400) {
    return `${Math.floor(s / 3600)} h ago`;
  }
  return `${Math.floor(s / 86400)} d ago`;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '';
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - m * 60)} s`;
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
  const hay = [model.name, model.framework, ...Object.keys(model.aliases || {})];
  if (model.deployed) {
    hay.push('deployed');
  }
  const text = hay.join(' ').toLowerCase();
  return terms.every(term => text.includes(term));
}

/** Running/pending jobs (oldest first) and the most recent `recent` others (newest first). */
export function splitJobs(jobs: IJob[], recent = 10): { active: IJob[]; done: IJob[] } {
  const active = jobs
    .filter(j => !TERMINAL_STATES.includes(j.status))
    .sort((a, b) => (a.submitted || '').localeCompare(b.submitted || ''));
  const done = jobs
    .filter(j => TERMINAL_STATES.includes(j.status))
    .sort((a, b) => (b.finished || b.submitted || '').localeCompare(a.finished || a.submitted || ''))
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
