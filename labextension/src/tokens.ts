/**
 * The shared interface of the sidebar's data: the model part implements it (`model.ts`), the
 * views and other plugins (the status bar) only read it and listen to its signals. Provided as
 * a token so any JupyterLab plugin can use the same data without polling again.
 */

import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';
import { IDisposable } from '@lumino/disposable';

import {
  IClusterAnswer,
  IEndpointsAnswer,
  IJob,
  IModelDetail,
  IModelsAnswer,
  ISweep
} from './types';

export type SectionName =
  'models' | 'endpoints' | 'jobs' | 'sweeps' | 'cluster';
export interface IAiaasModel extends IDisposable {
  readonly models: IModelsAnswer | null; // last good data of each section (null: never read)
  readonly endpoints: IEndpointsAnswer | null;
  readonly jobs: IJob[] | null;
  readonly sweeps: ISweep[] | null; // newest first
  readonly cluster: IClusterAnswer | null;
  readonly modelsChanged: ISignal<IAiaasModel, IModelsAnswer>;
  readonly endpointsChanged: ISignal<IAiaasModel, IEndpointsAnswer>;
  readonly jobsChanged: ISignal<IAiaasModel, IJob[]>;
  readonly sweepsChanged: ISignal<IAiaasModel, ISweep[]>;
  readonly clusterChanged: ISignal<IAiaasModel, IClusterAnswer>;
  /** the section's current error line (null: none); errorChanged fires only when it changes */
  error(section: SectionName): string | null;
  readonly errorChanged: ISignal<
    IAiaasModel,
    { section: SectionName; error: string | null }
  >;
  /** read these sections (default all) now; resolves after the data (or errors) are in the model and signals fired */
  refresh(sections?: SectionName[]): Promise<void>;
  /** a model's versions, fresh from the server (never a cache keyed only by latest version) */
  modelDetail(name: string): Promise<IModelDetail>;
  /** the panel tells the model when it is shown/hidden (polling policy) */
  setVisible(visible: boolean): void;
  /** something visible outside the panel (the status bar) uses the data: keep polling while hidden; dispose to release */
  addConsumer(): IDisposable;
  readonly settings: IAiaasSettings;
  readonly settingsChanged: ISignal<IAiaasModel, IAiaasSettings>;
}
export interface IAiaasSettings {
  visibleIntervalMs: number; // default 2000
  hiddenIntervalMs: number; // default 10000 (only used while hidden with a consumer or pollWhileHidden)
  pollWhileHidden: boolean; // default false
  pageSize: number; // default 100 (models shown per page)
  recentJobs: number; // default 20 (jobs listed)
}
export const IAiaasModel = new Token<IAiaasModel>(
  'aiaas-jupyter:IAiaasModel',
  'The AIaaS sidebar data: models, endpoints, jobs, sweeps and cluster, with change signals.'
);
