import { IModelSummary, ISweep } from '../src/types';

export function model(
  name: string,
  extra: Partial<IModelSummary> = {}
): IModelSummary {
  return {
    name,
    latest: 1,
    versions: [1],
    aliases: {},
    framework: 'sklearn',
    metric: { name: 'accuracy', value: 0.9667 },
    created: '2026-11-23T10:00:00+00:00',
    deployed: false,
    endpoint: null,
    deployed_version: null,
    ...extra
  };
}

/** `n` models named model-0000 … in name order, as the API answers them. */
export function manyModels(n: number): IModelSummary[] {
  return Array.from({ length: n }, (_, i) =>
    model(`model-${String(i).padStart(4, '0')}`, { latest: (i % 5) + 1 })
  );
}

/** A sweep as `GET /aiaas/api/sweeps` lists it. */
export function sweep(id: string, extra: Partial<ISweep> = {}): ISweep {
  return {
    id,
    model: `m-${id}`,
    status: 'running',
    progress: 0,
    counts: {},
    n_trials: 16,
    metric: 'accuracy',
    direction: 'max',
    best_value: null,
    best_trial: null,
    version: null,
    submitted: '2026-12-01T10:00:00+00:00',
    finished: null,
    ...extra
  };
}
