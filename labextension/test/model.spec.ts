/**
 * AiaasModel against a real lumino `Poll` (jest fake timers drive its setTimeouts) and a fake
 * API that records what was asked and answers what each test says.
 */

import { AiaasModel, FULL_EVERY, IModelSource } from '../src/model';
import { DEFAULT_SETTINGS, SETTINGS_MINIMUM } from '../src/settings';
import { SectionName } from '../src/tokens';
import {
  IClusterAnswer,
  IEndpointsAnswer,
  IJob,
  IModelDetail,
  IModelsAnswer,
  ISweep
} from '../src/types';
import schemaJson from '../schema/plugin.json';
import { model, sweep } from './fixtures';

type Answer = unknown | Error | Promise<unknown>;

/** A fake API: `answers[section]` is returned (or thrown); `calls` lists the sections asked. */
class FakeSource implements IModelSource {
  calls: string[] = [];
  answers: Record<string, Answer> = {
    models: { models: [model('iris')] },
    endpoints: {
      server: { running: false, url: null },
      deployments: [],
      endpoints: []
    },
    jobs: [],
    sweeps: [],
    cluster: { scheduler: null }
  };

  private answer(section: string): Promise<any> {
    this.calls.push(section);
    const a = this.answers[section];
    if (a instanceof Error) {
      return Promise.reject(a);
    }
    return Promise.resolve(a);
  }
  models(): Promise<IModelsAnswer> {
    return this.answer('models');
  }
  model(name: string): Promise<IModelDetail> {
    return this.answer(`model:${name}`);
  }
  jobs(): Promise<IJob[]> {
    return this.answer('jobs');
  }
  sweeps(): Promise<ISweep[]> {
    return this.answer('sweeps');
  }
  endpoints(): Promise<IEndpointsAnswer> {
    return this.answer('endpoints');
  }
  cluster(): Promise<IClusterAnswer> {
    return this.answer('cluster');
  }
  count(section: string): number {
    return this.calls.filter(c => c === section).length;
  }
}

function deferred<T>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function job(id: string, status: string): IJob {
  return {
    id,
    model: 'iris',
    status,
    progress: null,
    worker: null,
    gpus: null,
    submitted: '2026-12-01T10:00:00+00:00',
    started: null,
    finished: null,
    duration_s: null,
    version: null,
    error: null
  };
}

let source: FakeSource;
let m: AiaasModel;

beforeEach(() => {
  jest.useFakeTimers();
  source = new FakeSource();
  m = new AiaasModel(source);
});

afterEach(() => {
  m.dispose();
  jest.useRealTimers();
});

describe('AiaasModel data', () => {
  it('refresh() resolves after the data is in the model and the signals fired', async () => {
    const seen: string[] = [];
    m.modelsChanged.connect((_, answer) =>
      seen.push(`models:${answer.models.map(x => x.name)}`)
    );
    m.jobsChanged.connect((_, jobs) => seen.push(`jobs:${jobs.length}`));
    expect(m.models).toBeNull();
    await m.refresh();
    expect(m.models?.models.map(x => x.name)).toEqual(['iris']);
    expect(m.jobs).toEqual([]);
    expect(m.cluster).toEqual({ scheduler: null });
    expect(seen).toEqual(['models:iris', 'jobs:0']);
    await m.refresh(['jobs']);
    expect(source.calls.slice(-1)).toEqual(['jobs']);
  });

  it('keeps the newer answer when two overlapping refreshes resolve out of order', async () => {
    const older = deferred<IModelsAnswer>();
    const newer = deferred<IModelsAnswer>();
    source.answers.models = older.promise;
    const first = m.refresh(['models']);
    source.answers.models = newer.promise;
    const second = m.refresh(['models']);
    const emitted: string[] = [];
    m.modelsChanged.connect((_, a) => emitted.push(a.models[0].name));
    newer.resolve({ models: [model('new')] });
    await second;
    older.resolve({ models: [model('old')] });
    await first;
    expect(m.models?.models[0].name).toBe('new');
    expect(emitted).toEqual(['new']);
    // an older failure does not overwrite newer data with an error either
    const slowFail = deferred<IModelsAnswer>();
    source.answers.models = slowFail.promise;
    const third = m.refresh(['models']);
    source.answers.models = { models: [model('newest')] };
    await m.refresh(['models']);
    slowFail.reject(new Error('late failure'));
    await third;
    expect(m.error('models')).toBeNull();
    expect(m.models?.models[0].name).toBe('newest');
  });

  it('signals only when the data changed', async () => {
    let n = 0;
    m.modelsChanged.connect(() => (n += 1));
    await m.refresh();
    await m.refresh();
    expect(n).toBe(1);
    source.answers.models = {
      models: [model('iris', { aliases: { prod: 1 } })]
    };
    await m.refresh();
    expect(n).toBe(2);
  });

  it('emits errorChanged only when the error line changes, and keeps the last good data', async () => {
    const events: [SectionName, string | null][] = [];
    m.errorChanged.connect((_, e) => events.push([e.section, e.error]));
    await m.refresh(['jobs']);
    source.answers.jobs = new Error('server down');
    await m.refresh(['jobs']);
    await m.refresh(['jobs']);
    expect(events).toEqual([['jobs', 'server down']]);
    expect(m.error('jobs')).toBe('server down');
    expect(m.jobs).toEqual([]);
    source.answers.jobs = new Error('other failure');
    await m.refresh(['jobs']);
    source.answers.jobs = [job('j1', 'running')];
    await m.refresh(['jobs']);
    await m.refresh(['jobs']);
    expect(events).toEqual([
      ['jobs', 'server down'],
      ['jobs', 'other failure'],
      ['jobs', null]
    ]);
  });

  it('modelDetail asks the server every time (no cache)', async () => {
    source.answers['model:iris'] = { name: 'iris', versions: [] };
    await m.modelDetail('iris');
    await m.modelDetail('iris');
    expect(source.count('model:iris')).toBe(2);
  });
});

describe('AiaasModel polling', () => {
  it('makes no request until the panel is first shown', async () => {
    await jest.advanceTimersByTimeAsync(60000);
    expect(source.calls).toEqual([]);
    m.setVisible(false); // told "hidden" before ever being shown: still nothing
    await jest.advanceTimersByTimeAsync(60000);
    expect(source.calls).toEqual([]);
  });

  it('a visible consumer (the status bar) keeps its data fresh even if the panel was never opened', async () => {
    const consumer = m.addConsumer();
    await jest.advanceTimersByTimeAsync(25000);
    expect(source.count('jobs')).toBeGreaterThanOrEqual(2);
    consumer.dispose();
    const after = source.calls.length;
    await jest.advanceTimersByTimeAsync(60000);
    expect(source.calls.length).toBe(after);
  });

  it('visible: everything at once, then models/jobs every interval and endpoints/cluster every 5th tick', async () => {
    m.setVisible(true);
    await jest.advanceTimersByTimeAsync(0);
    expect(source.calls.sort()).toEqual([
      'cluster',
      'endpoints',
      'jobs',
      'models',
      'sweeps'
    ]);
    source.calls = [];
    await jest.advanceTimersByTimeAsync(2000 * 2 * FULL_EVERY);
    expect(source.count('models')).toBe(2 * FULL_EVERY);
    expect(source.count('jobs')).toBe(2 * FULL_EVERY);
    expect(source.count('endpoints')).toBe(2);
    expect(source.count('cluster')).toBe(2);
    expect(source.count('sweeps')).toBe(2); // none live: with the full ticks
  });

  it('reads sweeps on every tick while one is live, and back to every 5th once all ended', async () => {
    source.answers.sweeps = [
      sweep('s-old', { status: 'finished' }),
      sweep('s-live', { status: 'running' })
    ];
    m.setVisible(true);
    await jest.advanceTimersByTimeAsync(0);
    expect(m.sweeps?.map(s => s.id)).toEqual(['s-old', 's-live']);
    expect(m.hasLiveSweep).toBe(true);
    source.calls = [];
    await jest.advanceTimersByTimeAsync(2000 * FULL_EVERY);
    expect(source.count('sweeps')).toBe(FULL_EVERY);
    expect(source.count('endpoints')).toBe(1);
    source.answers.sweeps = [
      sweep('s-old', { status: 'finished' }),
      sweep('s-live', { status: 'cancelled' })
    ];
    await jest.advanceTimersByTimeAsync(2000); // this tick reads the ended sweep
    expect(m.hasLiveSweep).toBe(false);
    source.calls = [];
    await jest.advanceTimersByTimeAsync(2000 * 2 * FULL_EVERY);
    expect(source.count('models')).toBe(2 * FULL_EVERY);
    expect(source.count('sweeps')).toBe(2);
  });

  it('signals sweepsChanged only when the sweeps changed, and keeps them on an error', async () => {
    const seen: string[] = [];
    m.sweepsChanged.connect((_, sweeps) =>
      seen.push(sweeps.map(s => `${s.id}:${s.progress}`).join(','))
    );
    source.answers.sweeps = [sweep('s1', { progress: 0.25 })];
    await m.refresh(['sweeps']);
    await m.refresh(['sweeps']);
    source.answers.sweeps = [sweep('s1', { progress: 0.5 })];
    await m.refresh(['sweeps']);
    source.answers.sweeps = new Error('no such aiaas API route');
    await m.refresh(['sweeps']);
    expect(seen).toEqual(['s1:0.25', 's1:0.5']);
    expect(m.sweeps?.[0].progress).toBe(0.5);
    expect(m.error('sweeps')).toBe('no such aiaas API route');
  });

  it('hidden: stops, unless pollWhileHidden or a consumer, then at the hidden interval', async () => {
    m.setVisible(true);
    await jest.advanceTimersByTimeAsync(100);
    m.setVisible(false);
    await jest.advanceTimersByTimeAsync(2000); // the tick already scheduled may run once
    source.calls = [];
    await jest.advanceTimersByTimeAsync(60000);
    expect(source.calls).toEqual([]);
    expect(m.isPolling).toBe(false);

    const consumer = m.addConsumer();
    await jest.advanceTimersByTimeAsync(100); // starts at once
    expect(source.count('jobs')).toBe(1);
    await jest.advanceTimersByTimeAsync(30000);
    expect(source.count('jobs')).toBe(4); // every 10 s while hidden
    consumer.dispose();
    source.calls = [];
    await jest.advanceTimersByTimeAsync(60000);
    expect(source.calls).toEqual([]);

    m.updateSettings({ pollWhileHidden: true, hiddenIntervalMs: 5000 });
    await jest.advanceTimersByTimeAsync(100);
    await jest.advanceTimersByTimeAsync(20000);
    expect(source.count('jobs')).toBe(5);
  });

  it('showing the panel again reads everything at once', async () => {
    m.setVisible(true);
    await jest.advanceTimersByTimeAsync(100);
    m.setVisible(false);
    await jest.advanceTimersByTimeAsync(60000);
    source.calls = [];
    m.setVisible(true);
    await jest.advanceTimersByTimeAsync(10);
    expect(source.calls.sort()).toEqual([
      'cluster',
      'endpoints',
      'jobs',
      'models',
      'sweeps'
    ]);
  });

  it('applies settings changes live', async () => {
    const changed: number[] = [];
    m.settingsChanged.connect((_, s) => changed.push(s.visibleIntervalMs));
    m.setVisible(true);
    await jest.advanceTimersByTimeAsync(100);
    m.updateSettings({ visibleIntervalMs: 7000 });
    m.updateSettings({ visibleIntervalMs: 7000 }); // no change: no signal
    expect(changed).toEqual([7000]);
    expect(m.poll.frequency.interval).toBe(7000);
    await jest.advanceTimersByTimeAsync(2000); // the tick scheduled before the change
    source.calls = [];
    await jest.advanceTimersByTimeAsync(21000);
    expect(source.count('models')).toBe(3);
    m.updateSettings({
      pageSize: 3,
      recentJobs: -4,
      visibleIntervalMs: 'fast'
    });
    expect(m.settings).toEqual({
      visibleIntervalMs: 2000, // wrong type: the default
      hiddenIntervalMs: 10000,
      pollWhileHidden: false,
      pageSize: 10, // minimums
      recentJobs: 1
    });
  });

  it('backs off while every request fails', async () => {
    for (const s of ['models', 'jobs', 'sweeps', 'endpoints', 'cluster']) {
      source.answers[s] = new Error('down');
    }
    m.setVisible(true);
    await jest.advanceTimersByTimeAsync(100);
    source.calls = [];
    await jest.advanceTimersByTimeAsync(20000);
    expect(source.count('models')).toBeLessThan(10); // 2 s each without backoff
    expect(m.error('models')).toBe('down');
  });
});

describe('schema/plugin.json', () => {
  const schema: any = schemaJson;

  it('declares the five settings with the model defaults and minimums', () => {
    const props = schema.properties;
    expect(Object.keys(props).sort()).toEqual(
      Object.keys(DEFAULT_SETTINGS).sort()
    );
    for (const key of Object.keys(
      DEFAULT_SETTINGS
    ) as (keyof typeof DEFAULT_SETTINGS)[]) {
      expect([key, props[key].default]).toEqual([key, DEFAULT_SETTINGS[key]]);
      expect(props[key].title).toBeTruthy();
      expect(props[key].description).toBeTruthy();
      if (typeof DEFAULT_SETTINGS[key] === 'number') {
        expect([key, props[key].minimum]).toEqual([key, SETTINGS_MINIMUM[key]]);
      }
    }
  });

  it('puts the row commands in the context menu of model, endpoint and sweep rows', () => {
    const menu = (selector: string) =>
      schema['jupyter.lab.menus'].context
        .filter((i: any) => i.selector === selector && i.command)
        .map((i: any) => i.command)
        .sort();
    expect(menu('.aiaas-model-row')).toEqual([
      'aiaas:deploy',
      'aiaas:insert-snippet',
      'aiaas:load-model',
      'aiaas:undeploy'
    ]);
    expect(menu('.aiaas-endpoint-row')).toEqual([
      'aiaas:copy-url',
      'aiaas:undeploy'
    ]);
    expect(menu('.aiaas-sweep-row')).toEqual(['aiaas:show-sweep']);
  });
});
