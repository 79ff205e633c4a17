/**
 * An expanded model's version list: read with `model.modelDetail` for one state of the model's
 * summary, re-read when that state changes (see `detailKey`), with Load / Deploy per version.
 */

import type { TranslationBundle } from '@jupyterlab/translation';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { button, h, timeSpan } from '../dom';
import { formatMetric } from '../format';
import { IModelDetail, IModelSummary } from '../types';
import { CommandIDs } from './base';

/** The version list of an expanded model, read for one state of its summary. */
export interface IDetailEntry {
  /** `detailKey` of the summary it was read for */
  key: string;
  detail: IModelDetail | null;
  error: string | null;
}

/**
 * What a model's version list depends on. An alias moved, a version added or the deployment
 * changed: the list is read again (a cache keyed by the latest version alone showed a moved
 * alias on its old version forever).
 */
export function detailKey(model: IModelSummary): string {
  return JSON.stringify([
    model.latest,
    model.versions,
    model.aliases,
    model.deployed,
    model.deployed_version
  ]);
}

export function renderVersions(
  model: IModelSummary,
  cached: IDetailEntry | undefined,
  trans: TranslationBundle,
  execute: (id: string, args: ReadonlyPartialJSONObject) => void
): HTMLElement {
  const name = () => model.name; // the row's key: the same in every rendering
  const list = h('ul', {
    class: 'aiaas-model-versions',
    'aria-label': trans.__('Versions of %1', model.name)
  });
  if (!cached) {
    list.appendChild(
      h('li', { class: 'aiaas-loading', text: trans.__('Loading versions…') })
    );
    return list;
  }
  if (cached.error !== null || !cached.detail) {
    list.appendChild(
      h('li', { class: 'aiaas-version-error', text: cached.error ?? '' })
    );
    return list;
  }
  for (const v of cached.detail.versions) {
    const metric = Object.entries(v.metrics || {})[0];
    list.appendChild(
      h(
        'li',
        {
          class: 'aiaas-version',
          'data-version': v.version,
          'data-ref': v.ref
        },
        h('span', { class: 'aiaas-version-number', text: `v${v.version}` }),
        h('span', {
          class: 'aiaas-version-aliases',
          text: v.aliases.map(a => `@${a}`).join(' ')
        }),
        h('span', {
          class: 'aiaas-version-metric',
          text: metric
            ? formatMetric({ name: metric[0], value: metric[1] })
            : ''
        }),
        timeSpan('aiaas-version-created', v.created, 'ago', trans),
        button(
          'aiaas-load-version',
          trans.__('Load'),
          el =>
            execute(CommandIDs.loadModel, {
              name: name(),
              ref: versionRef(el)
            }),
          {
            title: trans.__('Insert load_model("%1") into the notebook', v.ref),
            'aria-label': trans.__('Load %1', v.ref)
          }
        ),
        button(
          'aiaas-deploy-version',
          trans.__('Deploy'),
          el =>
            execute(CommandIDs.deploy, { name: name(), ref: versionRef(el) }),
          {
            title: trans.__('Serve %1 as %2', v.ref, model.name),
            'aria-label': trans.__('Deploy %1', v.ref)
          }
        )
      )
    );
  }
  return list;
}

/** The ref of the version row holding `el` (as patched now, not as first rendered). */
function versionRef(el: Element): string {
  return el.closest('.aiaas-version')?.getAttribute('data-ref') ?? '';
}
