/**
 * A tiny `IAiaasModel` for the views' tests: real lumino `Signal`s, data set by the test (the
 * real model's polling and ordering are tested in model.spec.ts). `modelDetail` answers from a
 * function the test can swap, and records every call.
 */

import { nullTranslator } from '@jupyterlab/translation';
import { CommandRegistry } from '@lumino/commands';
import { IDisposable } from '@lumino/disposable';
import { Signal } from '@lumino/signaling';

import { IAiaasModel, IAiaasSettings, SectionName } from '../src/tokens';
import {
  IClusterAnswer,
  IEndpointsAnswer,
  IJob,
  IModelDetail,
  IModelsAnswer,
  ISweep
} from '../src/types';

export const trans = nullTranslator.load('aiaas_jupyter');

export class FakeModel implements IAiaasModel {
  models: IModelsAnswer | null = null;
  endpoints: IEndpointsAnswer | null = null;
  jobs: IJob[] | null = null;
  sweeps: ISweep[] | null = null;
  cluster: IClusterAnswer | null = null;
  readonly modelsChanged: Signal<IAiaasModel, IModelsAnswer> = new Signal<
    IAiaasModel,
    IModelsAnswer
  >(this);
  readonly endpointsChanged: Signal<IAiaasModel, IEndpointsAnswer> = new Signal<
    IAiaasModel,
    IEndpointsAnswer
  >(this);
  readonly jobsChanged: Signal<IAiaasModel, IJob[]> = new Signal<
    IAiaasModel,
    IJob[]
  >(this);
  readonly sweepsChanged: Signal<IAiaasModel, ISweep[]> = new Signal<
    IAiaasModel,
    ISweep[]
  >(this);
  readonly clusterChanged: Signal<IAiaasModel, IClusterAnswer> = new Signal<
    IAiaasModel,
    IClusterAnswer
  >(this);
  readonly errorChanged: Signal<
    IAiaasModel,
    { section: SectionName; error: string | null }
  > = new Signal<IAiaasModel, { section: SectionName; error: string | null }>(
    this
  );
  readonly settingsChanged: Signal<IAiaasModel, IAiaasSettings> = new Signal<
    IAiaasModel,
    IAiaasSettings
  >(this);
  settings: IAiaasSettings = {
    visibleIntervalMs: 2000,
    hiddenIntervalMs: 10000,
    pollWhileHidden: false,
    pageSize: 100,
    recentJobs: 20
  };
  visible: boolean[] = [];
  detailCalls: string[] = [];
  detail: (name: string) => Promise<IModelDetail> = async name => ({
    name,
    deployed: false,
    endpoint: null,
    deployed_version: null,
    versions: []
  });
  isDisposed = false;
  private errors = new Map<SectionName, string | null>();

  setModels(data: IModelsAnswer): void {
    this.models = data;
    this.modelsChanged.emit(data);
  }
  setEndpoints(data: IEndpointsAnswer): void {
    this.endpoints = data;
    this.endpointsChanged.emit(data);
  }
  setJobs(data: IJob[]): void {
    this.jobs = data;
    this.jobsChanged.emit(data);
  }
  setSweeps(data: ISweep[]): void {
    this.sweeps = data;
    this.sweepsChanged.emit(data);
  }
  setCluster(data: IClusterAnswer): void {
    this.cluster = data;
    this.clusterChanged.emit(data);
  }
  /** like the real model: the signal fires only when the error line changes */
  setError(section: SectionName, error: string | null): void {
    if ((this.errors.get(section) ?? null) !== error) {
      this.errors.set(section, error);
      this.errorChanged.emit({ section, error });
    }
  }
  setSettings(change: Partial<IAiaasSettings>): void {
    this.settings = { ...this.settings, ...change };
    this.settingsChanged.emit(this.settings);
  }
  error(section: SectionName): string | null {
    return this.errors.get(section) ?? null;
  }
  async refresh(): Promise<void> {
    return;
  }
  modelDetail(name: string): Promise<IModelDetail> {
    this.detailCalls.push(name);
    return this.detail(name);
  }
  setVisible(visible: boolean): void {
    this.visible.push(visible);
  }
  addConsumer(): IDisposable {
    return { isDisposed: false, dispose: () => undefined };
  }
  dispose(): void {
    this.isDisposed = true;
  }
}

/** A real `CommandRegistry` with the views' commands, recording `id {args}` of each execution. */
export function recordingCommands(): {
  commands: CommandRegistry;
  calls: string[];
} {
  const commands = new CommandRegistry();
  const calls: string[] = [];
  for (const id of [
    'aiaas:deploy',
    'aiaas:undeploy',
    'aiaas:insert-snippet',
    'aiaas:copy-url',
    'aiaas:load-model',
    'aiaas:show-sweep',
    'aiaas:refresh'
  ]) {
    commands.addCommand(id, {
      execute: args => void calls.push(`${id} ${JSON.stringify(args)}`)
    });
  }
  return { commands, calls };
}

export function setup(): {
  model: FakeModel;
  commands: CommandRegistry;
  calls: string[];
  options: { model: FakeModel; commands: CommandRegistry; trans: typeof trans };
} {
  const model = new FakeModel();
  const { commands, calls } = recordingCommands();
  return { model, commands, calls, options: { model, commands, trans } };
}

/** Let pending promises (command executions, detail requests) settle. */
export const flush = () => new Promise(resolve => setTimeout(resolve, 0));
