/**
 * The Sweeps section: each hyper-parameter sweep (newest first, as the server lists them) with
 * its model, status, a progress bar of ended trials, the trials per state ("12 done · 3 pruned ·
 * 1 failed"), the best score so far with its trial and direction, and the registered version
 * once the best trial became one. Rows are keyed by sweep id and patched in place, like jobs.
 *
 * Actions follow the other rows: the model name (or Show) inserts `%aiaas sweep show ID` (the
 * leaderboard as a table) through `aiaas:show-sweep`; the version inserts a `load_model` of
 * exactly that version through `aiaas:load-model`, as a version row's Load does.
 */

import { button, h, IRowState, KeyedList, timeSpan } from '../dom';
import {
  formatBest,
  formatTrialCounts,
  sweepProgress,
  sweepTrials,
  TERMINAL_STATES
} from '../format';
import { ISweep } from '../types';
import { CommandIDs, IViewOptions, SectionView } from './base';
import { statusLabel } from './jobs';

export class SweepsView extends SectionView {
  private readonly loadingNode: HTMLElement;
  private readonly placeholderNode: HTMLElement;
  private readonly listNode: HTMLUListElement;
  private readonly rows: KeyedList<ISweep>;

  constructor(options: IViewOptions) {
    super('aiaas-sweeps-view', 'sweeps', options);
    const trans = this.trans;
    this.loadingNode = h('div', {
      class: 'aiaas-loading',
      text: trans.__('Loading sweeps…')
    });
    this.placeholderNode = h('div', {
      class: 'aiaas-placeholder aiaas-sweeps-empty',
      text: trans.__('No sweeps yet: %%aiaas sweep starts one.')
    });
    this.listNode = h('ul', {
      class: 'aiaas-list aiaas-sweeps',
      'aria-label': trans.__('Sweeps')
    });
    this.rows = new KeyedList<ISweep>(this.listNode, {
      key: s => s.id,
      sig: s => JSON.stringify(s),
      render: state => this.row(state)
    });
    this.node.append(this.loadingNode, this.placeholderNode, this.listNode);
    this.render();
  }

  /** The row of sweep `id`, if listed. */
  rowOf(id: string): HTMLElement | undefined {
    return this.rows.get(id);
  }

  protected renderData(): void {
    const sweeps = this.model.sweeps;
    this.loadingNode.hidden = sweeps !== null || this.error !== null;
    this.placeholderNode.hidden = sweeps === null || sweeps.length > 0;
    this.listNode.hidden = !sweeps || !sweeps.length;
    this.rows.sync(sweeps || []);
  }

  private row(state: IRowState<ISweep>): HTMLElement {
    const trans = this.trans;
    const sweep = state.item;
    // handlers read the row's state when they run: the row is patched, never rebuilt
    const id = () => state.item.id;
    const p = sweepProgress(sweep);
    const { ended, total } = sweepTrials(sweep);
    const percent = `${Math.round(p * 100)}%`;
    const live = !TERMINAL_STATES.includes(sweep.status);
    const best = formatBest(sweep);
    const min = sweep.direction === 'min';
    return h(
      'li',
      {
        class: `aiaas-sweep aiaas-sweep-row aiaas-sweep-status-${sweep.status}`,
        'data-sweep': sweep.id,
        'data-aiaas-sweep': sweep.id,
        title: sweep.error || null
      },
      h(
        'div',
        { class: 'aiaas-sweep-head' },
        button(
          'aiaas-sweep-model',
          sweep.model,
          () => this.execute(CommandIDs.showSweep, { id: id() }),
          {
            title: trans.__(
              'Insert %%aiaas sweep show %1 into the notebook',
              sweep.id
            ),
            'aria-label': trans.__('Show sweep %1 of %2', sweep.id, sweep.model)
          }
        ),
        h('span', {
          class: 'aiaas-sweep-status',
          text: statusLabel(sweep.status, trans)
        }),
        h('span', {
          class: 'aiaas-sweep-trials',
          text: `${ended}/${total}`
        })
      ),
      h('progress', {
        class: 'aiaas-progress aiaas-sweep-progress',
        max: 1,
        value: p,
        'aria-label': trans.__(
          '%1: %2 of %3 trials ended (%4)',
          sweep.model,
          ended,
          total,
          percent
        )
      }),
      h('div', {
        class: 'aiaas-sweep-counts',
        text: formatTrialCounts(sweep.counts, trans)
      }),
      h(
        'div',
        { class: 'aiaas-sweep-result' },
        h('span', { class: 'aiaas-sweep-best-label', text: trans.__('best') }),
        ' ',
        h('span', {
          // one class either way: a changed class would replace the node (see `morph`)
          class: 'aiaas-sweep-best',
          'data-none': !best,
          text: best || (live ? trans.__('none yet') : trans.__('none'))
        }),
        ' ',
        h('span', {
          class: 'aiaas-sweep-direction',
          text: min ? '↓' : '↑',
          title: min
            ? trans.__('lower is better')
            : trans.__('higher is better'),
          'aria-label': min
            ? trans.__('lower is better')
            : trans.__('higher is better')
        }),
        sweep.version !== null && sweep.version !== undefined
          ? button(
              'aiaas-sweep-version',
              `→ ${sweep.model} v${sweep.version}`,
              el =>
                this.execute(CommandIDs.loadModel, {
                  name: state.item.model,
                  ref: el.dataset.ref ?? ''
                }),
              {
                'data-ref': `${sweep.model}:${sweep.version}`,
                title: trans.__(
                  'The best trial, registered as %1:%2: insert load_model into the notebook',
                  sweep.model,
                  sweep.version
                ),
                'aria-label': trans.__('Load %1:%2', sweep.model, sweep.version)
              }
            )
          : null
      ),
      sweep.error
        ? h('div', { class: 'aiaas-sweep-error-text', text: sweep.error })
        : null,
      h(
        'div',
        { class: 'aiaas-sweep-meta' },
        sweep.id,
        ' · ',
        live || !sweep.finished
          ? h('span', { text: trans.__('submitted ') })
          : h('span', { text: trans.__('finished ') }),
        live || !sweep.finished
          ? timeSpan('aiaas-sweep-submitted', sweep.submitted, 'ago', trans)
          : timeSpan('aiaas-sweep-finished-at', sweep.finished, 'ago', trans)
      )
    );
  }
}
