/** The Cluster section: the cluster a notebook's kernel last connected to, its workers,
 * threads, memory and GPUs, as that kernel recorded them (the server reads the kernel's
 * snapshot and never connects to Dask itself), with how old the snapshot is. */

import { errorLine, h } from '../dom';
import { relativeTime } from '../format';
import { IClusterAnswer } from '../types';
import { SectionView } from './base';

export class ClusterView extends SectionView<IClusterAnswer> {
  constructor() {
    super('aiaas-cluster-view');
    this.render();
  }

  render(): void {
    const children: (HTMLElement | null)[] = [errorLine(this.error)];
    const a = this.data;
    if (a === null) {
      children.push(this.error ? null : h('div', { class: 'aiaas-loading', text: 'Loading cluster…' }));
    } else if (!a.scheduler) {
      children.push(
        h('div', {
          class: 'aiaas-placeholder aiaas-cluster',
          text: 'No cluster seen yet: %aiaas connect in a notebook starts one (shown once connected).'
        })
      );
    } else if (a.reachable === false) {
      children.push(
        h(
          'div',
          { class: 'aiaas-cluster aiaas-cluster-down' },
          h('div', { class: 'aiaas-cluster-address', text: a.scheduler }),
          h('div', {
            class: 'aiaas-placeholder',
            text: `not reachable (its kernel disconnected or stopped)${age(a.recorded_at)}`
          })
        )
      );
    } else {
      const workers = a.workers || [];
      children.push(
        h(
          'div',
          { class: 'aiaas-cluster' },
          h('div', { class: 'aiaas-cluster-address', text: a.scheduler }),
          a.recorded_at
            ? h('div', {
                class: a.stale ? 'aiaas-cluster-age aiaas-cluster-stale' : 'aiaas-cluster-age',
                text: `as recorded by its kernel${age(a.recorded_at)}${a.stale ? ' (may be out of date)' : ''}`
              })
            : null,
          h('div', {
            class: 'aiaas-cluster-totals',
            text: `${a.n_workers ?? workers.length} workers · ${a.threads ?? 0} threads · ${a.memory_gb ?? 0} GiB · ${a.gpus ?? 0} GPUs`
          }),
          a.dashboard
            ? h('a', { class: 'aiaas-cluster-dashboard', href: a.dashboard, target: '_blank', rel: 'noopener', text: 'Dask dashboard' })
            : null,
          h(
            'ul',
            { class: 'aiaas-list aiaas-workers' },
            ...workers.map(w =>
              h('li', {
                class: 'aiaas-worker',
                title: w.address,
                text: `${w.name || w.address} · ${w.threads} thr · ${w.memory_gb} GiB${w.gpus ? ` · ${w.gpus} GPU` : ''}`
              })
            )
          )
        )
      );
    }
    this.node.replaceChildren(...children.filter((c): c is HTMLElement => c !== null));
  }
}

function age(iso: string | null | undefined): string {
  const ago = relativeTime(iso);
  return ago ? ` ${ago}` : '';
}
