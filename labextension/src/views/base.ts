/**
 * What every section view shares: it renders from the `IAiaasModel` (never holds data the model
 * owns), re-renders when the model's signal for its section fires, shows the section's error in
 * ONE `role="alert"` node whose text changes only when the error changes (so a screen reader
 * announces it once, not on every poll), and ticks its relative times on a timer of its own.
 */

import type { TranslationBundle } from '@jupyterlab/translation';
import type { CommandRegistry } from '@lumino/commands';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import type { IDisposable } from '@lumino/disposable';
import type { ISignal } from '@lumino/signaling';

import { h, setText, updateTimes } from '../dom';
import { IAiaasModel, SectionName } from '../tokens';

/** What the panel hands every view. */
export interface IViewOptions {
  model: IAiaasModel;
  commands: CommandRegistry;
  trans: TranslationBundle;
}

/** The commands the views run (registered by `commands.ts`; the views only execute them). */
export const CommandIDs = {
  deploy: 'aiaas:deploy',
  undeploy: 'aiaas:undeploy',
  insertSnippet: 'aiaas:insert-snippet',
  copyUrl: 'aiaas:copy-url',
  loadModel: 'aiaas:load-model',
  showSweep: 'aiaas:show-sweep',
  refresh: 'aiaas:refresh'
} as const;

/** How often relative times ("5 s ago", a running job's duration) are re-rendered. */
export const TICK_MS = 10000;

export abstract class SectionView implements IDisposable {
  readonly node: HTMLElement;
  /** the section's only error line: always in the DOM, empty (and hidden by CSS) without error */
  readonly alertNode: HTMLElement;
  protected readonly model: IAiaasModel;
  protected readonly commands: CommandRegistry;
  protected readonly trans: TranslationBundle;
  /** the model's signal for this section */
  private readonly changed: ISignal<IAiaasModel, unknown>;
  private timer: ReturnType<typeof setInterval> | null = null;
  private disposed = false;

  constructor(
    cls: string,
    readonly section: SectionName,
    options: IViewOptions
  ) {
    this.model = options.model;
    this.commands = options.commands;
    this.trans = options.trans;
    const m = this.model;
    this.changed = {
      models: m.modelsChanged,
      endpoints: m.endpointsChanged,
      jobs: m.jobsChanged,
      sweeps: m.sweepsChanged,
      cluster: m.clusterChanged
    }[section] as ISignal<IAiaasModel, unknown>;
    this.node = h('div', { class: `aiaas-view ${cls}` });
    this.alertNode = h('div', {
      class: 'aiaas-error aiaas-section-error',
      role: 'alert'
    });
    this.node.appendChild(this.alertNode);
    this.model.errorChanged.connect(this.onErrorChanged, this);
    this.changed.connect(this.onDataChanged, this);
    this.model.settingsChanged.connect(this.onDataChanged, this);
    // ticks only the time texts; skipped while the browser tab is hidden (the panel ticks on show)
    this.timer = setInterval(() => {
      if (!document.hidden) {
        this.tick();
      }
    }, TICK_MS);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    if (this.disposed) {
      return;
    }
    this.disposed = true;
    if (this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
    this.model.errorChanged.disconnect(this.onErrorChanged, this);
    this.changed.disconnect(this.onDataChanged, this);
    this.model.settingsChanged.disconnect(this.onDataChanged, this);
  }

  /** The section's current error line, as the model has it. */
  get error(): string | null {
    return this.model.error(this.section);
  }

  /** Re-render the relative times only (no row is rebuilt). */
  tick(now: number = Date.now()): void {
    updateTimes(this.node, this.trans, now);
  }

  /** Render everything from the model (called on every change signal). */
  render(): void {
    setText(this.alertNode, this.error ?? '');
    this.renderData();
  }

  protected abstract renderData(): void;

  /** Run a command; a failure is the command's to report (it shows a notification). */
  protected execute(id: string, args: ReadonlyPartialJSONObject): void {
    this.commands
      .execute(id, args)
      .catch(reason => console.error(`${id} failed`, reason));
  }

  private onErrorChanged(
    _: IAiaasModel,
    change: { section: SectionName; error: string | null }
  ): void {
    if (change.section === this.section) {
      setText(this.alertNode, change.error ?? '');
      this.renderData(); // "Loading…" gives way to the error before the first data
    }
  }

  private onDataChanged(): void {
    this.render();
  }
}
