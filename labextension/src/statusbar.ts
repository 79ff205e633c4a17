/**
 * A status-bar item "AIaaS: N running": training jobs stay visible while the sidebar is
 * closed. It is the example of a second consumer of `IAiaasModel`: it reads `model.jobs`,
 * listens to `jobsChanged`, and while it is shown it holds `model.addConsumer()` so the model
 * keeps polling (at the hidden interval) and the count goes back to 0 when the jobs end.
 * Hidden when nothing runs; a click (or Enter) opens the panel.
 */

import type { TranslationBundle } from '@jupyterlab/translation';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { IAiaasModel } from './tokens';
import { IJob } from './types';

/** Job states counted as running (the server's `pending` and `running`). */
export const ACTIVE_STATES = ['pending', 'running'];

export function runningCount(jobs: IJob[] | null): number {
  return (jobs ?? []).filter(j => ACTIVE_STATES.includes(j.status)).length;
}

export class RunningJobsItem extends Widget {
  private _count = -1;
  private consumer: IDisposable | null = null;
  private readonly _activeChanged = new Signal<this, void>(this);

  constructor(
    private readonly model: IAiaasModel,
    private readonly trans: TranslationBundle,
    private readonly onOpen: () => void
  ) {
    super();
    this.addClass('aiaas-statusbar-item');
    this.addClass('jp-StatusBar-TextItem');
    this.node.setAttribute('role', 'button');
    this.node.tabIndex = 0;
    this.node.title = trans.__('Open the AIaaS sidebar');
    this.node.addEventListener('click', () => this.onOpen());
    this.node.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        this.onOpen();
      }
    });
    model.jobsChanged.connect(this.onJobs, this);
    this.onJobs();
  }

  /** Running or pending jobs in the model's last answer. */
  get count(): number {
    return this._count;
  }

  /** For `IStatusBar`: shown only while something runs. */
  get isActive(): boolean {
    return this._count > 0;
  }

  get activeChanged(): ISignal<this, void> {
    return this._activeChanged;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.consumer?.dispose();
    this.consumer = null;
    Signal.clearData(this);
    super.dispose();
  }

  private onJobs(): void {
    const n = runningCount(this.model.jobs);
    if (n === this._count) {
      return;
    }
    const wasActive = this.isActive;
    this._count = n;
    this.node.textContent = this.trans._n(
      'AIaaS: %1 running',
      'AIaaS: %1 running',
      n
    );
    this.node.setAttribute(
      'aria-label',
      this.trans._n('%1 AIaaS job running', '%1 AIaaS jobs running', n)
    );
    this.setHidden(n === 0);
    if (n > 0 && !this.consumer) {
      this.consumer = this.model.addConsumer();
    } else if (n === 0 && this.consumer) {
      this.consumer.dispose();
      this.consumer = null;
    }
    if (wasActive !== this.isActive) {
      this._activeChanged.emit();
    }
  }
}
