/** The Endpoints section: this home's model server with its deployments, and the remote
 * endpoints registered with `%aiaas endpoints add`, each with a health dot. */

import { button, errorLine, h, healthClass } from '../dom';
import { relativeTime } from '../format';
import { IEndpointsAnswer } from '../types';
import { SectionView } from './base';

export interface IEndpointActions {
  copy(text: string): void;
  undeployName(name: string): void;
}

export class EndpointsView extends SectionView<IEndpointsAnswer> {
  constructor(private readonly actions: IEndpointActions) {
    super('aiaas-endpoints-view');
    this.render();
  }

  render(): void {
    const children: (HTMLElement | null)[] = [errorLine(this.error)];
    const a = this.data;
    if (a === null) {
      children.push(this.error ? null : h('div', { class: 'aiaas-loading', text: 'Loading endpoints…' }));
    } else {
      children.push(
        h('div', {
          class: 'aiaas-server',
          text: a.server.running ? `Model server: ${a.server.url}` : 'Model server: not running (Deploy starts it)'
        })
      );
      const items = [
        ...a.deployments.map(d =>
          endpointItem(d.name, d.url || '', d.health, `own · v${d.version ?? '?'} · ${d.framework ?? ''} · loaded ${relativeTime(d.loaded_at)}`, [
            button('aiaas-undeploy', 'Undeploy', () => this.actions.undeployName(d.name), {
              'aria-label': `Undeploy ${d.name}`
            })
          ], this.actions)
        ),
        ...a.endpoints.map(e =>
          endpointItem(
            e.name,
            e.url,
            e.health,
            `remote · ${e.protocol}${e.model ? ` · ${e.model}` : ''}${
              e.api_key_env ? ` · key ${e.api_key_env}${e.api_key_set ? '' : ' (not set)'}` : ''
            }`,
            [],
            this.actions
          )
        )
      ];
      children.push(
        items.length
          ? h('ul', { class: 'aiaas-list aiaas-endpoints' }, ...items)
          : h('div', {
              class: 'aiaas-placeholder',
              text: 'No endpoints: deploy a model, or %aiaas endpoints add NAME --url URL --protocol v2|openai|rest'
            })
      );
    }
    this.node.replaceChildren(...children.filter((c): c is HTMLElement => c !== null));
  }
}

function endpointItem(
  name: string,
  url: string,
  health: string,
  meta: string,
  extra: HTMLElement[],
  actions: IEndpointActions
): HTMLElement {
  return h(
    'li',
    { class: 'aiaas-endpoint', 'data-endpoint': name },
    h(
      'div',
      { class: 'aiaas-endpoint-head' },
      h('span', {
        class: `aiaas-health ${healthClass(health)}`,
        title: health,
        role: 'img',
        'aria-label': `health: ${health}`
      }),
      h('span', { class: 'aiaas-endpoint-name', text: name }),
      h('span', { class: 'aiaas-endpoint-health', text: health })
    ),
    h('div', { class: 'aiaas-endpoint-url', text: url, title: url }),
    h('div', { class: 'aiaas-endpoint-meta', text: meta }),
    h(
      'div',
      { class: 'aiaas-endpoint-actions' },
      url ? button('aiaas-copy', 'Copy URL', () => actions.copy(url), { 'aria-label': `Copy the URL of ${name}` }) : null,
      ...extra
    )
  );
}
