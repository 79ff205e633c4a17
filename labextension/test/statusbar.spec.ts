/**
 * The status-bar item on a real `AiaasModel` (fake API, real Poll with jest fake timers):
 * it shows the running count, hides at 0, and holds a consumer while shown so the model keeps
 * polling with the panel hidden.
 */

import './lumino-jsdom';

import { Widget } from '@lumino/widgets';

import { AiaasModel, IModelSource } from '../src/model';
import { RunningJobsItem } from '../src/statusbar';
import { IJob } from '../src/types';

const fmt = (s: string, args: unknown[]) =>
  s.replace(/%(\d+)/g, (_, i) => String(args[Number(i) - 1]));
const trans: any = {
  __: (s: string, ...args: unknown[]) => fmt(s, args),
  _n: (s: string, p: string, n: number, ...args: unknown[]) =>
    fmt(n === 1 ? s : p, [n, ...args])
};

function job(id: string, status: string): IJob {
  return {
    id,
    model: 'm',
    status,
    progress: null,
    worker: null,
    gpus: null,
    submitted: null,
    started: null,
    finished: null,
    duration_s: null,
    version: null,
    error: null
  };
}

describe('RunningJobsItem', () => {
  let jobs: IJob[];
  let jobCalls: number;
  let m: AiaasModel;
  let item: RunningJobsItem;
  let opened: number;

  beforeEach(() => {
    jest.useFakeTimers();
    jobs = [];
    jobCalls = 0;
    opened = 0;
    const source: IModelSource = {
      models: async () => ({ models: [] }),
      model: async () => ({}) as any,
      jobs: async () => {
        jobCalls += 1;
        return jobs;
      },
      sweeps: async () => [],
      endpoints: async () => ({
        server: { running: false, url: null },
        deployments: [],
        endpoints: []
      }),
      cluster: async () => ({ scheduler: null })
    };
    m = new AiaasModel(source);
    item = new RunningJobsItem(m, trans, () => (opened += 1));
    Widget.attach(item, document.body);
  });

  afterEach(() => {
    item.dispose();
    m.dispose();
    jest.useRealTimers();
  });

  it('shows "AIaaS: N running" for pending/running jobs, hidden at 0', async () => {
    const active: boolean[] = [];
    item.activeChanged.connect(() => active.push(item.isActive));
    expect(item.isHidden).toBe(true);
    jobs = [
      job('a', 'running'),
      job('b', 'pending'),
      job('c', 'finished'),
      job('d', 'error')
    ];
    await m.refresh(['jobs']);
    expect(item.isHidden).toBe(false);
    expect(item.node.textContent).toBe('AIaaS: 2 running');
    jobs = [job('a', 'running'), job('b', 'finished')];
    await m.refresh(['jobs']);
    expect(item.node.textContent).toBe('AIaaS: 1 running');
    jobs = [job('a', 'finished')];
    await m.refresh(['jobs']);
    expect(item.isHidden).toBe(true);
    expect(active).toEqual([true, false]);
  });

  it('keeps the model polling while the panel is hidden and jobs run, then lets it stop', async () => {
    m.setVisible(true);
    await jest.advanceTimersByTimeAsync(100);
    m.setVisible(false);
    await jest.advanceTimersByTimeAsync(5000);
    expect(m.isPolling).toBe(false);
    jobs = [job('a', 'running')];
    await m.refresh(['jobs']); // e.g. the refresh command
    expect(m.isPolling).toBe(true);
    jobCalls = 0;
    await jest.advanceTimersByTimeAsync(30000);
    expect(jobCalls).toBeGreaterThanOrEqual(2); // hidden interval: 10 s
    jobs = [job('a', 'finished')];
    await jest.advanceTimersByTimeAsync(10000);
    expect(item.isHidden).toBe(true);
    expect(m.isPolling).toBe(false);
    jobCalls = 0;
    await jest.advanceTimersByTimeAsync(60000);
    expect(jobCalls).toBe(0);
  });

  it('opens the panel on click and on Enter', () => {
    item.node.click();
    item.node.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
    expect(opened).toBe(2);
  });
});
