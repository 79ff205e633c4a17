/**
 * The sidebar's settings (`schema/plugin.json`, read through the settings registry): defaults,
 * minimums and the normalisation that keeps a hand-edited value from breaking polling (a typo
 * must not hammer the server, a string must not become an interval).
 */

import { IAiaasSettings } from './tokens';

/** The plugin whose settings (`schema/plugin.json`) hold the intervals, page size and menus. */
export const SETTINGS_ID = 'aiaas-jupyter:plugin';

export const DEFAULT_SETTINGS: IAiaasSettings = {
  visibleIntervalMs: 2000,
  hiddenIntervalMs: 10000,
  pollWhileHidden: false,
  pageSize: 100,
  recentJobs: 20
};

/** Lower bounds (also in `schema/plugin.json`): a typo must not hammer the server. */
export const SETTINGS_MINIMUM: IAiaasSettings = {
  visibleIntervalMs: 500,
  hiddenIntervalMs: 1000,
  pollWhileHidden: false,
  pageSize: 10,
  recentJobs: 1
};

/** Settings as read from the registry: unknown keys ignored, wrong types defaulted, minimums enforced. */
export function normalizeSettings(
  raw: Partial<Record<keyof IAiaasSettings, unknown>> = {}
): IAiaasSettings {
  const num = (
    key: Exclude<keyof IAiaasSettings, 'pollWhileHidden'>
  ): number => {
    const value = raw[key];
    const n =
      typeof value === 'number' && isFinite(value)
        ? Math.round(value)
        : DEFAULT_SETTINGS[key];
    return Math.max(SETTINGS_MINIMUM[key], n);
  };
  return {
    visibleIntervalMs: num('visibleIntervalMs'),
    hiddenIntervalMs: num('hiddenIntervalMs'),
    pollWhileHidden:
      typeof raw.pollWhileHidden === 'boolean'
        ? raw.pollWhileHidden
        : DEFAULT_SETTINGS.pollWhileHidden,
    pageSize: num('pageSize'),
    recentJobs: num('recentJobs')
  };
}
