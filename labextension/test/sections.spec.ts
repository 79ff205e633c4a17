/// <reference types="node" />
import { readFileSync } from 'fs';
import { join } from 'path';

import { healthClass } from '../src/dom';
import { TICK_MS } from '../src/views/base';
import { ClusterView } from '../src/views/cluster';
import { EndpointsView } from '../src/views/endpoints';
import { JobsView } from '../src/views/jobs';
import { IEndpointsAnswer, IJob } from '../src/types';
import { flush, setup } from './fakeModel';

function job(id: string, status: string, extra: Partial<IJob> = {}): IJob {
  return {
    id,
    model: `m-${id}`,
    status,
    progress: null,
    worker: null,
    gpus: 0,
    submitted: '2026-11-23T10:00:00Z',
    started: null,
    finished: null,
    duration_s: null,
    version: null,
    error: null,
    ...extra
  };
}

function endpoints(
  health = 'ready',
  gptHealth = 'up, needs a key (401)'
): IEndpointsAnswer {
  return {
    server: { running: true, url: 'http://127.0.0.1:5000' },
    deployments: [
      {
        name: 'iris',
        version: 2,
        ref: 'iris:2',
        framework: 'sklearn',
        url: 'http://127.0.0.1:5000/v2/models/iris',
        loaded_at: null,
        health
      }
    ],
    endpoints: [
      {
        name: 'gpt',
        protocol: 'openai',
        url: 'https://api.example/v1',
        model: 'gpt-x',
        api_key_env: 'OPENAI_API_KEY',
        api_key_set: false,
        health: gptHealth
      },
      {
        name: 'old',
        protocol: 'v2',
        url: 'http://127.0.0.1:9',
        model: null,
        api_key_env: null,
        api_key_set: false,
        health: 'down (unreachable)'
      }
    ]
  };
}

/** Select all of `node`'s text (what a user does before copying a URL). */
function select(node: Node): Range {
  const range = document.createRange();
  range.selectNodeContents(node);
  const selection = window.getSelection()!;
  selection.removeAllRanges();
  selection.addRange(range);
  return range;
}

describe('JobsView', () => {
  it('shows running jobs with progress bars and recent ones with their outcome', () => {
    const { model: m, options } = setup();
    const view = new JobsView(options);
    m.setJobs([
      job('r1', 'running', { progress: 0.42, worker: 'w-0', gpus: 1 }),
      job('f1', 'finished', {
        version: 3,
        duration_s: 2.5,
        finished: '2026-11-23T10:00:03Z',
        progress: 1
      }),
      job('e1', 'error', {
        error: 'DataError: column y not found',
        finished: '2026-11-23T10:00:04Z'
      })
    ]);
    const running = view.node.querySelector<HTMLElement>(
      '.aiaas-jobs-active .aiaas-job[data-job="r1"]'
    )!;
    const bar = running.querySelector(
      'progress.aiaas-progress'
    ) as HTMLProgressElement;
    expect(Number(bar.getAttribute('value'))).toBeCloseTo(0.42);
    expect(running.querySelector('.aiaas-job-percent')!.textContent).toBe(
      '42%'
    );
    expect(running.querySelector('.aiaas-job-status')!.textContent).toBe(
      'running'
    );
    expect(running.querySelector('.aiaas-job-meta')!.textContent).toContain(
      '1 GPU'
    );
    const done = Array.from(
      view.node.querySelectorAll<HTMLElement>('.aiaas-jobs-done .aiaas-job')
    );
    expect(done.map(d => d.dataset.job)).toEqual(['e1', 'f1']);
    expect(done[0].querySelector('.aiaas-job-error-text')!.textContent).toBe(
      'DataError: column y not found'
    );
    expect(done[1].querySelector('.aiaas-job-model')!.textContent).toBe(
      'm-f1 v3'
    );
    expect(done[1].querySelector('.aiaas-job-duration')!.textContent).toBe(
      '2.5 s'
    );
  });

  it('gives a failed job a status class of its own, not the error message class (bug: the whole row was small and red)', () => {
    const { model: m, options } = setup();
    const view = new JobsView(options);
    m.setJobs([
      job('e1', 'error', { error: 'boom', finished: '2026-11-23T10:00:04Z' })
    ]);
    const row = view.node.querySelector<HTMLElement>(
      '.aiaas-job[data-job="e1"]'
    )!;
    expect(row.classList.contains('aiaas-job-status-error')).toBe(true);
    expect(row.classList.contains('aiaas-job-error')).toBe(false);
    // the message has its own class, which no row carries
    const message = row.querySelector('.aiaas-job-error-text')!;
    expect(message.textContent).toBe('boom');
    const rowClasses = new Set(Array.from(row.classList));
    expect(
      Array.from(message.classList).filter(c => rowClasses.has(c))
    ).toEqual([]);
  });

  it('styles only the status word and the message of a failed job, not its row (base.css)', () => {
    // the rules of base.css whose selector matches an element, and what they declare
    const css = readFileSync(
      join(__dirname, '..', 'style', 'base.css'),
      'utf8'
    ).replace(/\/\*[\s\S]*?\*\//g, '');
    const rules = Array.from(css.matchAll(/([^{}]+)\{([^{}]*)\}/g)).map(r => ({
      selector: r[1].trim(),
      body: r[2]
    }));
    const declared = (el: Element, prop: string) =>
      rules
        .filter(r => el.matches(r.selector))
        .map(r =>
          new RegExp(`(^|[;\\s])${prop}\\s*:\\s*([^;]+)`)
            .exec(r.body)?.[2]
            .trim()
        )
        .filter(Boolean);
    const { model: m, options } = setup();
    const view = new JobsView(options);
    m.setJobs([
      job('e1', 'error', { error: 'boom', finished: '2026-11-23T10:00:04Z' })
    ]);
    const row = view.node.querySelector<HTMLElement>(
      '.aiaas-job[data-job="e1"]'
    )!;
    expect(declared(row, 'color')).toEqual([]);
    expect(declared(row, 'font-size')).toEqual([]);
    const message = row.querySelector('.aiaas-job-error-text')!;
    expect(declared(message, 'color')).toEqual(['var(--jp-error-color1)']);
    expect(declared(message, 'font-size')).toEqual(['var(--jp-ui-font-size0)']);
    expect(
      declared(row.querySelector('.aiaas-job-status')!, 'color')
    ).toContain('var(--jp-error-color1)');
    view.dispose();
  });

  it("lists the recent-jobs setting's number of finished jobs, changed live", () => {
    const { model: m, options } = setup();
    const view = new JobsView(options);
    m.setJobs(
      Array.from({ length: 30 }, (_, i) =>
        job(`f${i}`, 'finished', {
          finished: `2026-11-23T10:00:${String(i).padStart(2, '0')}Z`
        })
      )
    );
    expect(
      view.node.querySelectorAll('.aiaas-jobs-done .aiaas-job')
    ).toHaveLength(20);
    m.setSettings({ recentJobs: 5 });
    expect(
      view.node.querySelectorAll('.aiaas-jobs-done .aiaas-job')
    ).toHaveLength(5);
  });

  it('has a placeholder for no jobs and keeps jobs on an error', () => {
    const { model: m, options } = setup();
    const view = new JobsView(options);
    expect(view.node.querySelector<HTMLElement>('.aiaas-loading')!.hidden).toBe(
      false
    );
    m.setJobs([]);
    expect(
      view.node.querySelector<HTMLElement>('.aiaas-placeholder')!.hidden
    ).toBe(false);
    expect(
      view.node.querySelector<HTMLElement>('.aiaas-placeholder')!.textContent
    ).toContain('No jobs yet');
    m.setJobs([job('r1', 'pending')]);
    m.setError('jobs', 'boom');
    expect(view.alertNode.textContent).toBe('boom');
    expect(view.node.querySelector('.aiaas-job[data-job="r1"]')).not.toBeNull();
  });

  describe('times', () => {
    afterEach(() => jest.useRealTimers());

    it('tick on the view timer without new data: relative times and running durations', () => {
      jest.useFakeTimers({ now: Date.parse('2026-11-23T10:00:05Z') });
      const { model: m, options } = setup();
      const view = new JobsView(options);
      m.setJobs([
        job('r1', 'running', {
          started: '2026-11-23T10:00:00Z',
          progress: 0.1
        }),
        job('f1', 'finished', {
          finished: '2026-11-23T10:00:00Z',
          duration_s: 3
        })
      ]);
      const running = view.node.querySelector(
        '.aiaas-job[data-job="r1"] .aiaas-job-running-for'
      )!;
      const finished = view.node.querySelector(
        '.aiaas-job[data-job="f1"] .aiaas-job-finished-at'
      )!;
      const rowsBefore = Array.from(view.node.querySelectorAll('.aiaas-job'));
      expect(running.textContent).toBe('5.0 s');
      expect(finished.textContent).toBe('5 s ago');
      jest.advanceTimersByTime(6 * TICK_MS); // one minute, no new data
      expect(running.textContent).toBe('1 min 5 s');
      expect(finished.textContent).toBe('1 min ago');
      // only the time texts changed: the rows are the same nodes
      expect(Array.from(view.node.querySelectorAll('.aiaas-job'))).toHaveLength(
        2
      );
      Array.from(view.node.querySelectorAll('.aiaas-job')).forEach((el, i) =>
        expect(el).toBe(rowsBefore[i])
      );
      view.dispose();
      jest.advanceTimersByTime(6 * TICK_MS);
      expect(finished.textContent).toBe('1 min ago'); // a disposed view stops ticking
    });
  });
});

describe('EndpointsView', () => {
  it('lists deployments and remote endpoints with health dots, context-menu data and commands', async () => {
    const { model: m, options, calls } = setup();
    const view = new EndpointsView(options);
    m.setEndpoints(endpoints());
    const iris = view.node.querySelector<HTMLElement>(
      '.aiaas-endpoint-row[data-aiaas-endpoint="iris"]'
    )!;
    expect(iris.dataset.aiaasUrl).toBe('http://127.0.0.1:5000/v2/models/iris');
    expect(
      iris.querySelector('.aiaas-health')!.classList.contains('aiaas-health-ok')
    ).toBe(true);
    expect(iris.querySelector('.aiaas-endpoint-meta')!.textContent).toContain(
      'own · v2 · sklearn'
    );
    iris.querySelector<HTMLButtonElement>('.aiaas-copy')!.click();
    iris.querySelector<HTMLButtonElement>('.aiaas-undeploy')!.click();
    const gpt = view.node.querySelector<HTMLElement>(
      '.aiaas-endpoint[data-aiaas-endpoint="gpt"]'
    )!;
    expect(
      gpt
        .querySelector('.aiaas-health')!
        .classList.contains('aiaas-health-warn')
    ).toBe(true);
    expect(gpt.querySelector('.aiaas-endpoint-meta')!.textContent).toBe(
      'remote · openai · gpt-x · key OPENAI_API_KEY (not set)'
    );
    expect(gpt.querySelector('.aiaas-undeploy')).toBeNull();
    const old = view.node.querySelector<HTMLElement>(
      '.aiaas-endpoint[data-aiaas-endpoint="old"]'
    )!;
    expect(
      old.querySelector('.aiaas-health')!.classList.contains('aiaas-health-bad')
    ).toBe(true);
    await flush();
    expect(calls).toEqual([
      'aiaas:copy-url {"url":"http://127.0.0.1:5000/v2/models/iris"}',
      'aiaas:undeploy {"name":"iris"}'
    ]);
    expect(view.node.querySelector('.aiaas-server')!.textContent).toBe(
      'Model server: http://127.0.0.1:5000'
    );
  });

  it('keeps focus on Copy URL and a selected URL across a refresh that changes another row (bug: rebuilt every poll)', () => {
    const { model: m, options } = setup();
    const view = new EndpointsView(options);
    document.body.appendChild(view.node);
    try {
      m.setEndpoints(endpoints());
      const copy = view.node.querySelector<HTMLButtonElement>(
        '[data-aiaas-endpoint="iris"] .aiaas-copy'
      )!;
      copy.focus();
      expect(document.activeElement).toBe(copy);
      const url = view.node.querySelector(
        '[data-aiaas-endpoint="old"] .aiaas-endpoint-url'
      )!;
      const range = select(url.firstChild!);
      // the next poll: gpt's health changed, iris and old did not
      m.setEndpoints(endpoints('ready', 'up'));
      expect(
        view.node
          .querySelector('[data-aiaas-endpoint="gpt"] .aiaas-health')!
          .classList.contains('aiaas-health-ok')
      ).toBe(true);
      expect(document.activeElement).toBe(copy);
      expect(copy.isConnected).toBe(true);
      const selection = window.getSelection()!;
      expect(selection.rangeCount).toBe(1);
      expect(selection.getRangeAt(0)).toBe(range);
      expect(range.startContainer.isConnected).toBe(true);
      expect(selection.toString()).toBe('http://127.0.0.1:9');
      // iris itself changing (health) patches its row in place: focus stays on its button
      m.setEndpoints(endpoints('not ready', 'up'));
      expect(
        view.node
          .querySelector('[data-aiaas-endpoint="iris"] .aiaas-health')!
          .classList.contains('aiaas-health-bad')
      ).toBe(true);
      expect(document.activeElement).toBe(copy);
    } finally {
      view.node.remove();
      view.dispose();
    }
  });

  it('explains how to get an endpoint when there is none', () => {
    const { model: m, options } = setup();
    const view = new EndpointsView(options);
    m.setEndpoints({
      server: { running: false, url: null },
      deployments: [],
      endpoints: []
    });
    expect(view.node.querySelector('.aiaas-server')!.textContent).toContain(
      'not running'
    );
    const placeholder =
      view.node.querySelector<HTMLElement>('.aiaas-placeholder')!;
    expect(placeholder.hidden).toBe(false);
    expect(placeholder.textContent).toContain('%aiaas endpoints add');
  });

  it('maps health strings to dots', () => {
    expect(healthClass('ready')).toBe('aiaas-health-ok');
    expect(healthClass('up')).toBe('aiaas-health-ok');
    expect(healthClass('up, key rejected (403)')).toBe('aiaas-health-warn');
    expect(healthClass('not ready')).toBe('aiaas-health-bad');
    expect(healthClass('down (timeout)')).toBe('aiaas-health-bad');
  });

  it('announces an error once across polls (bug: role=alert re-inserted every poll)', () => {
    const { model: m, options } = setup();
    const view = new EndpointsView(options);
    m.setEndpoints(endpoints());
    m.setError('endpoints', 'the model server does not answer');
    const alert = view.alertNode;
    const observer = new MutationObserver(() => undefined);
    observer.observe(view.node, {
      subtree: true,
      childList: true,
      characterData: true
    });
    for (let i = 0; i < 3; i++) {
      m.setEndpoints(endpoints(i % 2 ? 'ready' : 'not ready'));
      m.setError('endpoints', 'the model server does not answer');
    }
    const records = observer.takeRecords();
    observer.disconnect();
    expect(
      records.filter(
        r =>
          alert.contains(r.target) ||
          (r.addedNodes.length && Array.from(r.addedNodes).includes(alert))
      )
    ).toHaveLength(0);
    expect(view.node.querySelectorAll('[role="alert"]')).toHaveLength(1);
  });
});

describe('ClusterView', () => {
  const cluster = (workers: { address: string; name: string }[]) => ({
    scheduler: 'tcp://127.0.0.1:8786',
    reachable: true,
    dashboard: null,
    workers: workers.map(w => ({ ...w, threads: 4, memory_gb: 16, gpus: 1 })),
    n_workers: workers.length,
    threads: 4 * workers.length,
    memory_gb: 16 * workers.length,
    gpus: workers.length
  });

  it('shows the address, totals and workers', () => {
    const { model: m, options } = setup();
    const view = new ClusterView(options);
    m.setCluster(
      cluster([
        { address: 'tcp://127.0.0.1:1', name: 'gpu-0' },
        { address: 'tcp://127.0.0.1:2', name: 'gpu-1' }
      ])
    );
    expect(view.node.querySelector('.aiaas-cluster-address')!.textContent).toBe(
      'tcp://127.0.0.1:8786'
    );
    expect(view.node.querySelector('.aiaas-cluster-totals')!.textContent).toBe(
      '2 workers · 8 threads · 32 GiB · 2 GPUs'
    );
    expect(
      Array.from(view.node.querySelectorAll('.aiaas-worker')).map(
        w => w.textContent
      )
    ).toEqual([
      'gpu-0 · 4 thr · 16 GiB · 1 GPU',
      'gpu-1 · 4 thr · 16 GiB · 1 GPU'
    ]);
  });

  it('keeps worker rows and summary lines by key: a selected address survives a worker joining', () => {
    const { model: m, options } = setup();
    const view = new ClusterView(options);
    document.body.appendChild(view.node);
    try {
      m.setCluster(cluster([{ address: 'tcp://127.0.0.1:2', name: 'gpu-1' }]));
      const address = view.node.querySelector('.aiaas-cluster-address')!;
      const worker = view.node.querySelector('.aiaas-worker')!;
      const range = select(address.firstChild!);
      m.setCluster(
        cluster([
          { address: 'tcp://127.0.0.1:1', name: 'gpu-0' },
          { address: 'tcp://127.0.0.1:2', name: 'gpu-1' }
        ])
      );
      expect(view.node.querySelector('.aiaas-cluster-address')).toBe(address);
      expect(view.node.querySelectorAll('.aiaas-worker')[1]).toBe(worker);
      expect(
        view.node.querySelector('.aiaas-cluster-totals')!.textContent
      ).toBe('2 workers · 8 threads · 32 GiB · 2 GPUs');
      expect(window.getSelection()!.getRangeAt(0)).toBe(range);
      expect(window.getSelection()!.toString()).toBe('tcp://127.0.0.1:8786');
    } finally {
      view.node.remove();
      view.dispose();
    }
  });

  it('says when there is no cluster yet and when it is unreachable', () => {
    const { model: m, options } = setup();
    const view = new ClusterView(options);
    m.setCluster({ scheduler: null });
    expect(view.node.textContent).toContain('%aiaas connect');
    m.setCluster({ scheduler: 'tcp://127.0.0.1:9', reachable: false });
    expect(
      view.node.querySelector('.aiaas-cluster-down')!.textContent
    ).toContain('not reachable');
  });

  it("says how old the kernel's snapshot is, and when it may be out of date", () => {
    const { model: m, options } = setup();
    const view = new ClusterView(options);
    const recorded = new Date(Date.now() - 5 * 60 * 1000).toISOString();
    m.setCluster({
      scheduler: 'tcp://127.0.0.1:8786',
      reachable: true,
      recorded_at: recorded,
      stale: false,
      workers: []
    });
    expect(view.node.querySelector('.aiaas-cluster-age')!.textContent).toBe(
      'as recorded by its kernel 5 min ago'
    );
    m.setCluster({
      scheduler: 'tcp://127.0.0.1:8786',
      reachable: true,
      recorded_at: recorded,
      stale: true,
      workers: []
    });
    expect(
      view.node.querySelector('.aiaas-cluster-stale')!.textContent
    ).toContain('(may be out of date)');
    m.setCluster({
      scheduler: 'tcp://127.0.0.1:8786',
      reachable: false,
      recorded_at: recorded
    });
    expect(
      view.node.querySelector('.aiaas-cluster-down')!.textContent
    ).toContain('5 min ago');
    view.dispose();
  });
});
