/**
 * The eight commands on a real lumino `CommandRegistry`, a real `AiaasModel` over a fake API
 * (recording calls), and recording stand-ins for what needs a user or a notebook (dialogs,
 * notifications, clipboard, NotebookActions): `@jupyterlab/*` ship ES modules jest does not load.
 */

const ui = {
  dialogs: [] as { title: string; body: string }[],
  accept: true,
  notes: [] as string[],
  clipboard: [] as string[],
  items: [] as string[][],
  pick: 'iris' as string | null,
  inserted: [] as string[]
};

jest.mock('@jupyterlab/apputils', () => {
  const note = (type: string) => (message: string) => {
    ui.notes.push(`${type}: ${message}`);
    return type;
  };
  return {
    Clipboard: { copyToSystem: (text: string) => ui.clipboard.push(text) },
    Dialog: { cancelButton: (o: any) => o, warnButton: (o: any) => o },
    showDialog: async (o: any) => {
      ui.dialogs.push({ title: o.title, body: o.body });
      return { button: { accept: ui.accept }, value: null };
    },
    InputDialog: {
      getItem: async (o: any) => {
        ui.items.push(o.items);
        return { button: { accept: ui.pick !== null }, value: ui.pick };
      }
    },
    Notification: {
      emit: note('emit'),
      update: (o: any) => ui.notes.push(`${o.type}: ${o.message}`),
      info: note('info'),
      success: note('success'),
      error: note('error'),
      warning: note('warning')
    }
  };
});

jest.mock('@jupyterlab/notebook', () => ({
  NotebookActions: {
    insertBelow: (notebook: any) => {
      const cell = {
        model: {
          type: 'code',
          sharedModel: { setSource: (t: string) => ui.inserted.push(t) }
        }
      };
      notebook.activeCell = cell;
    },
    changeCellType: () => undefined
  }
}));

import { CommandRegistry } from '@lumino/commands';

import {
  addCommands,
  addToPalette,
  CommandIDs,
  PALETTE_COMMANDS
} from '../src/commands';
import { AiaasModel, IModelSource } from '../src/model';
import { model, sweep } from './fixtures';

const trans: any = {
  __: (s: string, ...args: string[]) =>
    s.replace(/%(\d+)/g, (_, i) => String(args[Number(i) - 1])),
  _n: (s: string, p: string, n: number) => (n === 1 ? s : p)
};

const DEPLOYED = model('served', {
  deployed: true,
  deployed_version: 2,
  endpoint: 'http://127.0.0.1:8765/v2/models/served'
});

function setup(hitNode: HTMLElement | null = null) {
  const calls: string[] = [];
  const source: IModelSource = {
    models: async () => {
      calls.push('models');
      return { models: [model('iris', { aliases: { prod: 1 } }), DEPLOYED] };
    },
    model: async () => ({}) as any,
    jobs: async () => [],
    sweeps: async () => [
      sweep('s-2', { model: 'iris', status: 'running' }),
      sweep('s-1', { model: 'iris', status: 'finished', version: 2 })
    ],
    endpoints: async () => ({
      server: { running: true, url: 'http://127.0.0.1:8765' },
      deployments: [
        {
          name: 'served',
          version: 2,
          ref: 'served:2',
          framework: 'sklearn',
          url: 'http://127.0.0.1:8765/v2/models/served',
          loaded_at: null,
          health: 'ok'
        }
      ],
      endpoints: []
    }),
    cluster: async () => ({ scheduler: null })
  };
  const api = {
    deploy: async (name: string, ref?: string) => {
      calls.push(`deploy ${name} ${ref ?? '-'}`);
      return { name, version: 1, url: `http://x/v2/models/${name}` };
    },
    undeploy: async (name: string) => {
      calls.push(`undeploy ${name}`);
      return { name, undeployed: true };
    }
  };
  const commands = new CommandRegistry();
  const activated: string[] = [];
  const app: any = {
    commands,
    shell: { activateById: (id: string) => activated.push(id) },
    contextMenuHitTest: (fn: (n: HTMLElement) => boolean) => {
      for (let n: HTMLElement | null = hitNode; n; n = n.parentElement) {
        if (fn(n)) {
          return n;
        }
      }
      return undefined;
    }
  };
  const notebook: any = { id: 'nb-1', content: { activeCell: null } };
  const tracker: any = { currentWidget: notebook };
  const m = new AiaasModel(source);
  addCommands(app, m, tracker, trans, { api, panelId: 'aiaas-sidebar' });
  return { commands, calls, m, activated, tracker };
}

beforeEach(() => {
  Object.assign(ui, {
    dialogs: [],
    accept: true,
    notes: [],
    clipboard: [],
    items: [],
    pick: 'iris',
    inserted: []
  });
});

describe('aiaas commands', () => {
  it('deploy passes name and ref to the API, then waits for the refreshed data', async () => {
    const { commands, calls, m } = setup();
    await m.refresh();
    calls.length = 0;
    expect(commands.label(CommandIDs.deploy, { name: 'iris' })).toBe(
      'Deploy iris'
    );
    await commands.execute(CommandIDs.deploy, { name: 'iris', ref: 'iris:1' });
    expect(calls).toEqual(['deploy iris iris:1', 'models']); // refresh() ran before execute resolved
    expect(ui.dialogs).toEqual([]); // not deployed yet: no confirmation
    expect(ui.notes).toEqual([
      'emit: Deploying iris:1…',
      'success: iris v1 serves at http://x/v2/models/iris'
    ]);
  });

  it('deploy over a running deployment asks first; cancel calls nothing', async () => {
    const { commands, calls, m } = setup();
    await m.refresh();
    calls.length = 0;
    ui.accept = false;
    await commands.execute(CommandIDs.deploy, { name: 'served' });
    expect(ui.dialogs[0].title).toBe('Replace the deployment of served?');
    expect(calls).toEqual([]);
  });

  it('undeploy confirms, calls the API and refreshes; disabled for a model that is not deployed', async () => {
    const { commands, calls, m } = setup();
    await m.refresh();
    calls.length = 0;
    expect(commands.isEnabled(CommandIDs.undeploy, { name: 'iris' })).toBe(
      false
    );
    expect(commands.isEnabled(CommandIDs.undeploy, { name: 'served' })).toBe(
      true
    );
    await commands.execute(CommandIDs.undeploy, { name: 'served' });
    expect(ui.dialogs.map(d => d.title)).toEqual(['Undeploy served?']);
    expect(calls).toEqual(['undeploy served', 'models']);
    expect(ui.notes).toEqual(['success: served undeployed']);
  });

  it('insert-snippet and load-model put the right cell in the current notebook', async () => {
    const { commands, m, activated, tracker } = setup();
    await m.refresh();
    await commands.execute(CommandIDs.insertSnippet, {
      name: 'served',
      kind: 'predict'
    });
    await commands.execute(CommandIDs.insertSnippet, { name: 'iris' }); // default: load (not deployed)
    await commands.execute(CommandIDs.loadModel, {
      name: 'iris',
      ref: 'iris:1'
    });
    await commands.execute(CommandIDs.loadModel, { name: 'iris' });
    expect(ui.inserted).toEqual([
      '%aiaas predict served --input X -o predictions',
      'import aiaas_jupyter\nmodel = aiaas_jupyter.load_model("iris@prod")\nmodel',
      'import aiaas_jupyter\nmodel = aiaas_jupyter.load_model("iris:1")\nmodel',
      'import aiaas_jupyter\nmodel = aiaas_jupyter.load_model("iris@prod")\nmodel'
    ]);
    expect(activated).toEqual(['nb-1', 'nb-1', 'nb-1', 'nb-1']);
    expect(
      await commands.execute(CommandIDs.insertSnippet, { name: 'nope' })
    ).toBe(false);
    expect(ui.notes.slice(-1)).toEqual([
      'warning: No model named nope in the registry.'
    ]);
    tracker.currentWidget = null;
    expect(
      await commands.execute(CommandIDs.insertSnippet, { name: 'iris' })
    ).toBe(false);
    expect(ui.notes.slice(-1)[0]).toMatch(/^warning: Open a notebook first/);
  });

  it('copy-url copies the given URL, or the named deployment URL', async () => {
    const { commands, m } = setup();
    await m.refresh();
    await commands.execute(CommandIDs.copyUrl, { url: 'http://a/b' });
    await commands.execute(CommandIDs.copyUrl, { name: 'served' });
    expect(ui.clipboard).toEqual([
      'http://a/b',
      'http://127.0.0.1:8765/v2/models/served'
    ]);
    expect(commands.isEnabled(CommandIDs.copyUrl, { name: 'iris' })).toBe(
      false
    );
  });

  it('without args (context menu) acts on the row under the right-click', async () => {
    const row = document.createElement('li');
    row.className = 'aiaas-model-row';
    row.dataset.aiaasModel = 'served';
    const inner = document.createElement('span');
    row.appendChild(inner);
    const { commands, calls, m } = setup(inner);
    await m.refresh();
    calls.length = 0;
    expect(commands.label(CommandIDs.deploy, {})).toBe('Deploy');
    expect(commands.isEnabled(CommandIDs.undeploy, {})).toBe(true);
    await commands.execute(CommandIDs.insertSnippet, {});
    expect(ui.inserted).toEqual([
      '%aiaas predict served --input X -o predictions'
    ]);
    await commands.execute(CommandIDs.undeploy, {});
    expect(calls[0]).toBe('undeploy served');
    // a button (args given) never falls back to the last right-clicked row
    expect(await commands.execute(CommandIDs.copyUrl, { url: '' })).toBe(false);
    expect(ui.clipboard).toEqual([]);
    await commands.execute(CommandIDs.insertSnippet, { name: 'iris' });
    expect(ui.inserted[1]).toContain('load_model("iris@prod")');

    const ep = document.createElement('div');
    ep.className = 'aiaas-endpoint-row';
    ep.dataset.aiaasEndpoint = 'remote';
    ep.dataset.aiaasUrl = 'https://remote.example/v2/models/x';
    const s2 = setup(ep);
    await s2.m.refresh();
    await s2.commands.execute(CommandIDs.copyUrl, {});
    expect(ui.clipboard).toEqual(['https://remote.example/v2/models/x']);
  });

  it('from the palette, asks which model (over the known models)', async () => {
    const { commands, calls, m } = setup();
    await m.refresh();
    calls.length = 0;
    expect(commands.label(CommandIDs.deploy, { prompt: true })).toBe(
      'AIaaS: Deploy a model…'
    );
    await commands.execute(CommandIDs.deploy, { prompt: true });
    expect(ui.items).toEqual([['iris', 'served']]);
    expect(calls[0]).toBe('deploy iris -');
    ui.pick = null; // cancelled: nothing happens
    await commands.execute(CommandIDs.undeploy, { prompt: true });
    expect(ui.items[1]).toEqual(['served']);
    expect(calls.filter(c => c.startsWith('undeploy'))).toEqual([]);
  });

  it('show-sweep inserts %aiaas sweep show ID: from args, the right-clicked sweep row, or the palette', async () => {
    const row = document.createElement('li');
    row.className = 'aiaas-sweep-row';
    row.dataset.aiaasSweep = 's-1';
    const inner = document.createElement('span');
    row.appendChild(inner);
    const { commands, m, activated } = setup(inner);
    await m.refresh();
    expect(commands.label(CommandIDs.showSweep, { id: 's-2' })).toBe(
      'Show sweep s-2'
    );
    expect(commands.label(CommandIDs.showSweep, {})).toBe('Show in notebook');
    await commands.execute(CommandIDs.showSweep, { id: 's-2' });
    await commands.execute(CommandIDs.showSweep, {}); // the context menu's row
    ui.pick = 's-1 (iris)';
    await commands.execute(CommandIDs.showSweep, { prompt: true });
    expect(ui.items).toEqual([['s-2 (iris)', 's-1 (iris)']]);
    expect(ui.inserted).toEqual([
      '%aiaas sweep show s-2',
      '%aiaas sweep show s-1',
      '%aiaas sweep show s-1'
    ]);
    expect(activated).toEqual(['nb-1', 'nb-1', 'nb-1']);
    // a button with an empty id never falls back to the last right-clicked row
    expect(commands.isEnabled(CommandIDs.showSweep, { id: '' })).toBe(false);
    expect(await commands.execute(CommandIDs.showSweep, { id: '' })).toBe(
      false
    );
    expect(ui.inserted).toHaveLength(3);
    const described = await commands.describedBy(CommandIDs.showSweep);
    expect(Object.keys((described.args as any).properties).sort()).toEqual([
      'id',
      'prompt'
    ]);
  });

  it('open and refresh; every command is in the palette under AIaaS', async () => {
    const { commands, calls, activated } = setup();
    await commands.execute(CommandIDs.open);
    expect(activated).toEqual(['aiaas-sidebar']);
    await commands.execute(CommandIDs.refresh);
    expect(calls).toEqual(['models']);
    const items: any[] = [];
    addToPalette({ addItem: (o: any) => items.push(o) } as any, trans);
    expect(items.map(i => i.command)).toEqual(PALETTE_COMMANDS);
    expect(PALETTE_COMMANDS).toHaveLength(8);
    expect(new Set(items.map(i => i.category))).toEqual(new Set(['AIaaS']));
    expect(items.find(i => i.command === CommandIDs.deploy).args).toEqual({
      prompt: true
    });
  });
});
