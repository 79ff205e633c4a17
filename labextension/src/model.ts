/**
 * `AiaasModel`: the one owner of the sidebar's data. It reads the server extension's API,
 * keeps the last good answer of each section, and tells views (and any other plugin, through
 * the `IAiaasModel` token) what changed with signals, so nothing else polls or caches.
 *
 * Why it is shaped this way:
 * - Ordered responses: every section has a request counter; an answer older than the last
 *   one applied is dropped, so a slow stale answer never overwrites a newer one.
 * - `refresh()` performs the requests itself and resolves once their answers (or errors) are
 *   in the model and the signals have fired — callers (deploy, undeploy, tests) can rely on it.
 * - Signals fire only when a section's JSON changed; error lines only when the line changed,
 *   so screen readers hear an error once, not every poll.
 * - Polling (a lumino `Poll`, standby when the browser tab is hidden) starts only when the
 *   panel is first shown or a visible consumer (the status bar) holds `addConsumer()`; while
 *   the panel is hidden it stops unless such a consumer holds it or `pollWhileHidden` is set.
 * - Sweeps are read on every tick while one of them is live (pending or running: its progress
 *   and best score move), otherwise with endpoints and cluster every `FULL_EVERY`-th tick — a
 *   finished sweep list does not change, and a new sweep shows up within a few ticks.
 */

import { IDisposable, DisposableDelegate } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { errorText } from './api';
import { TERMINAL_STATES } from './format';
import { normalizeSettings } from './settings';
import { IAiaasModel, IAiaasSettings, SectionName } from './tokens';
import {
  IClusterAnswer,
  IEndpointsAnswer,
  IJob,
  IModelDetail,
  IModelsAnswer,
  ISweep
} from './types';

/** What the model needs from the API (`AiaasApi` satisfies it; tests pass a fake). */
export interface IModelSource {
  models(): Promise<IModelsAnswer>;
  model(name: string): Promise<IModelDetail>;
  jobs(): Promise<IJob[]>;
  sweeps(): Promise<ISweep[]>;
  endpoints(): Promise<IEndpointsAnswer>;
  cluster(): Promise<IClusterAnswer>;
}

/** Endpoints (health checks) and the cluster are read every `FULL_EVERY`-th tick (and on demand). */
export const FULL_EVERY = 5;
/** Failures back off up to this while the panel is visible. */
export const VISIBLE_MAX_MS = 30000;
/** ... and up to this (or the hidden interval, if longer) while it is hidden. */
export const HIDDEN_MAX_MS = 120000;

export const ALL_SECTIONS: SectionName[] = [
  'models',
  'endpoints',
  'jobs',
  'sweeps',
  'cluster'
];
const LIGHT_SECTIONS: SectionName[] = ['models', 'jobs'];

/** `{models: value, endpoints: value, jobs: value, sweeps: value, cluster: value}` */
function perSection<T>(value: T): Record<SectionName, T> {
  return {
    models: value,
    endpoints: value,
    jobs: value,
    sweeps: value,
    cluster: value
  };
}

type SectionData = {
  models: IModelsAnswer;
  endpoints: IEndpointsAnswer;
  jobs: IJob[];
  sweeps: ISweep[];
  cluster: IClusterAnswer;
};

export class AiaasModel implements IAiaasModel {
  /** The poll behind the automatic refreshes (exposed for tests and diagnostics). */
  readonly poll: Poll;
  private readonly data = perSection<unknown>(null);
  /** the JSON of each section's data, to signal only changes */
  private readonly json = perSection<string | null>(null);
  private readonly errors = perSection<string | null>(null);
  /** per section: the number of the last request sent, and of the last answer applied */
  private readonly sent = perSection(0);
  private readonly applied = perSection(0);
  private readonly signals: {
    [K in SectionName]: Signal<this, SectionData[K]>;
  } = {
    models: new Signal<this, IModelsAnswer>(this),
    endpoints: new Signal<this, IEndpointsAnswer>(this),
    jobs: new Signal<this, IJob[]>(this),
    sweeps: new Signal<this, ISweep[]>(this),
    cluster: new Signal<this, IClusterAnswer>(this)
  };
  private readonly _errorChanged = new Signal<
    this,
    { section: SectionName; error: string | null }
  >(this);
  private readonly _settingsChanged = new Signal<this, IAiaasSettings>(this);
  private _settings: IAiaasSettings;
  private _visible = false;
  private _shownOnce = false;
  private _consumers = 0;
  private _ticks = 0;
  private _forceFull = true;
  private _disposed = false;

  constructor(
    private readonly source: IModelSource,
    settings: Partial<IAiaasSettings> = {}
  ) {
    this._settings = normalizeSettings(settings);
    this.poll = new Poll({
      auto: false, // nothing is read until the panel is first shown
      factory: () => this.tick(),
      frequency: this.frequency(),
      standby: 'when-hidden',
      name: 'aiaas:model'
    });
  }

  get models(): IModelsAnswer | null {
    return this.data.models as IModelsAnswer | null;
  }
  get endpoints(): IEndpointsAnswer | null {
    return this.data.endpoints as IEndpointsAnswer | null;
  }
  get jobs(): IJob[] | null {
    return this.data.jobs as IJob[] | null;
  }
  get sweeps(): ISweep[] | null {
    return this.data.sweeps as ISweep[] | null;
  }
  get cluster(): IClusterAnswer | null {
    return this.data.cluster as IClusterAnswer | null;
  }
  get modelsChanged(): ISignal<this, IModelsAnswer> {
    return this.signals.models;
  }
  get endpointsChanged(): ISignal<this, IEndpointsAnswer> {
    return this.signals.endpoints;
  }
  get jobsChanged(): ISignal<this, IJob[]> {
    return this.signals.jobs;
  }
  get sweepsChanged(): ISignal<this, ISweep[]> {
    return this.signals.sweeps;
  }
  get clusterChanged(): ISignal<this, IClusterAnswer> {
    return this.signals.cluster;
  }
  get errorChanged(): ISignal<
    this,
    { section: SectionName; error: string | null }
  > {
    return this._errorChanged;
  }
  get settings(): IAiaasSettings {
    return this._settings;
  }
  get settingsChanged(): ISignal<this, IAiaasSettings> {
    return this._settingsChanged;
  }
  get isDisposed(): boolean {
    return this._disposed;
  }
  /** Is the panel visible (as last told by `setVisible`)? */
  get isVisible(): boolean {
    return this._visible;
  }
  /**
   * Should the poll run now? While the panel is visible, or while a visible consumer (the
   * status bar showing running jobs) uses the data — even if the panel was never opened —
   * or, once the panel has been shown, when `pollWhileHidden` says so.
   */
  get isPolling(): boolean {
    return (
      this._visible ||
      this._consumers > 0 ||
      (this._shownOnce && this._settings.pollWhileHidden)
    );
  }

  /** Is a sweep of the last answer still pending or running (its row still moves)? */
  get hasLiveSweep(): boolean {
    return (this.sweeps ?? []).some(s => !TERMINAL_STATES.includes(s.status));
  }

  error(section: SectionName): string | null {
    return this.errors[section];
  }

  async refresh(sections: SectionName[] = ALL_SECTIONS): Promise<void> {
    await this.read(sections);
  }

  modelDetail(name: string): Promise<IModelDetail> {
    return this.source.model(name);
  }

  setVisible(visible: boolean): void {
    if (this._disposed) {
      return;
    }
    const wasVisible = this._visible;
    this._visible = visible;
    if (visible) {
      this._shownOnce = true;
    }
    this.applyPolicy(visible && !wasVisible);
  }

  addConsumer(): IDisposable {
    this._consumers += 1;
    this.applyPolicy(false);
    return new DisposableDelegate(() => {
      this._consumers -= 1;
      this.applyPolicy(false);
    });
  }

  /** Apply new settings (from the settings registry); emits `settingsChanged` if anything changed. */
  updateSettings(raw: Partial<Record<keyof IAiaasSettings, unknown>>): void {
    const next = normalizeSettings({ ...this._settings, ...raw });
    if (JSON.stringify(next) === JSON.stringify(this._settings)) {
      return;
    }
    this._settings = next;
    this.applyPolicy(false);
    this._settingsChanged.emit(next);
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.poll.dispose();
    Signal.clearData(this);
  }

  /** The poll's frequency for the current visibility and settings. */
  private frequency(): { interval: number; backoff: boolean; max: number } {
    if (this._visible) {
      const interval = this._settings.visibleIntervalMs;
      return {
        interval,
        backoff: true,
        max: Math.max(interval, VISIBLE_MAX_MS)
      };
    }
    const interval = this._settings.hiddenIntervalMs;
    return { interval, backoff: true, max: Math.max(interval, HIDDEN_MAX_MS) };
  }

  /** Start, stop or re-time the poll; `refreshNow`: the panel was just shown, read everything now. */
  private applyPolicy(refreshNow: boolean): void {
    if (this._disposed) {
      return;
    }
    this.poll.frequency = this.frequency();
    const phase = this.poll.state.phase;
    const idle = phase === 'constructed' || phase === 'stopped';
    if (!this.isPolling) {
      if (!idle) {
        void this.poll.stop();
      }
      return;
    }
    if (idle) {
      this._forceFull = true;
      void this.poll.start();
    } else if (refreshNow) {
      this._forceFull = true;
      void this.poll.refresh();
    }
  }

  /**
   * One poll tick: models and jobs always, sweeps too while one is live, everything else
   * every FULL_EVERY-th tick.
   */
  private async tick(): Promise<void> {
    const full = this._forceFull || this._ticks % FULL_EVERY === 0;
    this._ticks += 1;
    this._forceFull = false;
    const light: SectionName[] = this.hasLiveSweep
      ? [...LIGHT_SECTIONS, 'sweeps']
      : LIGHT_SECTIONS;
    const ok = await this.read(full ? ALL_SECTIONS : light);
    if (!ok) {
      throw new Error('no section of the AIaaS API could be read'); // the poll backs off
    }
  }

  /** Read `sections` in parallel and apply what is not stale; true if any request succeeded. */
  private async read(sections: SectionName[]): Promise<boolean> {
    const results = await Promise.all(
      sections.map(section => this.readSection(section))
    );
    return results.some(Boolean);
  }

  private async readSection(section: SectionName): Promise<boolean> {
    const seq = ++this.sent[section];
    let data: unknown;
    try {
      data = await this.request(section);
    } catch (error) {
      if (!this._disposed && seq > this.applied[section]) {
        this.applied[section] = seq;
        this.setError(section, errorText(error));
      }
      return false;
    }
    if (this._disposed || seq <= this.applied[section]) {
      return true; // a newer answer is already in the model
    }
    this.applied[section] = seq;
    this.setError(section, null);
    const json = JSON.stringify(data);
    if (json !== this.json[section]) {
      this.json[section] = json;
      this.data[section] = data;
      (this.signals[section] as Signal<this, unknown>).emit(data);
    }
    return true;
  }

  private request(section: SectionName): Promise<unknown> {
    switch (section) {
      case 'models':
        return this.source.models();
      case 'endpoints':
        return this.source.endpoints();
      case 'jobs':
        return this.source.jobs();
      case 'sweeps':
        return this.source.sweeps();
      case 'cluster':
        return this.source.cluster();
    }
  }

  private setError(section: SectionName, error: string | null): void {
    if (this.errors[section] === error) {
      return;
    }
    this.errors[section] = error;
    this._errorChanged.emit({ section, error });
  }
}
