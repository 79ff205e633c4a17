/** The Jobs section: running jobs with progress bars, then the recent finished / failed ones. */

import { errorLine, h } from '../dom';
import { formatDuration, relativeTime, splitJobs } from '../format';
import { IJob } from '../types';
import { SectionView } from './base';

export class JobsView extends SectionView<IJob[]> {
  constructor() {
    super('aiaas-jobs-view');
    this.render();
  }

  render(): void {
    const children: (HTMLElement | null)[] = [errorLine(this.error)];
    const jobs = this.data;
    if (jobs === null) {
      children.push(this.error ? null : h('div', { class: 'aiaas-loading', text: 'Loading jobs…' }));
    } else if (!jobs.length) {
      children.push(h('div', { class: 'aiaas-placeholder', text: 'No jobs yet: %%aiaas train starts one.' }));
    } else {
      const { active, done } = splitJobs(jobs);
      children.push(h('div', { class: 'aiaas-subhead', text: `Running (${active.length})` }));
      children.push(
        active.length
          ? h('ul', { class: 'aiaas-list aiaas-jobs-active' }, ...active.map(job => activeJob(job)))
          : h('div', { class: 'aiaas-placeholder', text: 'Nothing running.' })
      );
      if (done.length) {
        children.push(h('div', { class: 'aiaas-subhead', text: 'Recent' }));
        children.push(h('ul', { class: 'aiaas-list aiaas-jobs-done' }, ...done.map(job => doneJob(job))));
      }
    }
    this.node.replaceChildren(...children.filter((c): c is HTMLElement => c !== null));
  }
}

function activeJob(job: IJob): HTMLElement {
  const p = Math.max(0, Math.min(1, job.progress ?? 0));
  return h(
    'li',
    { class: `aiaas-job aiaas-job-${job.status}`, 'data-job': job.id },
    h(
      'div',
      { class: 'aiaas-job-head' },
      h('span', { class: 'aiaas-job-model', text: job.model }),
      h('span', { class: 'aiaas-job-status', text: job.status }),
      h('span', { class: 'aiaas-job-percent', text: `${Math.round(p * 100)}%` })
    ),
    h('progress', {
      class: 'aiaas-progress',
      max: 1,
      value: p,
      'aria-label': `${job.model} ${Math.round(p * 100)}%`
    }),
    h('div', {
      class: 'aiaas-job-meta',
      text: [job.id, job.worker, job.gpus ? `${job.gpus} GPU` : '', relativeTime(job.started || job.submitted)]
        .filter(Boolean)
        .join(' · ')
    })
  );
}

function doneJob(job: IJob): HTMLElement {
  return h(
    'li',
    { class: `aiaas-job aiaas-job-${job.status}`, 'data-job': job.id, title: job.error || '' },
    h(
      'div',
      { class: 'aiaas-job-head' },
      h('span', { class: 'aiaas-job-model', text: job.version ? `${job.model} v${job.version}` : job.model }),
      h('span', { class: 'aiaas-job-status', text: job.status }),
      h('span', { class: 'aiaas-job-duration', text: formatDuration(job.duration_s) })
    ),
    job.error ? h('div', { class: 'aiaas-job-error', text: job.error }) : null,
    h('div', { class: 'aiaas-job-meta', text: [job.id, relativeTime(job.finished)].filter(Boolean).join(' · ') })
  );
}
