/**
 * The `aiaas-jupyter:model` plugin: the settings registry's values reach the model at start and
 * live on every change; without a registry (or when loading fails) the defaults hold; activating
 * makes no request. `@jupyterlab/*` ship ES modules jest does not load here: the registry token
 * and the server connection are stand-ins; the model and signals are real.
 */

const requests: string[] = [];

jest.mock('@jupyterlab/settingregistry', () => ({
  ISettingRegistry: { name: 'ISettingRegistry' }
}));
jest.mock('@jupyterlab/coreutils', () => ({
  URLExt: {
    join: (...parts: string[]) => parts.map(p => p.replace(/\/$/, '')).join('/')
  }
}));
jest.mock('@jupyterlab/services', () => ({
  ServerConnection: {
    makeSettings: () => ({ baseUrl: 'http://lab/' }),
    makeRequest: async (url: string) => {
      requests.push(url);
      throw new Error('no server in this test');
    }
  }
}));

import { Signal } from '@lumino/signaling';

import { AiaasModel } from '../src/model';
import { modelPlugin } from '../src/modelplugin';
import { DEFAULT_SETTINGS, SETTINGS_ID } from '../src/settings';

const flush = () => new Promise(resolve => setTimeout(resolve, 0));

describe('aiaas-jupyter:model plugin', () => {
  beforeEach(() => {
    requests.length = 0;
  });

  it('applies the registry settings at start and live, and provides the IAiaasModel token', async () => {
    const changed = new Signal<unknown, void>({});
    const settings = {
      composite: { visibleIntervalMs: 5000, pollWhileHidden: true } as Record<
        string,
        unknown
      >,
      changed
    };
    const loaded: string[] = [];
    const registry = {
      load: async (id: string) => {
        loaded.push(id);
        return settings;
      }
    };
    expect(modelPlugin.provides?.name).toBe('aiaas-jupyter:IAiaasModel');
    const model = modelPlugin.activate({} as any, registry) as AiaasModel;
    await flush();
    expect(loaded).toEqual([SETTINGS_ID]);
    expect(model.settings).toEqual({
      ...DEFAULT_SETTINGS,
      visibleIntervalMs: 5000,
      pollWhileHidden: true
    });
    const seen: number[] = [];
    model.settingsChanged.connect((_, s) => seen.push(s.pageSize));
    settings.composite = { ...settings.composite, pageSize: 50 };
    changed.emit();
    expect(model.settings.pageSize).toBe(50);
    expect(seen).toEqual([50]);
    await flush();
    expect(requests).toEqual([]); // nothing read before the panel is shown
    model.dispose();
  });

  it('keeps the defaults without a registry or when the settings cannot be loaded', async () => {
    const plain = modelPlugin.activate({} as any, null) as AiaasModel;
    expect(plain.settings).toEqual(DEFAULT_SETTINGS);
    const warn = jest
      .spyOn(console, 'warn')
      .mockImplementation(() => undefined);
    const failing = modelPlugin.activate({} as any, {
      load: async () => {
        throw new Error('no schema');
      }
    }) as AiaasModel;
    await flush();
    expect(failing.settings).toEqual(DEFAULT_SETTINGS);
    expect(warn).toHaveBeenCalled();
    warn.mockRestore();
    // the real transport goes through ServerConnection to {base}/aiaas/api/...
    await plain.refresh(['jobs']);
    expect(requests).toEqual(['http://lab/aiaas/api/jobs']);
    expect(plain.error('jobs')).toMatch(/cannot be reached/);
    plain.dispose();
    failing.dispose();
  });
});
