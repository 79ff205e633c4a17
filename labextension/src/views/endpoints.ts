/**
 * The Endpoints section: this home's model server with its deployments, and the remote endpoints
 * registered with `%aiaas endpoints add`, each with a health dot. Rows are keyed (deployment or
 * endpoint name) and patched in place, so focus on a row's Copy URL / Undeploy button and a
 * selected URL survive the poll.
 */

import {
  button,
  h,
  healthClass,
  KeyedList,
  IRowState,
  setText,
  timeSpan
} from '../dom';
import { IDeployment, IEndpointsAnswer, IRemoteEndpoint } from '../types';
import { CommandIDs, IViewOptions, SectionView } from './base';

type Item =
  | { kind: 'deployment'; d: IDeployment }
  | { kind: 'remote'; e: IRemoteEndpoint };

function itemName(item: Item): string {
  return item.kind === 'deployment' ? item.d.name : item.e.name;
}

function itemUrl(item: Item): string {
  return (item.kind === 'deployment' ? item.d.url : item.e.url) || '';
}

export class EndpointsView extends SectionView {
  private readonly serverNode: HTMLElement;
  private readonly placeholderNode: HTMLElement;
  private readonly loadingNode: HTMLElement;
  private readonly list: KeyedList<Item>;

  constructor(options: IViewOptions) {
    super('aiaas-endpoints-view', 'endpoints', options);
    const trans = this.trans;
    this.loadingNode = h('div', {
      class: 'aiaas-loading',
      text: trans.__('Loading endpoints…')
    });
    this.serverNode = h('div', { class: 'aiaas-server' });
    this.placeholderNode = h('div', {
      class: 'aiaas-placeholder',
      text: trans.__(
        'No endpoints: deploy a model, or %aiaas endpoints add NAME --url URL --protocol v2|openai|rest'
      )
    });
    const listNode = h('ul', {
      class: 'aiaas-list aiaas-endpoints',
      'aria-label': trans.__('Endpoints')
    });
    this.list = new KeyedList<Item>(listNode, {
      key: item => `${item.kind}:${itemName(item)}`,
      sig: item => JSON.stringify(item),
      render: state => this.renderRow(state)
    });
    this.node.append(
      this.loadingNode,
      this.serverNode,
      listNode,
      this.placeholderNode
    );
    this.render();
  }

  protected renderData(): void {
    const trans = this.trans;
    const a: IEndpointsAnswer | null = this.model.endpoints;
    this.loadingNode.hidden = a !== null || this.error !== null;
    this.serverNode.hidden = a === null;
    const items: Item[] = a
      ? [
          ...a.deployments.map(d => ({ kind: 'deployment' as const, d })),
          ...a.endpoints.map(e => ({ kind: 'remote' as const, e }))
        ]
      : [];
    this.placeholderNode.hidden = a === null || items.length > 0;
    if (a) {
      setText(
        this.serverNode,
        a.server.running
          ? trans.__('Model server: %1', a.server.url ?? '')
          : trans.__('Model server: not running (Deploy starts it)')
      );
    }
    this.list.sync(items);
  }

  private renderRow(state: IRowState<Item>): HTMLElement {
    const trans = this.trans;
    const item = state.item;
    const name = itemName(item);
    const url = itemUrl(item);
    const health = item.kind === 'deployment' ? item.d.health : item.e.health;
    let meta: HTMLElement;
    if (item.kind === 'deployment') {
      const d = item.d;
      meta = h(
        'div',
        { class: 'aiaas-endpoint-meta' },
        trans.__(
          'own · v%1 · %2 · loaded ',
          d.version ?? '?',
          d.framework ?? ''
        ),
        timeSpan('aiaas-endpoint-loaded', d.loaded_at, 'ago', trans)
      );
    } else {
      const e = item.e;
      const parts = [trans.__('remote'), e.protocol];
      if (e.model) {
        parts.push(e.model);
      }
      if (e.api_key_env) {
        parts.push(
          e.api_key_set
            ? trans.__('key %1', e.api_key_env)
            : trans.__('key %1 (not set)', e.api_key_env)
        );
      }
      meta = h('div', {
        class: 'aiaas-endpoint-meta',
        text: parts.join(' · ')
      });
    }
    return h(
      'li',
      {
        class: `aiaas-endpoint aiaas-endpoint-row aiaas-endpoint-${item.kind}`,
        'data-aiaas-endpoint': name,
        'data-aiaas-url': url || null
      },
      h(
        'div',
        { class: 'aiaas-endpoint-head' },
        h('span', {
          class: `aiaas-health ${healthClass(health)}`,
          title: health,
          role: 'img',
          'aria-label': trans.__('health: %1', health)
        }),
        h('span', { class: 'aiaas-endpoint-name', text: name }),
        h('span', { class: 'aiaas-endpoint-health', text: health })
      ),
      h('div', { class: 'aiaas-endpoint-url', text: url, title: url }),
      meta,
      h(
        'div',
        { class: 'aiaas-endpoint-actions' },
        url
          ? button(
              'aiaas-copy',
              trans.__('Copy URL'),
              () =>
                this.execute(CommandIDs.copyUrl, { url: itemUrl(state.item) }),
              {
                'aria-label': trans.__('Copy the URL of %1', name)
              }
            )
          : null,
        item.kind === 'deployment'
          ? button(
              'aiaas-undeploy',
              trans.__('Undeploy'),
              () =>
                this.execute(CommandIDs.undeploy, {
                  name: itemName(state.item)
                }),
              {
                'aria-label': trans.__('Undeploy %1', name)
              }
            )
          : null
      )
    );
  }
}
