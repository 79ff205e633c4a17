/** The Models section's first-run help: no registry yet, or no model in it. */

import type { TranslationBundle } from '@jupyterlab/translation';

import { h } from '../dom';

export function emptyState(
  trans: TranslationBundle,
  noRegistry: boolean,
  home?: string
): HTMLElement {
  const steps = [
    ['%load_ext aiaas_jupyter', trans.__('load the extension in a notebook')],
    [
      '%aiaas connect',
      trans.__('start the embedded Dask cluster (or connect to one)')
    ],
    [
      '%%aiaas train --data df --target y --name my-model',
      trans.__('train: the model appears here')
    ]
  ];
  return h(
    'div',
    { class: 'aiaas-empty' },
    h('p', {
      text: noRegistry
        ? home
          ? trans.__(
              'No registry yet at %1. To start, in a notebook run:',
              home
            )
          : trans.__('No registry yet. To start, in a notebook run:')
        : trans.__('No models registered yet. In a notebook run:')
    }),
    h(
      'ol',
      {},
      ...steps.map(([code, why]) =>
        h('li', {}, h('code', { text: code }), h('span', { text: ` — ${why}` }))
      )
    )
  );
}
