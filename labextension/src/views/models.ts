/**
 * The Models section: a filter box, one row per model (name, latest version, aliases,
 * framework, headline metric, deployed badge) and its versions on demand.
 *
 * Scale: the registry may hold thousands of models. Only the first `limit` matches are in the
 * DOM (pages of `PAGE_SIZE`, "Show more"), and rows are keyed by model name and rebuilt only
 * when their data changed, so a 2-second refresh of 1,000 models touches no DOM at all.
 */

import { button, errorLine, h } from '../dom';
import {
  defaultSnippet,
  formatAliases,
  formatMetric,
  matchesFilter,
  relativeTime,
  SnippetKind
} from '../format';
import { IModelDetail, IModelsAnswer, IModelSummary } from '../types';
import { SectionView } from './base';

export const PAGE_SIZE = 100;
/** The drag payload the notebook drop handler (index.ts) turns into a new cell. */
export const SNIPPET_MIME = 'application/vnd.aiaas.snippet+text';

/** What the rows' buttons do; the panel wires these to the API and the notebook. */
export interface IModelActions {
  insert(model: IModelSummary, kind?: SnippetKind): void;
  deploy(model: IModelSummary, ref?: string): void;
  undeploy(model: IModelSummary): void;
  copy(text: string): void;
  details(name: string): Promise<IModelDetail>;
}

interface IRow {
  sig: string;
  el: HTMLLIElement;
}

export class ModelsView extends SectionView<IModelsAnswer> {
  readonly filterInput: HTMLInputElement;
  private readonly summaryNode: HTMLElement;
  private readonly messageNode: HTMLElement;
  private readonly listNode: HTMLUListElement;
  private readonly moreNode: HTMLElement;
  private limit = PAGE_SIZE;
  private readonly expanded = new Set<string>();
  private readonly details = new Map<string, { latest: number; detail: IModelDetail | string }>();
  private readonly rows = new Map<string, IRow>();
  private readonly loading = new Set<string>();

  constructor(private readonly actions: IModelActions) {
    super('aiaas-models-view');
    this.filterInput = h('input', {
      class: 'aiaas-filter jp-mod-styled',
      type: 'search',
      placeholder: 'Filter models (name, framework, @alias, deployed)',
      'aria-label': 'Filter models'
    });
    this.filterInput.addEventListener('input', () => {
      this.limit = PAGE_SIZE;
      this.render();
    });
    this.summaryNode = h('div', { class: 'aiaas-summary', 'aria-live': 'polite' });
    this.messageNode = h('div', { class: 'aiaas-message' });
    this.listNode = h('ul', { class: 'aiaas-list aiaas-models', 'aria-label': 'Models' });
    this.moreNode = h('div', { class: 'aiaas-more-row' });
    this.node.append(
      h('div', { class: 'aiaas-filter-row' }, this.filterInput),
      this.messageNode,
      this.summaryNode,
      this.listNode,
      this.moreNode
    );
    this.render();
  }

  get filter(): string {
    return this.filterInput.value;
  }

  set filter(value: string) {
    this.filterInput.value = value;
    this.limit = PAGE_SIZE;
    this.render();
  }

  /** The models that pass the filter, in the API's order (by name). */
  matches(): IModelSummary[] {
    const models = this.data ? this.data.models : [];
    return models.filter(m => matchesFilter(m, this.filter));
  }

  showMore(): void {
    this.limit += PAGE_SIZE;
    this.render();
  }

  render(): void {
    this.messageNode.replaceChildren();
    const err = errorLine(this.error);
    if (err) {
      this.messageNode.appendChild(err);
    }
    if (this.data === null) {
      if (!this.error) {
        this.messageNode.appendChild(h('div', { class: 'aiaas-loading', text: 'Loading models…' }));
      }
      this.syncRows([]);
      this.summaryNode.textContent = '';
      this.moreNode.replaceChildren();
      return;
    }
    const all = this.data.models;
    if (!all.length) {
      this.messageNode.appendChild(emptyState(this.data.registry?.exists === false, this.data.registry?.home));
      this.syncRows([]);
      this.summaryNode.textContent = '';
      this.moreNode.replaceChildren();
      return;
    }
    const matching = this.matches();
    const shown = matching.slice(0, this.limit);
    this.summaryNode.textContent = this.filter.trim()
      ? `${matching.length} of ${all.length} models match`
      : `${all.length} model${all.length === 1 ? '' : 's'}`;
    this.syncRows(shown);
    this.moreNode.replaceChildren();
    if (matching.length > shown.length) {
      this.moreNode.appendChild(
        button('aiaas-more', `Show more (${shown.length} of ${matching.length} shown)`, () => this.showMore())
      );
    }
  }

  /** Make the list hold exactly `models`, in order, reusing rows whose data did not change. */
  private syncRows(models: IModelSummary[]): void {
    const keep = new Set(models.map(m => m.name));
    for (const [name, row] of this.rows) {
      if (!keep.has(name)) {
        row.el.remove();
        this.rows.delete(name);
      }
    }
    let cursor: ChildNode | null = this.listNode.firstChild;
    for (const model of models) {
      const sig = JSON.stringify([model, this.expanded.has(model.name), this.detailSig(model.name)]);
      let row = this.rows.get(model.name);
      if (!row || row.sig !== sig) {
        const el = this.renderRow(model);
        if (row) {
          row.el.replaceWith(el);
          if (cursor === row.el) {
            cursor = el;
          }
        }
        row = { sig, el };
        this.rows.set(model.name, row);
      }
      if (row.el !== cursor) {
        this.listNode.insertBefore(row.el, cursor);
      } else {
        cursor = cursor.nextSibling;
      }
    }
  }

  private detailSig(name: string): string {
    const d = this.details.get(name);
    return d ? `${d.latest}:${typeof d.detail === 'string' ? d.detail : 'ok'}` : '';
  }

  private toggle(model: IModelSummary): void {
    if (this.expanded.has(model.name)) {
      this.expanded.delete(model.name);
    } else {
      this.expanded.add(model.name);
      this.loadDetails(model);
    }
    this.render();
    const row = this.rows.get(model.name);
    row?.el.querySelector<HTMLButtonElement>('.aiaas-expand')?.focus();
  }

  private loadDetails(model: IModelSummary): void {
    const cached = this.details.get(model.name);
    const key = `${model.name}:${model.latest}`;
    if ((cached && cached.latest === model.latest && typeof cached.detail !== 'string') || this.loading.has(key)) {
      return;
    }
    this.loading.add(key);
    const done = (detail: IModelDetail | string) => {
      this.loading.delete(key);
      this.details.set(model.name, { latest: model.latest, detail });
      this.render();
    };
    this.actions.details(model.name).then(done, error => done(String(error.line || error.message || error)));
  }

  private renderRow(model: IModelSummary): HTMLLIElement {
    const open = this.expanded.has(model.name);
    if (open) {
      this.loadDetails(model); // refreshes the versions after a new one was registered
    }
    const name = button('aiaas-model-name', model.name, () => this.actions.insert(model), {
      title: `Insert a snippet for ${model.name} into the notebook (or drag it into a cell)`
    });
    const head = h(
      'div',
      { class: 'aiaas-model-head' },
      button('aiaas-expand', open ? '▾' : '▸', () => this.toggle(model), {
        'aria-expanded': open ? 'true' : 'false',
        'aria-label': `${open ? 'Hide' : 'Show'} the versions of ${model.name}`,
        title: `${open ? 'Hide' : 'Show'} versions`
      }),
      name,
      h('span', { class: 'aiaas-model-version', text: `v${model.latest}` }),
      model.deployed
        ? h('span', {
            class: 'aiaas-badge aiaas-badge-deployed',
            text: 'deployed',
            title: `serving v${model.deployed_version ?? '?'} at ${model.endpoint ?? ''}`
          })
        : null
    );
    const meta = h(
      'div',
      { class: 'aiaas-model-meta' },
      h('span', { class: 'aiaas-model-framework', text: model.framework }),
      h('span', { class: 'aiaas-model-metric', text: formatMetric(model.metric) }),
      h('span', { class: 'aiaas-model-aliases', text: formatAliases(model.aliases) }),
      h('span', { class: 'aiaas-model-created', text: relativeTime(model.created), title: model.created })
    );
    const actions = h(
      'div',
      { class: 'aiaas-model-actions' },
      button('aiaas-insert-load', 'load_model', () => this.actions.insert(model, 'load'), {
        title: 'Insert load_model(...) into the notebook'
      }),
      button('aiaas-insert-predict', 'predict', () => this.actions.insert(model, 'predict'), {
        title: 'Insert %aiaas predict into the notebook'
      }),
      model.deployed
        ? button('aiaas-undeploy', 'Undeploy', () => this.actions.undeploy(model), {
            title: `Stop serving ${model.name}`
          })
        : button('aiaas-deploy', 'Deploy', () => this.actions.deploy(model), {
            title: `Serve the latest version of ${model.name}`
          }),
      model.deployed && model.endpoint
        ? button('aiaas-copy', 'Copy URL', () => this.actions.copy(model.endpoint as string), {
            title: `Copy ${model.endpoint}`
          })
        : null
    );
    const row = h(
      'li',
      { class: 'aiaas-model', 'data-model': model.name, draggable: 'true' },
      head,
      meta,
      actions,
      open ? this.renderVersions(model) : null
    );
    row.addEventListener('dragstart', event => {
      // text/plain: dropped into a cell editor, CodeMirror inserts it at the drop point;
      // SNIPPET_MIME: dropped between cells, the plugin makes a new cell of it
      event.dataTransfer?.setData('text/plain', defaultSnippet(model));
      event.dataTransfer?.setData(SNIPPET_MIME, defaultSnippet(model));
      if (event.dataTransfer) {
        event.dataTransfer.effectAllowed = 'copy';
      }
    });
    return row;
  }

  private renderVersions(model: IModelSummary): HTMLElement {
    const list = h('ul', { class: 'aiaas-model-versions', 'aria-label': `Versions of ${model.name}` });
    const cached = this.details.get(model.name);
    if (!cached) {
      list.appendChild(h('li', { class: 'aiaas-loading', text: 'Loading versions…' }));
      return list;
    }
    if (typeof cached.detail === 'string') {
      list.appendChild(h('li', { class: 'aiaas-error', text: cached.detail }));
      return list;
    }
    for (const v of cached.detail.versions) {
      const metric = Object.entries(v.metrics || {})[0];
      list.appendChild(
        h(
          'li',
          { class: 'aiaas-version', 'data-version': v.version },
          h('span', { class: 'aiaas-version-number', text: `v${v.version}` }),
          h('span', { class: 'aiaas-version-aliases', text: v.aliases.map(a => `@${a}`).join(' ') }),
          h('span', { class: 'aiaas-version-metric', text: metric ? formatMetric({ name: metric[0], value: metric[1] }) : '' }),
          h('span', { class: 'aiaas-version-created', text: relativeTime(v.created), title: v.created }),
          button('aiaas-deploy-version', 'Deploy', () => this.actions.deploy(model, v.ref), {
            title: `Serve ${v.ref} as ${model.name}`,
            'aria-label': `Deploy ${v.ref}`
          })
        )
      );
    }
    return list;
  }
}

function emptyState(noRegistry: boolean, home?: string): HTMLElement {
  const steps = [
    ['%load_ext aiaas_jupyter', 'load the extension in a notebook'],
    ['%aiaas connect', 'start the embedded Dask cluster (or connect to one)'],
    ['%%aiaas train --data df --target y --name my-model', 'train: the model appears here']
  ];
  return h(
    'div',
    { class: 'aiaas-empty' },
    h('p', {
      text: noRegistry
        ? `No registry yet${home ? ` at ${home}` : ''}. To start, in a notebook run:`
        : 'No models registered yet. In a notebook run:'
    }),
    h(
      'ol',
      {},
      ...steps.map(([code, why]) => h('li', {}, h('code', { text: code }), h('span', { text: ` — ${why}` })))
    )
  );
}

