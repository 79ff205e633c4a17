import { IModelSummary } from '../src/types';

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
