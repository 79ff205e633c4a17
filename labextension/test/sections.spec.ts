import { ClusterView } from '../src/views/cluster';
import { EndpointsView } from '../src/views/endpoints';
import { JobsView } from '../src/views/jobs';
import { healthClass } from '../src/dom';
import { IJob } from '../src/types';

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

describe('JobsView', () => {
  it('shows running jobs with progress bars and recent ones with their outcome', () => {
    const view = new JobsView();
    view.setData([
      job('r1', 'running', { progress: 0.42, worker: 'w-0', gpus: 1 }),
      job('f1', 'finished', { version: 3, duration_s: 2.5, finished: '2026-11-23T10:00:03Z', progress: 1 }),
      job('e1', 'error', { error: 'DataError: column y not found', finished: '2026-11-23T10:00:04Z' })
    ]);
    const running = view.node.querySelector<HTMLElement>('.aiaas-jobs-active .aiaas-job[data-job="r1"]')!;
    const bar = running.querySelector('progress.aiaas-progress') as HTMLProgressElement;
    expect(Number(bar.getAttribute('value'))).toBeCloseTo(0.42);
    expect(running.querySelector('.aiaas-job-percent')!.textContent).toBe('42%');
    expect(running.querySelector('.aiaas-job-status')!.textContent).toBe('running');
    expect(running.querySelector('.aiaas-job-meta')!.textContent).toContain('1 GPU');
    const done = Array.from(view.node.querySelectorAll<HTMLElement>('.aiaas-jobs-done .aiaas-job'));
    expect(done.map(d => d.dataset.job)).toEqual(['e1', 'f1']);
    expect(done[0].querySelector('.aiaas-job-error')!.textContent).toBe('DataError: column y not found');
    expect(done[1].querySelector('.aiaas-job-model')!.textContent).toBe('m-f1 v3');
    expect(done[1].querySelector('.aiaas-job-duration')!.textContent).toBe('2.5 s');
  });

  it('has a placeholder for no jobs and keeps jobs on an error', () => {
    const view = new JobsView();
    view.setData([]);
    expect(view.node.textContent).toContain('No jobs yet');
    view.setData([job('r1', 'pending')]);
    view.setError('boom');
    expect(view.node.querySelector('.aiaas-error')!.textContent).toBe('boom');
    expect(view.node.querySelector('.aiaas-job[data-job="r1"]')).not.toBeNull();
  });
});

describe('EndpointsView', () => {
  it('lists deployments and remote endpoints with health dots and copy buttons', () => {
    const calls: string[] = [];
    const view = new EndpointsView({
      copy: t => calls.push(`copy ${t}`),
      undeployName: n => calls.push(`undeploy ${n}`)
    });
    view.setData({
      server: { running: true, url: 'http://127.0.0.1:5000' },
      deployments: [
        { name: 'iris', version: 2, ref: 'iris:2', framework: 'sklearn', url: 'http://127.0.0.1:5000/v2/models/iris', loaded_at: null, health: 'ready' }
      ],
      endpoints: [
        { name: 'gpt', protocol: 'openai', url: 'https://api.example/v1', model: 'gpt-x', api_key_env: 'OPENAI_API_KEY', api_key_set: false, health: 'up, needs a key (401)' },
        { name: 'old', protocol: 'v2', url: 'http://127.0.0.1:9', model: null, api_key_env: null, api_key_set: false, health: 'down (unreachable)' }
      ]
    });
    const iris = view.node.querySelector<HTMLElement>('.aiaas-endpoint[data-endpoint="iris"]')!;
    expect(iris.querySelector('.aiaas-health')!.classList.contains('aiaas-health-ok')).toBe(true);
    expect(iris.querySelector('.aiaas-endpoint-meta')!.textContent).toContain('own · v2 · sklearn');
    iris.querySelector<HTMLButtonElement>('.aiaas-copy')!.click();
    iris.querySelector<HTMLButtonElement>('.aiaas-undeploy')!.click();
    const gpt = view.node.querySelector<HTMLElement>('.aiaas-endpoint[data-endpoint="gpt"]')!;
    expect(gpt.querySelector('.aiaas-health')!.classList.contains('aiaas-health-warn')).toBe(true);
    expect(gpt.querySelector('.aiaas-endpoint-meta')!.textContent).toBe('remote · openai · gpt-x · key OPENAI_API_KEY (not set)');
    const old = view.node.querySelector<HTMLElement>('.aiaas-endpoint[data-endpoint="old"]')!;
    expect(old.querySelector('.aiaas-health')!.classList.contains('aiaas-health-bad')).toBe(true);
    expect(calls).toEqual(['copy http://127.0.0.1:5000/v2/models/iris', 'undeploy iris']);
    expect(view.node.querySelector('.aiaas-server')!.textContent).toBe('Model server: http://127.0.0.1:5000');
  });

  it('explains how to get an endpoint when there is none', () => {
    const view = new EndpointsView({ copy: () => undefined, undeployName: () => undefined });
    view.setData({ server: { running: false, url: null }, deployments: [], endpoints: [] });
    expect(view.node.textContent).toContain('not running');
    expect(view.node.textContent).toContain('%aiaas endpoints add');
  });

  it('maps health strings to dots', () => {
    expect(healthClass('ready')).toBe('aiaas-health-ok');
    expect(healthClass('up')).toBe('aiaas-health-ok');
    expect(healthClass('up, key rejected (403)')).toBe('aiaas-health-warn');
    expect(healthClass('not ready')).toBe('aiaas-health-bad');
    expect(healthClass('down (timeout)')).toBe('aiaas-health-bad');
  });
});

describe('ClusterView', () => {
  it('shows the address, totals and workers', () => {
    const view = new ClusterView();
    view.setData({
      scheduler: 'tcp://127.0.0.1:8786',
      reachable: true,
      dashboard: null,
      workers: [
        { address: 'tcp://127.0.0.1:1', name: 'gpu-0', threads: 4, memory_gb: 16, gpus: 1 },
        { address: 'tcp://127.0.0.1:2', name: 'gpu-1', threads: 4, memory_gb: 16, gpus: 1 }
      ],
      n_workers: 2,
      threads: 8,
      memory_gb: 32,
      gpus: 2
    });
    expect(view.node.querySelector('.aiaas-cluster-address')!.textContent).toBe('tcp://127.0.0.1:8786');
    expect(view.node.querySelector('.aiaas-cluster-totals')!.textContent).toBe('2 workers · 8 threads · 32 GiB · 2 GPUs');
    expect(Array.from(view.node.querySelectorAll('.aiaas-worker')).map(w => w.textContent)).toEqual([
      'gpu-0 · 4 thr · 16 GiB · 1 GPU',
      'gpu-1 · 4 thr · 16 GiB · 1 GPU'
    ]);
  });

  it('says when there is no cluster yet and when it is unreachable', () => {
    const view = new ClusterView();
    view.setData({ scheduler: null });
    expect(view.node.textContent).toContain('%aiaas connect');
    view.setData({ scheduler: 'tcp://127.0.0.1:9', reachable: false });
    expect(view.node.querySelector('.aiaas-cluster-down')!.textContent).toContain('not reachable');
  });

  it('says how old the kernel\'s snapshot is, and when it may be out of date', () => {
    const view = new ClusterView();
    const recorded = new Date(Date.now() - 5 * 60 * 1000).toISOString();
    view.setData({ scheduler: 'tcp://127.0.0.1:8786', reachable: true, recorded_at: recorded, stale: false, workers: [] });
    expect(view.node.querySelector('.aiaas-cluster-age')!.textContent).toBe('as recorded by its kernel 5 min ago');
    view.setData({ scheduler: 'tcp://127.0.0.1:8786', reachable: true, recorded_at: recorded, stale: true, workers: [] });
    expect(view.node.querySelector('.aiaas-cluster-stale')!.textContent).toContain('(may be out of date)');
    view.setData({ scheduler: 'tcp://127.0.0.1:8786', reachable: false, recorded_at: recorded });
    expect(view.node.querySelector('.aiaas-cluster-down')!.textContent).toContain('5 min ago');
  });
});
