import { Drag } from '@lumino/dragdrop';

import { JUPYTER_CELL_MIME } from '../src/views/drag';
import { ModelsView } from '../src/views/models';
import { IModelDetail, IModelVersion } from '../src/types';
import { flush, setup } from './fakeModel';
import { manyModels, model } from './fixtures';

const rows = (view: ModelsView) =>
  Array.from(view.node.querySelectorAll<HTMLElement>('.aiaas-model'));
const names = (view: ModelsView) => rows(view).map(r => r.dataset.aiaasModel);

function version(
  name: string,
  v: number,
  aliases: string[] = []
): IModelVersion {
  return {
    version: v,
    ref: `${name}:${v}`,
    framework: 'sklearn',
    metrics: { accuracy: 0.9 + v / 100 },
    params: {},
    aliases,
    created: '2026-11-23T10:00:00Z',
    job_id: `j${v}`
  };
}

function detail(name: string, versions: IModelVersion[]): IModelDetail {
  return {
    name,
    deployed: false,
    endpoint: null,
    deployed_version: null,
    versions
  };
}

describe('ModelsView', () => {
  it('says how to start when there is no registry, and when it is empty', () => {
    const { model: m, options } = setup();
    const view = new ModelsView(options);
    expect(view.node.querySelector('.aiaas-loading')?.textContent).toBe(
      'Loading models…'
    );
    m.setModels({ models: [], registry: { home: '/h', exists: false } });
    const empty = view.node.querySelector('.aiaas-empty')!;
    expect(empty.textContent).toContain('No registry yet at /h');
    expect(empty.textContent).toContain('%load_ext aiaas_jupyter');
    expect(empty.textContent).toContain('%aiaas connect');
    expect(view.node.querySelector('.aiaas-loading')).toBeNull();
    m.setModels({ models: [], registry: { home: '/h', exists: true } });
    expect(view.node.querySelector('.aiaas-empty')!.textContent).toContain(
      'No models registered yet'
    );
  });

  it('renders a row per model with version, framework, metric, aliases, badge and the context-menu data', () => {
    const { model: m, options } = setup();
    const view = new ModelsView(options);
    m.setModels({
      models: [
        model('iris', {
          latest: 2,
          aliases: { prod: 1 },
          deployed: true,
          deployed_version: 1,
          endpoint: 'http://h/v2/models/iris'
        }),
        model('mnist', {
          framework: 'torch',
          metric: { name: 'val_accuracy', value: 0.912 }
        })
      ]
    });
    expect(names(view)).toEqual(['iris', 'mnist']);
    const [iris, mnist] = rows(view);
    expect(iris.classList.contains('aiaas-model-row')).toBe(true);
    expect(iris.querySelector('.aiaas-model-version')!.textContent).toBe('v2');
    expect(iris.querySelector('.aiaas-model-framework')!.textContent).toBe(
      'sklearn'
    );
    expect(iris.querySelector('.aiaas-model-metric')!.textContent).toBe(
      'accuracy 0.967'
    );
    expect(iris.querySelector('.aiaas-model-aliases')!.textContent).toBe(
      '@prod→v1'
    );
    expect(iris.querySelector('.aiaas-badge-deployed')).not.toBeNull();
    expect(iris.querySelector('.aiaas-undeploy')).not.toBeNull();
    expect(iris.querySelector('.aiaas-deploy')).toBeNull();
    expect(mnist.querySelector('.aiaas-badge-deployed')).toBeNull();
    expect(mnist.querySelector('.aiaas-deploy')).not.toBeNull();
    expect(view.node.querySelector('.aiaas-summary')!.textContent).toBe(
      '2 models'
    );
  });

  it('runs a command with arguments for every button', async () => {
    const { model: m, options, calls } = setup();
    const view = new ModelsView(options);
    m.setModels({
      models: [
        model('a'),
        model('b', { deployed: true, endpoint: 'http://h/e' })
      ]
    });
    const [a, b] = rows(view);
    a.querySelector<HTMLButtonElement>('.aiaas-model-name')!.click();
    a.querySelector<HTMLButtonElement>('.aiaas-insert-load')!.click();
    a.querySelector<HTMLButtonElement>('.aiaas-insert-predict')!.click();
    a.querySelector<HTMLButtonElement>('.aiaas-deploy')!.click();
    b.querySelector<HTMLButtonElement>('.aiaas-undeploy')!.click();
    b.querySelector<HTMLButtonElement>('.aiaas-copy')!.click();
    await flush();
    expect(calls).toEqual([
      'aiaas:insert-snippet {"name":"a"}',
      'aiaas:load-model {"name":"a"}',
      'aiaas:insert-snippet {"name":"a","kind":"predict"}',
      'aiaas:deploy {"name":"a"}',
      'aiaas:undeploy {"name":"b"}',
      'aiaas:copy-url {"url":"http://h/e"}'
    ]);
    // every action is a real <button> with an accessible name
    a.querySelectorAll('button').forEach(btn => {
      expect(btn.getAttribute('type')).toBe('button');
      expect(btn.getAttribute('aria-label') || btn.textContent).toBeTruthy();
    });
  });

  it('starts a lumino Drag of a notebook code cell holding the snippet after a move past the threshold', async () => {
    const { model: m, options } = setup();
    const view = new ModelsView(options);
    document.body.appendChild(view.node);
    m.setModels({ models: [model('iris', { aliases: { prod: 1 } })] });
    const started: Drag[] = [];
    const start = jest.spyOn(Drag.prototype, 'start');
    start.mockImplementation(function (this: Drag) {
      started.push(this);
      return Promise.resolve('copy');
    });
    try {
      const row = rows(view)[0];
      const name = row.querySelector('.aiaas-model-name')!;
      name.dispatchEvent(
        new MouseEvent('pointerdown', {
          bubbles: true,
          button: 0,
          clientX: 10,
          clientY: 10
        })
      );
      document.dispatchEvent(
        new MouseEvent('pointermove', {
          bubbles: true,
          clientX: 12,
          clientY: 11
        })
      );
      expect(started).toHaveLength(0); // under the threshold: still a click
      document.dispatchEvent(
        new MouseEvent('pointermove', {
          bubbles: true,
          clientX: 30,
          clientY: 12
        })
      );
      expect(started).toHaveLength(1);
      const drag = started[0];
      const source =
        'import aiaas_jupyter\nmodel = aiaas_jupyter.load_model("iris@prod")\nmodel';
      expect(drag.mimeData.getData(JUPYTER_CELL_MIME)).toEqual([
        { cell_type: 'code', source, metadata: {} }
      ]);
      expect(drag.mimeData.getData('text/plain')).toBe(source);
      expect(drag.proposedAction).toBe('copy');
      expect(start).toHaveBeenCalledWith(30, 12);
      // no native drag any more
      expect(row.getAttribute('draggable')).toBeNull();
      document.dispatchEvent(
        new MouseEvent('pointermove', {
          bubbles: true,
          clientX: 60,
          clientY: 12
        })
      );
      expect(started).toHaveLength(1); // one drag per press
    } finally {
      start.mockRestore();
      view.node.remove();
      view.dispose();
    }
  });

  it('filters on every term and says how many match', () => {
    const { model: m, options } = setup();
    const view = new ModelsView(options);
    m.setModels({
      models: [
        model('iris-rf'),
        model('iris-lr', { framework: 'torch' }),
        model('mnist')
      ]
    });
    view.filter = 'iris';
    expect(names(view)).toEqual(['iris-rf', 'iris-lr']);
    view.filterInput.value = 'iris torch';
    view.filterInput.dispatchEvent(new Event('input'));
    expect(names(view)).toEqual(['iris-lr']);
    expect(view.node.querySelector('.aiaas-summary')!.textContent).toBe(
      '1 of 3 models match'
    );
  });

  it('keeps 1,000 models to pages of the page-size setting, changed live', () => {
    const { model: m, options } = setup();
    const view = new ModelsView(options);
    m.setModels({ models: manyModels(1000) });
    expect(rows(view)).toHaveLength(100);
    const more = view.node.querySelector<HTMLButtonElement>('.aiaas-more')!;
    expect(more.hidden).toBe(false);
    expect(more.textContent).toBe('Show more (100 of 1000 shown)');
    more.click();
    expect(rows(view)).toHaveLength(200);
    expect(names(view)[199]).toBe('model-0199');
    m.setSettings({ pageSize: 30 });
    expect(rows(view)).toHaveLength(60);
    view.filter = 'model-0999';
    expect(names(view)).toEqual(['model-0999']);
    expect(more.hidden).toBe(true);
  });

  it('keeps unchanged rows untouched and patches a changed row in place', () => {
    const { model: m, options } = setup();
    const view = new ModelsView(options);
    const models = manyModels(300);
    m.setModels({ models });
    const before = rows(view);
    const observer = new MutationObserver(() => undefined);
    observer.observe(view.node, {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true
    });
    m.setModels({
      models: JSON.parse(
        JSON.stringify(
          models.map(x => (x.name === 'model-0005' ? { ...x, latest: 9 } : x))
        )
      )
    });
    const records = observer.takeRecords();
    observer.disconnect();
    const after = rows(view);
    expect(after.filter((el, i) => el !== before[i])).toHaveLength(0); // the same nodes, the changed one included
    expect(after).toHaveLength(100);
    expect(after[5].querySelector('.aiaas-model-version')!.textContent).toBe(
      'v9'
    );
    const touched = new Set(
      records.map(r =>
        (r.target instanceof Element
          ? r.target
          : r.target.parentElement)!.closest('.aiaas-model')
      )
    );
    expect(
      Array.from(touched).map(el => (el as HTMLElement).dataset.aiaasModel)
    ).toEqual(['model-0005']);
    // a model that disappears leaves, a new one appears in name order
    m.setModels({ models: [model('a-new'), ...models.slice(1, 3)] });
    expect(names(view)).toEqual(['a-new', 'model-0001', 'model-0002']);
  });

  it('expands to the versions with caret icons, aria-expanded and load/deploy commands per version', async () => {
    const { model: m, options, calls } = setup();
    m.detail = async name =>
      detail(name, [version(name, 2, ['prod']), version(name, 1)]);
    const view = new ModelsView(options);
    m.setModels({
      models: [
        model('iris', { latest: 2, versions: [1, 2], aliases: { prod: 2 } })
      ]
    });
    const expand = view.node.querySelector<HTMLButtonElement>('.aiaas-expand')!;
    expect(expand.getAttribute('aria-expanded')).toBe('false');
    expect(expand.getAttribute('aria-label')).toBe('Show the versions of iris');
    expect(expand.querySelector('svg')!.getAttribute('data-icon')).toBe(
      'ui-components:caret-right'
    );
    expand.click();
    expect(view.node.querySelector('.aiaas-expand')).toBe(expand); // the toggle keeps its node (and focus)
    expect(expand.getAttribute('aria-expanded')).toBe('true');
    expect(expand.querySelector('svg')!.getAttribute('data-icon')).toBe(
      'ui-components:caret-down'
    );
    expect(
      view.node.querySelector('.aiaas-model-versions .aiaas-loading')
    ).not.toBeNull();
    await flush();
    const versions = Array.from(
      view.node.querySelectorAll<HTMLElement>('.aiaas-version')
    );
    expect(versions.map(v => v.dataset.version)).toEqual(['2', '1']);
    expect(
      versions[0].querySelector('.aiaas-version-aliases')!.textContent
    ).toBe('@prod');
    versions[1]
      .querySelector<HTMLButtonElement>('.aiaas-deploy-version')!
      .click();
    versions[1]
      .querySelector<HTMLButtonElement>('.aiaas-load-version')!
      .click();
    await flush();
    expect(calls).toEqual([
      'aiaas:deploy {"name":"iris","ref":"iris:1"}',
      'aiaas:load-model {"name":"iris","ref":"iris:1"}'
    ]);
    // the same summary again: no new request
    m.setModels({
      models: [
        model('iris', { latest: 2, versions: [1, 2], aliases: { prod: 2 } })
      ]
    });
    await flush();
    expect(m.detailCalls).toEqual(['iris']);
    // a new version: read again; the first (patched) version row now acts on v3
    m.detail = async name =>
      detail(name, [
        version(name, 3),
        version(name, 2, ['prod']),
        version(name, 1)
      ]);
    m.setModels({
      models: [
        model('iris', { latest: 3, versions: [1, 2, 3], aliases: { prod: 2 } })
      ]
    });
    await flush();
    expect(m.detailCalls).toEqual(['iris', 'iris']);
    const first = view.node.querySelector<HTMLElement>('.aiaas-version')!;
    expect(first).toBe(versions[0]);
    expect(first.dataset.version).toBe('3');
    first.querySelector<HTMLButtonElement>('.aiaas-deploy-version')!.click();
    await flush();
    expect(calls[calls.length - 1]).toBe(
      'aiaas:deploy {"name":"iris","ref":"iris:3"}'
    );
  });

  it('reads the versions again when an alias moves (the old cache was keyed by the latest version only)', async () => {
    const { model: m, options, calls } = setup();
    let prodOn = 2;
    m.detail = async name =>
      detail(name, [
        version(name, 2, prodOn === 2 ? ['prod'] : []),
        version(name, 1, prodOn === 1 ? ['prod'] : [])
      ]);
    const view = new ModelsView(options);
    m.setModels({
      models: [
        model('iris', { latest: 2, versions: [1, 2], aliases: { prod: 2 } })
      ]
    });
    view.node.querySelector<HTMLButtonElement>('.aiaas-expand')!.click();
    await flush();
    const aliasOf = () =>
      Array.from(view.node.querySelectorAll<HTMLElement>('.aiaas-version')).map(
        v =>
          `${v.dataset.version}:${v.querySelector('.aiaas-version-aliases')!.textContent}`
      );
    expect(aliasOf()).toEqual(['2:@prod', '1:']);
    const v1 = view.node.querySelectorAll<HTMLElement>('.aiaas-version')[1];
    prodOn = 1; // `%aiaas alias iris prod 1`: same latest version, the alias moved
    m.setModels({
      models: [
        model('iris', { latest: 2, versions: [1, 2], aliases: { prod: 1 } })
      ]
    });
    await flush();
    expect(m.detailCalls).toEqual(['iris', 'iris']);
    expect(aliasOf()).toEqual(['2:', '1:@prod']);
    // the version rows were patched, and their buttons act on the version they show now
    expect(view.node.querySelectorAll<HTMLElement>('.aiaas-version')[1]).toBe(
      v1
    );
    v1.querySelector<HTMLButtonElement>('.aiaas-deploy-version')!.click();
    await flush();
    expect(calls).toEqual(['aiaas:deploy {"name":"iris","ref":"iris:1"}']);
  });

  it('lets the newest versions request win when answers come back out of order', async () => {
    const { model: m, options } = setup();
    const pending: ((d: IModelDetail) => void)[] = [];
    m.detail = () => new Promise(resolve => pending.push(resolve));
    const view = new ModelsView(options);
    m.setModels({ models: [model('iris', { latest: 1, versions: [1] })] });
    view.node.querySelector<HTMLButtonElement>('.aiaas-expand')!.click();
    m.setModels({ models: [model('iris', { latest: 2, versions: [1, 2] })] });
    expect(pending).toHaveLength(2);
    pending[1](detail('iris', [version('iris', 2), version('iris', 1)]));
    await flush();
    pending[0](detail('iris', [version('iris', 1)]));
    await flush();
    expect(
      Array.from(view.node.querySelectorAll<HTMLElement>('.aiaas-version')).map(
        v => v.dataset.version
      )
    ).toEqual(['2', '1']);
  });

  it('shows a failing versions request in the row and the section error in its alert, keeping the data', async () => {
    const { model: m, options } = setup();
    m.detail = async () => {
      throw { line: 'no model named iris (it was deleted)' };
    };
    const view = new ModelsView(options);
    m.setModels({ models: [model('iris')] });
    view.node.querySelector<HTMLButtonElement>('.aiaas-expand')!.click();
    await flush();
    expect(
      view.node.querySelector('.aiaas-model-versions .aiaas-version-error')!
        .textContent
    ).toBe('no model named iris (it was deleted)');
    m.setError(
      'models',
      'the Jupyter server cannot be reached: Failed to fetch'
    );
    expect(view.alertNode.textContent).toContain('cannot be reached');
    expect(view.node.querySelectorAll('[role="alert"]')).toHaveLength(1);
    expect(names(view)).toEqual(['iris']);
  });

  it('shows an error before any data instead of a blank section', () => {
    const { model: m, options } = setup();
    const view = new ModelsView(options);
    m.setError('models', '403 Forbidden from the AIaaS server extension');
    expect(view.alertNode.textContent).toBe(
      '403 Forbidden from the AIaaS server extension'
    );
    expect(view.node.querySelector('.aiaas-loading')).toBeNull();
  });

  it('announces an error once: the same error on refreshes and while typing in the filter does not touch the alert', () => {
    const { model: m, options } = setup();
    const view = new ModelsView(options);
    m.setModels({ models: [model('iris'), model('mnist')] });
    m.setError('models', 'boom');
    const alert = view.alertNode;
    const observer = new MutationObserver(() => undefined);
    observer.observe(view.node, {
      subtree: true,
      childList: true,
      characterData: true
    });
    m.setModels({ models: [model('iris'), model('mnist')] }); // a refresh with the same error kept
    m.setError('models', 'boom');
    view.filterInput.value = 'ir';
    view.filterInput.dispatchEvent(new Event('input'));
    view.filterInput.value = 'iri';
    view.filterInput.dispatchEvent(new Event('input'));
    const records = observer.takeRecords();
    observer.disconnect();
    const touchesAlert = records.filter(
      r =>
        alert.contains(r.target) ||
        Array.from(r.addedNodes).some(n => n === alert || n.contains(alert)) ||
        Array.from(r.removedNodes).some(n => n === alert || n.contains(alert))
    );
    expect(touchesAlert).toHaveLength(0);
    expect(view.node.querySelectorAll('[role="alert"]')).toEqual(
      expect.objectContaining({ length: 1 })
    );
    expect(names(view)).toEqual(['iris']);
    // a different error is written once
    m.setError('models', 'boom 2');
    expect(alert.textContent).toBe('boom 2');
    expect(view.node.querySelector('[role="alert"]')).toBe(alert);
  });
});
