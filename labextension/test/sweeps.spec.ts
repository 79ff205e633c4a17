/**
 * The Sweeps section against the fake model: rows rendered from `model.sweeps`, patched in place
 * by sweep id, progress and best-score text (both directions), the empty state, and the row
 * actions (commands executed with the row's current data).
 */

import {
  formatBest,
  formatTrialCounts,
  sweepProgress,
  sweepTrials
} from '../src/format';
import { SweepsView } from '../src/views/sweeps';
import { flush, setup, trans } from './fakeModel';
import { sweep } from './fixtures';

const row = (view: SweepsView, id: string) =>
  view.node.querySelector<HTMLElement>(`.aiaas-sweep[data-sweep="${id}"]`)!;
const text = (el: Element, cls: string) =>
  el.querySelector(`.${cls}`)?.textContent ?? null;

describe('sweep formatting', () => {
  it('counts ended trials of every terminal state against the planned number', () => {
    const s = sweep('a', {
      n_trials: 16,
      progress: null,
      counts: { running: 2, pending: 1, finished: 9, pruned: 3, error: 1 }
    });
    expect(sweepTrials(s)).toEqual({ ended: 13, total: 16 });
    expect(sweepProgress(s)).toBeCloseTo(13 / 16);
    // the server's progress wins when it has one
    expect(sweepProgress({ ...s, progress: 0.5 })).toBe(0.5);
    expect(sweepProgress({ ...s, progress: 7 })).toBe(1);
    // more trials counted than planned (an open-ended search): the count is the total
    expect(
      sweepTrials(sweep('b', { n_trials: 2, counts: { finished: 3 } }))
    ).toEqual({ ended: 3, total: 3 });
    expect(sweepProgress(sweep('c', { n_trials: 0, progress: null }))).toBe(0);
  });

  it('lists the trial states that have trials, in the order a trial goes through them', () => {
    expect(
      formatTrialCounts(
        { error: 1, pruned: 3, finished: 12, pending: 0, running: 2 },
        trans
      )
    ).toBe('2 running · 12 done · 3 pruned · 1 failed');
    expect(
      formatTrialCounts({ cancelled: 4, lost: 1, pending: 2, odd: 1 }, trans)
    ).toBe('2 queued · 4 cancelled · 1 lost · 1 odd');
    expect(formatTrialCounts({}, trans)).toBe('');
  });

  it('writes the best score with its trial, for max and min sweeps', () => {
    expect(formatBest(sweep('a', { best_value: 0.93333, best_trial: 4 }))).toBe(
      'accuracy=0.933 (#4)'
    );
    expect(
      formatBest(
        sweep('b', {
          metric: 'mse',
          direction: 'min',
          best_value: 0.000123,
          best_trial: 0
        })
      )
    ).toBe('mse=1.23e-4 (#0)');
    expect(formatBest(sweep('c', { best_value: null, best_trial: null }))).toBe(
      ''
    );
    expect(formatBest(sweep('d', { best_value: 2, best_trial: null }))).toBe(
      'accuracy=2'
    );
  });
});

describe('SweepsView', () => {
  it('shows each sweep with status, progress, counts, best score and direction', () => {
    const { model: m, options } = setup();
    const view = new SweepsView(options);
    m.setSweeps([
      sweep('s2', {
        model: 'mlp',
        metric: 'val_loss',
        direction: 'min',
        progress: 0.25,
        n_trials: 8,
        counts: { running: 4, finished: 1, pruned: 1 },
        best_value: 0.4123,
        best_trial: 3
      }),
      sweep('s1', {
        model: 'rf',
        status: 'finished',
        progress: 1,
        counts: { finished: 12, pruned: 3, error: 1 },
        best_value: 0.93,
        best_trial: 4,
        version: 2,
        finished: '2026-12-01T10:05:00+00:00'
      })
    ]);
    const rows = Array.from(
      view.node.querySelectorAll<HTMLElement>('.aiaas-sweep')
    );
    expect(rows.map(r => r.dataset.sweep)).toEqual(['s2', 's1']); // the server's order
    const live = row(view, 's2');
    expect(text(live, 'aiaas-sweep-model')).toBe('mlp');
    expect(text(live, 'aiaas-sweep-status')).toBe('running');
    expect(text(live, 'aiaas-sweep-trials')).toBe('2/8');
    const bar = live.querySelector<HTMLProgressElement>('progress')!;
    expect(Number(bar.getAttribute('value'))).toBeCloseTo(0.25);
    expect(bar.getAttribute('aria-label')).toBe(
      'mlp: 2 of 8 trials ended (25%)'
    );
    expect(text(live, 'aiaas-sweep-counts')).toBe(
      '4 running · 1 done · 1 pruned'
    );
    expect(text(live, 'aiaas-sweep-best')).toBe('val_loss=0.412 (#3)');
    const down = live.querySelector('.aiaas-sweep-direction')!;
    expect(down.textContent).toBe('↓');
    expect(down.getAttribute('title')).toBe('lower is better');
    expect(live.querySelector('.aiaas-sweep-version')).toBeNull();
    expect(live.classList.contains('aiaas-sweep-status-running')).toBe(true);

    const done = row(view, 's1');
    expect(text(done, 'aiaas-sweep-trials')).toBe('16/16');
    expect(text(done, 'aiaas-sweep-counts')).toBe(
      '12 done · 3 pruned · 1 failed'
    );
    expect(text(done, 'aiaas-sweep-best')).toBe('accuracy=0.93 (#4)');
    expect(done.querySelector('.aiaas-sweep-direction')!.textContent).toBe('↑');
    expect(
      done.querySelector('.aiaas-sweep-direction')!.getAttribute('title')
    ).toBe('higher is better');
    expect(text(done, 'aiaas-sweep-version')).toBe('→ rf v2');
    expect(done.querySelector('.aiaas-sweep-finished-at')).not.toBeNull();
    expect(done.dataset.aiaasSweep).toBe('s1'); // the context menu finds the sweep
    view.dispose();
  });

  it('patches rows in place: the same nodes (and focus) across updates, new rows inserted by key', () => {
    const { model: m, options } = setup();
    const view = new SweepsView(options);
    document.body.appendChild(view.node);
    try {
      m.setSweeps([
        sweep('s1', { progress: 0.1, counts: { running: 2, finished: 1 } })
      ]);
      const first = row(view, 's1');
      const bar = first.querySelector<HTMLProgressElement>('progress')!;
      const best = first.querySelector('.aiaas-sweep-best')!;
      const name =
        first.querySelector<HTMLButtonElement>('.aiaas-sweep-model')!;
      name.focus();
      expect(text(first, 'aiaas-sweep-best')).toBe('none yet');
      expect(best.hasAttribute('data-none')).toBe(true);
      m.setSweeps([
        sweep('s3', { model: 'new' }),
        sweep('s1', {
          progress: 0.5,
          counts: { running: 1, finished: 6, pruned: 1 },
          best_value: 0.9,
          best_trial: 2
        })
      ]);
      expect(row(view, 's1')).toBe(first);
      expect(first.querySelector('progress')).toBe(bar);
      expect(bar.value).toBeCloseTo(0.5);
      expect(text(first, 'aiaas-sweep-counts')).toBe(
        '1 running · 6 done · 1 pruned'
      );
      expect(first.querySelector('.aiaas-sweep-best')).toBe(best);
      expect(best.textContent).toBe('accuracy=0.9 (#2)');
      expect(best.hasAttribute('data-none')).toBe(false);
      expect(document.activeElement).toBe(name);
      expect(
        Array.from(view.node.querySelectorAll<HTMLElement>('.aiaas-sweep')).map(
          r => r.dataset.sweep
        )
      ).toEqual(['s3', 's1']);
      // the sweep ends and its best trial is registered: still the same row
      m.setSweeps([
        sweep('s3', { model: 'new' }),
        sweep('s1', {
          status: 'finished',
          progress: 1,
          counts: { finished: 14, pruned: 2 },
          best_value: 0.95,
          best_trial: 9,
          version: 3,
          finished: '2026-12-01T10:09:00+00:00'
        })
      ]);
      expect(row(view, 's1')).toBe(first);
      expect(text(first, 'aiaas-sweep-status')).toBe('finished');
      expect(text(first, 'aiaas-sweep-version')).toBe('→ m-s1 v3');
      expect(first.classList.contains('aiaas-sweep-status-finished')).toBe(
        true
      );
      // a removed sweep's row goes
      m.setSweeps([sweep('s1', { status: 'finished', version: 3 })]);
      expect(
        view.node.querySelector('.aiaas-sweep[data-sweep="s3"]')
      ).toBeNull();
      expect(row(view, 's1')).toBe(first);
    } finally {
      view.node.remove();
      view.dispose();
    }
  });

  it('leaves an unchanged row alone (no DOM mutation) when another sweep moves', () => {
    const { model: m, options } = setup();
    const view = new SweepsView(options);
    const still = sweep('s1', { status: 'finished', best_value: 0.8 });
    m.setSweeps([sweep('s2', { progress: 0.1 }), still]);
    const observer = new MutationObserver(() => undefined);
    observer.observe(row(view, 's1'), {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true
    });
    m.setSweeps([sweep('s2', { progress: 0.2 }), { ...still }]);
    expect(observer.takeRecords()).toHaveLength(0);
    observer.disconnect();
    expect(
      Number(row(view, 's2').querySelector('progress')!.getAttribute('value'))
    ).toBeCloseTo(0.2);
    view.dispose();
  });

  it('runs show-sweep from the model name and load-model of the registered version, with the current data', async () => {
    const { model: m, options, calls } = setup();
    const view = new SweepsView(options);
    m.setSweeps([sweep('s1', { model: 'rf', status: 'finished', version: 1 })]);
    const r = row(view, 's1');
    m.setSweeps([sweep('s1', { model: 'rf', status: 'finished', version: 2 })]);
    r.querySelector<HTMLButtonElement>('.aiaas-sweep-model')!.click();
    r.querySelector<HTMLButtonElement>('.aiaas-sweep-version')!.click();
    await flush();
    expect(calls).toEqual([
      'aiaas:show-sweep {"id":"s1"}',
      'aiaas:load-model {"name":"rf","ref":"rf:2"}'
    ]);
    view.dispose();
  });

  it('says loading, then how to start a sweep when there is none; errors in the alert line', () => {
    const { model: m, options } = setup();
    const view = new SweepsView(options);
    const loading = view.node.querySelector<HTMLElement>('.aiaas-loading')!;
    const empty = view.node.querySelector<HTMLElement>('.aiaas-sweeps-empty')!;
    expect(loading.hidden).toBe(false);
    expect(empty.hidden).toBe(true);
    m.setSweeps([]);
    expect(loading.hidden).toBe(true);
    expect(empty.hidden).toBe(false);
    expect(empty.textContent).toBe('No sweeps yet: %aiaas sweep starts one.');
    expect(view.node.querySelectorAll('.aiaas-sweep')).toHaveLength(0);
    m.setSweeps([sweep('s1')]);
    expect(empty.hidden).toBe(true);
    m.setError('sweeps', 'no such aiaas API route');
    expect(view.alertNode.textContent).toBe('no such aiaas API route');
    expect(row(view, 's1')).not.toBeNull(); // the last good data stays
    view.dispose();
  });

  it('shows a failed sweep with its error and no best score', () => {
    const { model: m, options } = setup();
    const view = new SweepsView(options);
    m.setSweeps([
      sweep('s1', {
        status: 'error',
        counts: { error: 16 },
        error: 'SweepError: every trial failed',
        finished: '2026-12-01T10:01:00+00:00'
      })
    ]);
    const r = row(view, 's1');
    expect(text(r, 'aiaas-sweep-status')).toBe('error');
    expect(text(r, 'aiaas-sweep-best')).toBe('none');
    expect(text(r, 'aiaas-sweep-error-text')).toBe(
      'SweepError: every trial failed'
    );
    expect(text(r, 'aiaas-sweep-counts')).toBe('16 failed');
    view.dispose();
  });
});
