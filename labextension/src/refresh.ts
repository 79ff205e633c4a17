/**
 * When the panel asks the server again. Visible: every 2 s (a model trained in a notebook
 * shows up within one interval), failures back off up to 30 s. Hidden: a light refresh every
 * 10 s, doubling to 2 min, so opening the panel shows recent data while a hidden panel costs
 * almost nothing; showing it refreshes at once. A hidden browser tab stops polling.
 * Endpoints (health checks) and the cluster (a Dask round trip) are asked every
 * `FULL_EVERY`-th tick only, and whenever a refresh is forced.
 */

import { Poll } from '@lumino/polling';

export const VISIBLE_FREQUENCY = { interval: 2000, backoff: true, max: 30000 };
export const HIDDEN_START_MS = 10000;
export const HIDDEN_MAX_MS = 120000;
export const FULL_EVERY = 5;

/** `full`: also endpoints and cluster. Rejects when nothing could be read (backs off). */
export type RefreshFn = (full: boolean) => Promise<void>;

export class Refresher {
  readonly poll: Poll;
  private ticks = 0;
  private forceFull = true;
  private visible = false;

  constructor(private readonly refresh: RefreshFn) {
    this.poll = new Poll({
      factory: () => this.tick(),
      frequency: { interval: HIDDEN_START_MS, backoff: true, max: HIDDEN_MAX_MS },
      standby: 'when-hidden',
      name: 'aiaas:refresh'
    });
  }

  get isVisible(): boolean {
    return this.visible;
  }

  /** The panel became visible: poll fast and refresh everything now. */
  shown(): void {
    this.visible = true;
    this.poll.frequency = VISIBLE_FREQUENCY;
    this.refreshNow();
  }

  /** The panel was hidden: poll slowly, growing towards `HIDDEN_MAX_MS`. */
  hidden(): void {
    this.visible = false;
    this.poll.frequency = { interval: HIDDEN_START_MS, backoff: true, max: HIDDEN_MAX_MS };
  }

  /** Refresh everything now (the refresh command, after deploy/undeploy). */
  refreshNow(): Promise<void> {
    this.forceFull = true;
    return this.poll.refresh();
  }

  dispose(): void {
    this.poll.dispose();
  }

  private async tick(): Promise<void> {
    const full = this.forceFull || (this.visible && this.ticks % FULL_EVERY === 0);
    this.ticks += 1;
    this.forceFull = false;
    if (!this.visible) {
      const f = this.poll.frequency;
      this.poll.frequency = { ...f, interval: Math.min(f.interval * 2, HIDDEN_MAX_MS) };
    }
    await this.refresh(full);
  }
}
