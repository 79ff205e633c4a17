import { Widget } from '@lumino/widgets';

import { AiaasPanel } from '../src/panel';
import { flush, setup } from './fakeModel';
import { model } from './fixtures';

describe('AiaasPanel', () => {
  it('is a labelled region of five sections that render from the model', () => {
    const { model: m, options } = setup();
    const panel = new AiaasPanel(options);
    try {
      expect(panel.node.getAttribute('role')).toBe('region');
      expect(panel.node.getAttribute('aria-label')).toBe(
        'AIaaS models, endpoints, jobs and cluster'
      );
      const sections = Array.from(
        panel.node.querySelectorAll<HTMLElement>('.aiaas-section')
      );
      expect(sections.map(s => s.getAttribute('aria-label'))).toEqual([
        'Models',
        'Endpoints',
        'Jobs',
        'Sweeps',
        'Cluster'
      ]);
      m.setModels({ models: [model('iris')] });
      expect(
        panel.node.querySelector('.aiaas-model-row[data-aiaas-model="iris"]')
      ).not.toBeNull();
    } finally {
      panel.dispose();
    }
  });

  it('runs aiaas:refresh from its toolbar button', async () => {
    const { options, calls } = setup();
    const panel = new AiaasPanel(options);
    Widget.attach(panel, document.body);
    try {
      let button: HTMLElement | null = null;
      for (let i = 0; i < 50 && !button; i++) {
        await new Promise(resolve => setTimeout(resolve, 10)); // the toolbar button is rendered by React
        button = panel.node.querySelector<HTMLElement>('.aiaas-refresh');
      }
      expect(button).not.toBeNull();
      expect(button!.getAttribute('title')).toBe(
        'Refresh models, endpoints, jobs and cluster'
      );
      // the keyboard (ToolbarButton's mouse path needs a real pointer; the e2e test clicks it)
      button!.dispatchEvent(
        new KeyboardEvent('keydown', { bubbles: true, key: 'Enter' })
      );
      await flush();
      expect(calls).toEqual(['aiaas:refresh {}']);
    } finally {
      panel.dispose();
    }
  });

  it('tells the model when it is shown and hidden, and stops its views with it', () => {
    const { model: m, options } = setup();
    const panel = new AiaasPanel(options);
    Widget.attach(panel, document.body);
    panel.hide();
    panel.show();
    expect(m.visible).toEqual([false, true]);
    const views = [
      panel.models,
      panel.endpoints,
      panel.jobs,
      panel.sweeps,
      panel.cluster
    ];
    panel.dispose();
    expect(views.every(v => v.isDisposed)).toBe(true);
    expect(m.modelsChanged).toBeDefined();
  });
});
