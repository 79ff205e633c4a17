/**
 * The Cluster section: the cluster a notebook's kernel last connected to, its workers, threads,
 * memory and GPUs, as that kernel recorded them (the server reads the kernel's snapshot and never
 * connects to Dask itself), with how old the snapshot is (ticking). The summary lines are patched
 * in place and the workers are rows keyed by address, so a selected address survives the poll.
 */

import { h, KeyedList, morph, timeSpan } from '../dom';
import { IClusterAnswer, IWorker } from '../types';
import { IViewOptions, SectionView } from './base';

export class ClusterView extends SectionView {
  private readonly summaryNode: HTMLElement;
  private readonly workers: KeyedList<IWorker>;
  private readonly workersNode: HTMLUListElement;

  constructor(options: IViewOptions) {
    super('aiaas-cluster-view', 'cluster', options);
    this.summaryNode = h('div', { class: 'aiaas-cluster-summary' });
    this.workersNode = h('ul', {
      class: 'aiaas-list aiaas-workers',
      'aria-label': this.trans.__('Workers')
    });
    this.workers = new KeyedList<IWorker>(this.workersNode, {
      key: w => w.address,
      sig: w => JSON.stringify(w),
      render: state => this.workerRow(state.item)
    });
    this.node.append(this.summaryNode, this.workersNode);
    this.render();
  }

  protected renderData(): void {
    const a: IClusterAnswer | null = this.model.cluster;
    // a fresh container each time, patched into the kept one: only changed lines are touched
    morph(
      this.summaryNode,
      h('div', { class: 'aiaas-cluster-summary' }, ...this.summaryLines(a))
    );
    const showWorkers = !!a && !!a.scheduler && a.reachable !== false;
    this.workersNode.hidden = !showWorkers;
    this.workers.sync(showWorkers ? a.workers || [] : []);
  }

  private summaryLines(a: IClusterAnswer | null): HTMLElement[] {
    const trans = this.trans;
    if (a === null) {
      return this.error
        ? []
        : [
            h('div', {
              class: 'aiaas-loading',
              text: trans.__('Loading cluster…')
            })
          ];
    }
    if (!a.scheduler) {
      return [
        h('div', {
          class: 'aiaas-placeholder aiaas-cluster',
          text: trans.__(
            'No cluster seen yet: %aiaas connect in a notebook starts one (shown once connected).'
          )
        })
      ];
    }
    const address = h('div', {
      class: 'aiaas-cluster-address',
      text: a.scheduler
    });
    if (a.reachable === false) {
      return [
        h(
          'div',
          { class: 'aiaas-cluster aiaas-cluster-down' },
          address,
          h(
            'div',
            { class: 'aiaas-placeholder' },
            trans.__('not reachable (its kernel disconnected or stopped)'),
            a.recorded_at ? ' ' : null,
            a.recorded_at
              ? timeSpan('aiaas-cluster-recorded', a.recorded_at, 'ago', trans)
              : null
          )
        )
      ];
    }
    const workers = a.workers || [];
    return [
      h(
        'div',
        { class: 'aiaas-cluster' },
        address,
        a.recorded_at
          ? h(
              'div',
              {
                class: a.stale
                  ? 'aiaas-cluster-age aiaas-cluster-stale'
                  : 'aiaas-cluster-age'
              },
              trans.__('as recorded by its kernel'),
              ' ',
              timeSpan('aiaas-cluster-recorded', a.recorded_at, 'ago', trans),
              a.stale ? trans.__(' (may be out of date)') : null
            )
          : null,
        h('div', {
          class: 'aiaas-cluster-totals',
          text: [
            trans._n('%1 worker', '%1 workers', a.n_workers ?? workers.length),
            trans._n('%1 thread', '%1 threads', a.threads ?? 0),
            trans.__('%1 GiB', a.memory_gb ?? 0),
            trans._n('%1 GPU', '%1 GPUs', a.gpus ?? 0)
          ].join(' · ')
        }),
        a.dashboard
          ? h('a', {
              class: 'aiaas-cluster-dashboard',
              href: a.dashboard,
              target: '_blank',
              rel: 'noopener',
              text: trans.__('Dask dashboard')
            })
          : null
      )
    ];
  }

  private workerRow(w: IWorker): HTMLElement {
    const trans = this.trans;
    const parts = [
      w.name || w.address,
      trans.__('%1 thr', w.threads),
      trans.__('%1 GiB', w.memory_gb)
    ];
    if (w.gpus) {
      parts.push(trans._n('%1 GPU', '%1 GPUs', w.gpus));
    }
    return h('li', {
      class: 'aiaas-worker',
      'data-address': w.address,
      title: w.address,
      text: parts.join(' · ')
    });
  }
}
