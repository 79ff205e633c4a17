/**
 * The Jobs section: running jobs with progress bars and their running time, then the most recent
 * `settings.recentJobs` finished / failed ones. Rows are keyed by job id and patched in place; the
 * times tick on the view's timer.
 *
 * A row's status class is `aiaas-job-status-<status>`: `aiaas-job-<status>` made a failed job's
 * row `aiaas-job-error`, the class of the error message, so the whole row became small and red.
 */

import { h, KeyedList, IRowState, setText, timeSpan } from '../dom';
import { formatDuration, splitJobs } from '../format';
import { IJob } from '../types';
import { IViewOptions, SectionView } from './base';

export class JobsView extends SectionView {
  private readonly loadingNode: HTMLElement;
  private readonly placeholderNode: HTMLElement;
  private readonly content: HTMLElement;
  private readonly activeHead: HTMLElement;
  private readonly nothingRunning: HTMLElement;
  private readonly doneHead: HTMLElement;
  private readonly active: KeyedList<IJob>;
  private readonly done: KeyedList<IJob>;

  constructor(options: IViewOptions) {
    super('aiaas-jobs-view', 'jobs', options);
    const trans = this.trans;
    this.loadingNode = h('div', {
      class: 'aiaas-loading',
      text: trans.__('Loading jobs…')
    });
    this.placeholderNode = h('div', {
      class: 'aiaas-placeholder',
      text: trans.__('No jobs yet: %%aiaas train starts one.')
    });
    this.activeHead = h('div', { class: 'aiaas-subhead' });
    this.nothingRunning = h('div', {
      class: 'aiaas-placeholder',
      text: trans.__('Nothing running.')
    });
    this.doneHead = h('div', {
      class: 'aiaas-subhead',
      text: trans.__('Recent')
    });
    const activeList = h('ul', {
      class: 'aiaas-list aiaas-jobs-active',
      'aria-label': trans.__('Running jobs')
    });
    const doneList = h('ul', {
      class: 'aiaas-list aiaas-jobs-done',
      'aria-label': trans.__('Recent jobs')
    });
    const common = {
      key: (j: IJob) => j.id,
      sig: (j: IJob) => JSON.stringify(j)
    };
    this.active = new KeyedList<IJob>(activeList, {
      ...common,
      render: s => this.activeRow(s)
    });
    this.done = new KeyedList<IJob>(doneList, {
      ...common,
      render: s => this.doneRow(s)
    });
    this.content = h(
      'div',
      { class: 'aiaas-jobs' },
      this.activeHead,
      this.nothingRunning,
      activeList,
      this.doneHead,
      doneList
    );
    this.node.append(this.loadingNode, this.placeholderNode, this.content);
    this.render();
  }

  protected renderData(): void {
    const jobs = this.model.jobs;
    this.loadingNode.hidden = jobs !== null || this.error !== null;
    this.placeholderNode.hidden = jobs === null || jobs.length > 0;
    this.content.hidden = !jobs || !jobs.length;
    const { active, done } = splitJobs(
      jobs || [],
      this.model.settings.recentJobs
    );
    setText(this.activeHead, this.trans.__('Running (%1)', active.length));
    this.nothingRunning.hidden = active.length > 0;
    this.doneHead.hidden = !done.length;
    this.active.sync(active);
    this.done.sync(done);
  }

  private activeRow(state: IRowState<IJob>): HTMLElement {
    const trans = this.trans;
    const job = state.item;
    const p = Math.max(0, Math.min(1, job.progress ?? 0));
    const percent = `${Math.round(p * 100)}%`;
    const meta = [
      job.id,
      job.worker,
      job.gpus ? trans._n('%1 GPU', '%1 GPUs', job.gpus) : ''
    ]
      .filter(Boolean)
      .join(' · ');
    return h(
      'li',
      { class: `aiaas-job aiaas-job-status-${job.status}`, 'data-job': job.id },
      h(
        'div',
        { class: 'aiaas-job-head' },
        h('span', { class: 'aiaas-job-model', text: job.model }),
        h('span', {
          class: 'aiaas-job-status',
          text: statusLabel(job.status, trans)
        }),
        h('span', { class: 'aiaas-job-percent', text: percent })
      ),
      h('progress', {
        class: 'aiaas-progress',
        max: 1,
        value: p,
        'aria-label': trans.__('%1 %2', job.model, percent)
      }),
      h(
        'div',
        { class: 'aiaas-job-meta' },
        meta,
        job.started ? ' · ' : null,
        job.started ? h('span', { text: trans.__('running ') }) : null,
        job.started
          ? timeSpan('aiaas-job-running-for', job.started, 'since', trans)
          : null,
        !job.started && job.submitted ? ' · ' : null,
        !job.started && job.submitted
          ? h('span', { text: trans.__('submitted ') })
          : null,
        !job.started && job.submitted
          ? timeSpan('aiaas-job-submitted', job.submitted, 'ago', trans)
          : null
      )
    );
  }

  private doneRow(state: IRowState<IJob>): HTMLElement {
    const trans = this.trans;
    const job = state.item;
    return h(
      'li',
      {
        class: `aiaas-job aiaas-job-status-${job.status}`,
        'data-job': job.id,
        title: job.error || null
      },
      h(
        'div',
        { class: 'aiaas-job-head' },
        h('span', {
          class: 'aiaas-job-model',
          text: job.version ? `${job.model} v${job.version}` : job.model
        }),
        h('span', {
          class: 'aiaas-job-status',
          text: statusLabel(job.status, trans)
        }),
        h('span', {
          class: 'aiaas-job-duration',
          text: formatDuration(job.duration_s, trans)
        })
      ),
      job.error
        ? h('div', { class: 'aiaas-job-error-text', text: job.error })
        : null,
      h(
        'div',
        { class: 'aiaas-job-meta' },
        job.id,
        job.finished ? ' · ' : null,
        job.finished
          ? timeSpan('aiaas-job-finished-at', job.finished, 'ago', trans)
          : null
      )
    );
  }
}

/** A job or sweep status in the user's language: literal strings, so translation tooling finds them. */
export function statusLabel(
  status: string,
  trans: { __: (msg: string) => string }
): string {
  switch (status) {
    case 'pending':
      return trans.__('pending');
    case 'running':
      return trans.__('running');
    case 'finished':
      return trans.__('finished');
    case 'error':
      return trans.__('error');
    case 'cancelled':
      return trans.__('cancelled');
    case 'lost':
      return trans.__('lost');
    default:
      return status;
  }
}
