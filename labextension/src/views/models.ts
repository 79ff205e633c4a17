/**
 * The Models section: a filter box, one row per model (name, latest version, aliases, framework,
 * headline metric, deployed badge) and its versions on demand.
 *
 * Scale: the registry may hold thousands of models. Only the first pages of `pageSize` matches
 * are in the DOM ("Show more"), and rows are keyed by model name and patched in place only when
 * their data changed, so a refresh of 1,000 unchanged models touches no DOM at all.
 *
 * The filter is a plain `<input type=search>` styled as JupyterLab's: ui-components' `FilterBox`
 * is a React component that filters with its own fuzzy matcher over one string per item, while
 * this filter matches every term against name, framework, aliases and "deployed" and must stay
 * in the same plain-DOM tree that the refresh leaves untouched.
 */

import { caretDownIcon, caretRightIcon } from '@jupyterlab/ui-components';

import { button, h, KeyedList, IRowState, setText, timeSpan } from '../dom';
import {
  defaultSnippet,
  formatAliases,
  formatMetric,
  matchesFilter
} from '../format';
import { IModelsAnswer, IModelSummary } from '../types';
import { CommandIDs, IViewOptions, SectionView } from './base';
import { makeDraggable } from './drag';
import { emptyState } from './empty';
import { detailKey, IDetailEntry, renderVersions } from './versions';

export class ModelsView extends SectionView {
  readonly filterInput: HTMLInputElement;
  private readonly summaryNode: HTMLElement;
  private readonly messageNode: HTMLElement;
  private readonly listNode: HTMLUListElement;
  private readonly moreButton: HTMLButtonElement;
  private readonly list: KeyedList<IModelSummary>;
  private messageKey = '';
  private pages = 1;
  private readonly expanded = new Set<string>();
  private readonly details = new Map<string, IDetailEntry>();
  /** per model, the number of the latest versions request: an older answer never wins */
  private readonly requested = new Map<string, { seq: number; key: string }>();
  private seq = 0;

  constructor(options: IViewOptions) {
    super('aiaas-models-view', 'models', options);
    const trans = this.trans;
    this.filterInput = h('input', {
      class: 'aiaas-filter jp-mod-styled',
      type: 'search',
      placeholder: trans.__(
        'Filter models (name, framework, @alias, deployed)'
      ),
      'aria-label': trans.__('Filter models')
    });
    this.filterInput.addEventListener('input', () => {
      this.pages = 1;
      this.renderData();
    });
    this.summaryNode = h('div', {
      class: 'aiaas-summary',
      'aria-live': 'polite'
    });
    this.messageNode = h('div', { class: 'aiaas-message' });
    this.listNode = h('ul', {
      class: 'aiaas-list aiaas-models',
      'aria-label': trans.__('Models')
    });
    this.moreButton = button('aiaas-more', '', () => this.showMore());
    this.list = new KeyedList<IModelSummary>(this.listNode, {
      key: m => m.name,
      sig: m =>
        JSON.stringify([m, this.expanded.has(m.name), this.detailSig(m.name)]),
      render: state => this.renderRow(state)
    });
    this.node.append(
      h('div', { class: 'aiaas-filter-row' }, this.filterInput),
      this.messageNode,
      this.summaryNode,
      this.listNode,
      h('div', { class: 'aiaas-more-row' }, this.moreButton)
    );
    this.render();
  }

  get filter(): string {
    return this.filterInput.value;
  }

  set filter(value: string) {
    this.filterInput.value = value;
    this.pages = 1;
    this.renderData();
  }

  /** The models that pass the filter, in the API's order (by name). */
  matches(): IModelSummary[] {
    const models = this.model.models ? this.model.models.models : [];
    return models.filter(m => matchesFilter(m, this.filter));
  }

  showMore(): void {
    this.pages += 1;
    this.renderData();
  }

  protected renderData(): void {
    const answer: IModelsAnswer | null = this.model.models;
    const all = answer ? answer.models : [];
    const matching = this.matches();
    const shown = matching.slice(0, this.pages * this.model.settings.pageSize);
    if (answer === null) {
      this.setMessage(this.error ? 'none' : 'loading');
    } else if (!all.length) {
      this.setMessage(
        `empty:${answer.registry?.exists === false}:${answer.registry?.home ?? ''}`,
        answer
      );
    } else {
      this.setMessage('none');
    }
    const trans = this.trans;
    setText(
      this.summaryNode,
      !all.length
        ? ''
        : this.filter.trim()
          ? trans.__('%1 of %2 models match', matching.length, all.length)
          : trans._n('%1 model', '%1 models', all.length)
    );
    for (const m of shown) {
      if (this.expanded.has(m.name)) {
        this.loadDetails(m);
      }
    }
    this.list.sync(shown);
    this.moreButton.hidden = matching.length <= shown.length;
    setText(
      this.moreButton,
      trans.__('Show more (%1 of %2 shown)', shown.length, matching.length)
    );
  }

  /** Replace the message (loading / empty state) only when what it says changes. */
  private setMessage(key: string, answer?: IModelsAnswer): void {
    if (key === this.messageKey) {
      return;
    }
    this.messageKey = key;
    if (key === 'loading') {
      this.messageNode.replaceChildren(
        h('div', {
          class: 'aiaas-loading',
          text: this.trans.__('Loading models…')
        })
      );
    } else if (key.startsWith('empty') && answer) {
      this.messageNode.replaceChildren(
        emptyState(
          this.trans,
          answer.registry?.exists === false,
          answer.registry?.home
        )
      );
    } else {
      this.messageNode.replaceChildren();
    }
  }

  private detailSig(name: string): string {
    const d = this.details.get(name);
    return d ? `${d.key}:${d.error ?? 'ok'}` : '';
  }

  private toggle(name: string): void {
    if (this.expanded.has(name)) {
      this.expanded.delete(name);
    } else {
      this.expanded.add(name);
    }
    this.renderData();
  }

  /** Read the versions of `model` unless they were read (or are being read) for its current summary. */
  private loadDetails(model: IModelSummary): void {
    const key = detailKey(model);
    const name = model.name;
    if (
      this.details.get(name)?.key === key ||
      this.requested.get(name)?.key === key
    ) {
      return;
    }
    const seq = ++this.seq;
    this.requested.set(name, { seq, key });
    const done = (entry: IDetailEntry) => {
      if (this.isDisposed || this.requested.get(name)?.seq !== seq) {
        return; // a newer request for this model was made: its answer wins
      }
      this.requested.delete(name);
      this.details.set(name, entry);
      this.renderData();
    };
    this.model.modelDetail(name).then(
      detail => done({ key, detail, error: null }),
      error =>
        done({
          key,
          detail: null,
          error: String(error?.line || error?.message || error)
        })
    );
  }

  private renderRow(state: IRowState<IModelSummary>): HTMLLIElement {
    const trans = this.trans;
    const model = state.item;
    const name = () => state.item.name;
    const open = this.expanded.has(model.name);
    const caret = (open ? caretDownIcon : caretRightIcon).element({
      tag: 'span',
      className: 'aiaas-caret'
    });
    const head = h(
      'div',
      { class: 'aiaas-model-head' },
      button('aiaas-expand', caret, () => this.toggle(name()), {
        'aria-expanded': open ? 'true' : 'false',
        'aria-label': open
          ? trans.__('Hide the versions of %1', model.name)
          : trans.__('Show the versions of %1', model.name),
        title: open ? trans.__('Hide versions') : trans.__('Show versions')
      }),
      button(
        'aiaas-model-name',
        model.name,
        () => this.execute(CommandIDs.insertSnippet, { name: name() }),
        {
          title: trans.__(
            'Insert a snippet for %1 into the notebook (or drag it into the notebook)',
            model.name
          )
        }
      ),
      h('span', { class: 'aiaas-model-version', text: `v${model.latest}` }),
      model.deployed
        ? h('span', {
            class: 'aiaas-badge aiaas-badge-deployed',
            text: trans.__('deployed'),
            title: trans.__(
              'serving v%1 at %2',
              model.deployed_version ?? '?',
              model.endpoint ?? ''
            )
          })
        : null
    );
    const meta = h(
      'div',
      { class: 'aiaas-model-meta' },
      h('span', { class: 'aiaas-model-framework', text: model.framework }),
      h('span', {
        class: 'aiaas-model-metric',
        text: formatMetric(model.metric)
      }),
      h('span', {
        class: 'aiaas-model-aliases',
        text: formatAliases(model.aliases)
      }),
      timeSpan('aiaas-model-created', model.created, 'ago', trans)
    );
    const actions = h(
      'div',
      { class: 'aiaas-model-actions' },
      button(
        'aiaas-insert-load',
        'load_model',
        () => this.execute(CommandIDs.loadModel, { name: name() }),
        {
          title: trans.__('Insert load_model(...) into the notebook'),
          'aria-label': trans.__('Insert load_model for %1', model.name)
        }
      ),
      button(
        'aiaas-insert-predict',
        'predict',
        () =>
          this.execute(CommandIDs.insertSnippet, {
            name: name(),
            kind: 'predict'
          }),
        {
          title: trans.__('Insert %aiaas predict into the notebook'),
          'aria-label': trans.__('Insert a prediction with %1', model.name)
        }
      ),
      model.deployed
        ? button(
            'aiaas-undeploy',
            trans.__('Undeploy'),
            () => this.execute(CommandIDs.undeploy, { name: name() }),
            {
              title: trans.__('Stop serving %1', model.name),
              'aria-label': trans.__('Undeploy %1', model.name)
            }
          )
        : button(
            'aiaas-deploy',
            trans.__('Deploy'),
            () => this.execute(CommandIDs.deploy, { name: name() }),
            {
              title: trans.__('Serve the latest version of %1', model.name),
              'aria-label': trans.__('Deploy %1', model.name)
            }
          ),
      model.deployed && model.endpoint
        ? button(
            'aiaas-copy',
            trans.__('Copy URL'),
            () =>
              this.execute(CommandIDs.copyUrl, {
                url: state.item.endpoint ?? ''
              }),
            {
              title: trans.__('Copy %1', model.endpoint),
              'aria-label': trans.__('Copy the URL of %1', model.name)
            }
          )
        : null
    );
    const row = h(
      'li',
      { class: 'aiaas-model aiaas-model-row', 'data-aiaas-model': model.name },
      head,
      meta,
      actions,
      open
        ? renderVersions(
            model,
            this.details.get(model.name),
            this.trans,
            (id, args) => this.execute(id, args)
          )
        : null
    );
    makeDraggable(
      row,
      () => defaultSnippet(state.item),
      () => state.item.name
    );
    return row;
  }
}
