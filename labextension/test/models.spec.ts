import { IModelActions, ModelsView, PAGE_SIZE, SNIPPET_MIME } from '../src/views/models';
import { IModelDetail, IModelSummary } from '../src/types';
import { manyModels, model } from './fixtures';

function recorder() {
  const calls: string[] = [];
  let detail: (name: string) => Promise<IModelDetail> = async name => ({
    name,
    deployed: false,
    endpoint: null,
    deployed_version: null,
    versions: [
      { version: 2, ref: `${name}:2`, framework: 'sklearn', metrics: { accuracy: 0.97 }, params: {}, aliases: ['prod'], created: '2026-11-23T10:00:00Z', job_id: 'j2' },
      { version: 1, ref: `${name}:1`, framework: 'sklearn', metrics: { accuracy: 0.9 }, params: {}, aliases: [], created: '2026-11-23T09:00:00Z', job_id: 'j1' }
    ]
  });
  const actions: IModelActions = {
    insert: (m: IModelSummary, kind?: string) => calls.push(`insert ${m.name} ${kind ?? 'default'}`),
    deploy: (m: IModelSummary, ref?: string) => calls.push(`deploy ${m.name} ${ref ?? ''}`.trim()),
    undeploy: (m: IModelSummary) => calls.push(`undeploy ${m.name}`),
    copy: (text: string) => calls.push(`copy ${text}`),
    details: name => {
      calls.push(`details ${name}`);
      return detail(name);
    }
  };
  return { calls, actions, setDetail: (fn: typeof detail) => (detail = fn) };
}

const flush = () => new Promise(resolve => setTimeout(resolve, 0));
const rows = (view: ModelsView) => Array.from(view.node.querySelectorAll<HTMLElement>('.aiaas-model'));
const names = (view: ModelsView) => rows(view).map(r => r.dataset.model);

describe('ModelsView', () => {
  it('says how to start when there is no registry, and when it is empty', () => {
    const view = new ModelsView(recorder().actions);
    expect(view.node.querySelector('.aiaas-loading')?.textContent).toBe('Loading models…');
    view.setData({ models: [], registry: { home: '/h', exists: false } });
    const empty = view.node.querySelector('.aiaas-empty')!;
    expect(empty.textContent).toContain('No registry yet at /h');
    expect(empty.textContent).toContain('%load_ext aiaas_jupyter');
    expect(empty.textContent).toContain('%aiaas connect');
    view.setData({ models: [], registry: { home: '/h', exists: true } });
    expect(view.node.querySelector('.aiaas-empty')!.textContent).toContain('No models registered yet');
  });

  it('renders a row per model with version, framework, metric, aliases and badge', () => {
    const view = new ModelsView(recorder().actions);
    view.setData({
      models: [
        model('iris', { latest: 2, aliases: { prod: 1 }, deployed: true, deployed_version: 1, endpoint: 'http://h/v2/models/iris' }),
        model('mnist', { framework: 'torch', metric: { name: 'val_accuracy', value: 0.912 } })
      ]
    });
    expect(names(view)).toEqual(['iris', 'mnist']);
    const [iris, mnist] = rows(view);
    expect(iris.querySelector('.aiaas-model-version')!.textContent).toBe('v2');
    expect(iris.querySelector('.aiaas-model-framework')!.textContent).toBe('sklearn');
    expect(iris.querySelector('.aiaas-model-metric')!.textContent).toBe('accuracy 0.967');
    expect(iris.querySelector('.aiaas-model-aliases')!.textContent).toBe('@prod→v1');
    expect(iris.querySelector('.aiaas-badge-deployed')).not.toBeNull();
    expect(iris.querySelector('.aiaas-undeploy')).not.toBeNull();
    expect(iris.querySelector('.aiaas-deploy')).toBeNull();
    expect(mnist.querySelector('.aiaas-badge-deployed')).toBeNull();
    expect(mnist.querySelector('.aiaas-deploy')).not.toBeNull();
    expect(mnist.querySelector('.aiaas-model-metric')!.textContent).toBe('val_accuracy 0.912');
    expect(view.node.querySelector('.aiaas-summary')!.textContent).toBe('2 models');
  });

  it('wires every button to its action', () => {
    const { calls, actions } = recorder();
    const view = new ModelsView(actions);
    view.setData({ models: [model('a'), model('b', { deployed: true, endpoint: 'http://h/e' })] });
    const [a, b] = rows(view);
    a.querySelector<HTMLButtonElement>('.aiaas-model-name')!.click();
    a.querySelector<HTMLButtonElement>('.aiaas-insert-load')!.click();
    a.querySelector<HTMLButtonElement>('.aiaas-insert-predict')!.click();
    a.querySelector<HTMLButtonElement>('.aiaas-deploy')!.click();
    b.querySelector<HTMLButtonElement>('.aiaas-undeploy')!.click();
    b.querySelector<HTMLButtonElement>('.aiaas-copy')!.click();
    expect(calls).toEqual([
      'insert a default',
      'insert a load',
      'insert a predict',
      'deploy a',
      'undeploy b',
      'copy http://h/e'
    ]);
    // every action is a real <button>: reachable with Tab, activated with Enter/Space
    expect(a.querySelectorAll('button').length).toBeGreaterThanOrEqual(5);
    a.querySelectorAll('button').forEach(btn => expect(btn.getAttribute('type')).toBe('button'));
  });

  it('puts the default snippet on a drag', () => {
    const view = new ModelsView(recorder().actions);
    view.setData({ models: [model('iris', { aliases: { prod: 1 } })] });
    const row = rows(view)[0];
    expect(row.getAttribute('draggable')).toBe('true');
    const data: Record<string, string> = {};
    const event = new Event('dragstart', { bubbles: true }) as DragEvent;
    Object.defineProperty(event, 'dataTransfer', {
      value: { setData: (k: string, v: string) => (data[k] = v), effectAllowed: 'none' }
    });
    row.dispatchEvent(event);
    expect(data['text/plain']).toBe('import aiaas_jupyter\nmodel = aiaas_jupyter.load_model("iris@prod")\nmodel');
    expect(data[SNIPPET_MIME]).toBe(data['text/plain']);
  });

  it('filters on every term and says how many match', () => {
    const view = new ModelsView(recorder().actions);
    view.setData({ models: [model('iris-rf'), model('iris-lr', { framework: 'torch' }), model('mnist')] });
    view.filter = 'iris';
    expect(names(view)).toEqual(['iris-rf', 'iris-lr']);
    view.filterInput.value = 'iris torch';
    view.filterInput.dispatchEvent(new Event('input'));
    expect(names(view)).toEqual(['iris-lr']);
    expect(view.node.querySelector('.aiaas-summary')!.textContent).toBe('1 of 3 models match');
  });

  it('keeps 1,000 models to one page in the DOM and pages with Show more', () => {
    const view = new ModelsView(recorder().actions);
    const t0 = performance.now();
    view.setData({ models: manyModels(1000) });
    const first = performance.now() - t0;
    expect(rows(view)).toHaveLength(PAGE_SIZE);
    const more = view.node.querySelector<HTMLButtonElement>('.aiaas-more')!;
    expect(more.textContent).toBe(`Show more (${PAGE_SIZE} of 1000 shown)`);
    more.click();
    expect(rows(view)).toHaveLength(2 * PAGE_SIZE);
    expect(names(view)[2 * PAGE_SIZE - 1]).toBe('model-0199');
    view.filter = 'model-0999';
    expect(names(view)).toEqual(['model-0999']);
    expect(view.node.querySelector('.aiaas-more')).toBeNull();
    // the first render of 1,000 models stays well under a frame budget's worth of seconds
    expect(first).toBeLessThan(1000);
  });

  it('reuses unchanged rows across refreshes and rebuilds only changed ones', () => {
    const view = new ModelsView(recorder().actions);
    const models = manyModels(300);
    view.setData({ models });
    const before = rows(view);
    const changed = models.map(m => (m.name === 'model-0005' ? { ...m, latest: 9 } : m));
    const t0 = performance.now();
    view.setData({ models: JSON.parse(JSON.stringify(changed)) });
    const again = performance.now() - t0;
    const after = rows(view);
    expect(after).toHaveLength(PAGE_SIZE);
    expect(after.filter((el, i) => el !== before[i]).map(el => el.dataset.model)).toEqual(['model-0005']);
    expect(after[5].querySelector('.aiaas-model-version')!.textContent).toBe('v9');
    expect(again).toBeLessThan(500);
    // a model that disappears leaves, a new one appears in name order
    view.setData({ models: [model('a-new'), ...models.slice(1, 3)] });
    expect(names(view)).toEqual(['a-new', 'model-0001', 'model-0002']);
  });

  it('expands to the versions, with a deploy button per version', async () => {
    const { calls, actions } = recorder();
    const view = new ModelsView(actions);
    view.setData({ models: [model('iris', { latest: 2, versions: [1, 2] })] });
    const expand = view.node.querySelector<HTMLButtonElement>('.aiaas-expand')!;
    expect(expand.getAttribute('aria-expanded')).toBe('false');
    expand.click();
    expect(view.node.querySelector('.aiaas-model-versions .aiaas-loading')).not.toBeNull();
    await flush();
    const versions = Array.from(view.node.querySelectorAll<HTMLElement>('.aiaas-version'));
    expect(versions.map(v => v.dataset.version)).toEqual(['2', '1']);
    expect(versions[0].querySelector('.aiaas-version-aliases')!.textContent).toBe('@prod');
    expect(versions[0].querySelector('.aiaas-version-metric')!.textContent).toBe('accuracy 0.97');
    versions[1].querySelector<HTMLButtonElement>('.aiaas-deploy-version')!.click();
    expect(calls).toEqual(['details iris', 'deploy iris iris:1']);
    expect(view.node.querySelector('.aiaas-expand')!.getAttribute('aria-expanded')).toBe('true');
    // the same data again: no new request; a new version: the versions are read again
    view.setData({ models: [model('iris', { latest: 2, versions: [1, 2] })] });
    view.setData({ models: [model('iris', { latest: 3, versions: [1, 2, 3] })] });
    await flush();
    expect(calls.filter(c => c === 'details iris')).toHaveLength(2);
  });

  it('shows a failing versions request and an API error in the section, keeping the data', async () => {
    const { actions, setDetail } = recorder();
    setDetail(async () => {
      throw { line: 'no model named iris (it was deleted)' };
    });
    const view = new ModelsView(actions);
    view.setData({ models: [model('iris')] });
    view.node.querySelector<HTMLButtonElement>('.aiaas-expand')!.click();
    await flush();
    expect(view.node.querySelector('.aiaas-model-versions .aiaas-error')!.textContent).toBe(
      'no model named iris (it was deleted)'
    );
    view.setError('the Jupyter server cannot be reached: Failed to fetch');
    expect(view.node.querySelector('.aiaas-message .aiaas-error')!.textContent).toContain('cannot be reached');
    expect(names(view)).toEqual(['iris']);
  });

  it('shows an error before any data instead of a blank section', () => {
    const view = new ModelsView(recorder().actions);
    view.setError('403 Forbidden from the AIaaS server extension');
    expect(view.node.querySelector('.aiaas-error')!.textContent).toBe('403 Forbidden from the AIaaS server extension');
    expect(view.node.querySelector('.aiaas-loading')).toBeNull();
  });
});
