/**
 * The JSON the server extension answers under `{base_url}/aiaas/api/` (see
 * `aiaas_jupyter/server/manager.py`). Kept free of JupyterLab imports so views and tests
 * can use it in plain jsdom.
 */

export interface IMetric {
  name: string;
  value: number;
}

export interface IModelSummary {
  name: string;
  latest: number;
  versions: number[];
  aliases: Record<string, number>;
  framework: string;
  metric: IMetric | null;
  created: string;
  deployed: boolean;
  endpoint: string | null;
  deployed_version: number | null;
}

export interface IRegistryInfo {
  home: string;
  exists: boolean;
}

export interface IModelsAnswer {
  models: IModelSummary[];
  registry?: IRegistryInfo;
}

export interface IModelVersion {
  version: number;
  ref: string;
  framework: string;
  metrics: Record<string, number>;
  params: Record<string, unknown>;
  aliases: string[];
  created: string;
  job_id: string | null;
}

export interface IModelDetail {
  name: string;
  deployed: boolean;
  endpoint: string | null;
  deployed_version: number | null;
  versions: IModelVersion[];
}

export interface IDeployment {
  name: string;
  version: number | null;
  ref: string | null;
  framework: string | null;
  url: string | null;
  loaded_at: string | null;
  health: string;
}

export interface IRemoteEndpoint {
  name: string;
  protocol: string;
  url: string;
  model: string | null;
  api_key_env: string | null;
  api_key_set: boolean;
  health: string;
}

export interface IEndpointsAnswer {
  server: { running: boolean; url: string | null };
  deployments: IDeployment[];
  endpoints: IRemoteEndpoint[];
}

export interface IJob {
  id: string;
  model: string;
  status: string;
  progress: number | null;
  worker: string | null;
  gpus: number | null;
  submitted: string | null;
  started: string | null;
  finished: string | null;
  duration_s: number | null;
  version: number | null;
  error: string | null;
}

export interface IWorker {
  address: string;
  name: string;
  threads: number;
  memory_gb: number;
  gpus: number;
}

export interface IClusterAnswer {
  scheduler: string | null;
  reachable?: boolean;
  dashboard?: string | null;
  workers?: IWorker[];
  n_workers?: number;
  threads?: number;
  memory_gb?: number;
  gpus?: number;
  /** when the kernel wrote this snapshot (the server never asks the cluster itself) */
  recorded_at?: string | null;
  age_s?: number | null;
  /** old, or its kernel is gone: the cluster may have changed since */
  stale?: boolean;
}

/**
 * One hyper-parameter sweep as `GET /aiaas/api/sweeps` lists it (newest first). `progress` is
 * the share of its `n_trials` that ended (any terminal trial status), `counts` the number of
 * trials in each trial status (pending, running, finished, pruned, error, cancelled, lost).
 */
export interface ISweep {
  id: string;
  model: string;
  status: string;
  progress: number | null;
  counts: Record<string, number>;
  n_trials: number;
  metric: string;
  direction: 'max' | 'min' | string;
  best_value: number | null;
  best_trial: number | null;
  version: number | null;
  submitted: string | null;
  finished: string | null;
  /** the sweep's one-line error, when the server includes it */
  error?: string | null;
}
