/**
 * The sidebar's actions as JupyterLab commands, so the same action is reachable from a row's
 * button (views call `commands.execute(id, args)`), the row's context menu (no args: the row
 * under the right-click is found with `app.contextMenuHitTest`) and the command palette
 * (`{ prompt: true }`: the name is picked in a dialog). Dialogs, notifications and the
 * clipboard live here, in one place; new notebook cells come from `notebook.ts`.
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Clipboard,
  Dialog,
  InputDialog,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import type { ICommandPalette } from '@jupyterlab/apputils';
import type { INotebookTracker } from '@jupyterlab/notebook';
import type { TranslationBundle } from '@jupyterlab/translation';
import type { LabIcon } from '@jupyterlab/ui-components';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { errorText } from './api';
import { DESCRIBED_BY } from './commandargs';
import { defaultSnippet, snippet, SnippetKind, sweepSnippet } from './format';
import { insertIntoNotebook, loadSnippet } from './notebook';
import { IAiaasModel } from './tokens';
import { IModelSummary } from './types';

export namespace CommandIDs {
  export const open = 'aiaas:open';
  export const refresh = 'aiaas:refresh';
  export const deploy = 'aiaas:deploy';
  export const undeploy = 'aiaas:undeploy';
  export const insertSnippet = 'aiaas:insert-snippet';
  export const copyUrl = 'aiaas:copy-url';
  export const loadModel = 'aiaas:load-model';
  export const showSweep = 'aiaas:show-sweep';
}

/** Commands listed in the palette (those needing a name prompt for it there). */
export const PALETTE_COMMANDS = [
  CommandIDs.open,
  CommandIDs.refresh,
  CommandIDs.deploy,
  CommandIDs.undeploy,
  CommandIDs.insertSnippet,
  CommandIDs.loadModel,
  CommandIDs.copyUrl,
  CommandIDs.showSweep
];

/** The parts of the application the commands use (a fake in the jest tests). */
export type App = Pick<
  JupyterFrontEnd,
  'commands' | 'shell' | 'contextMenuHitTest'
>;

/** The server calls the commands make besides reading (`AiaasApi` satisfies it). */
export interface IActionApi {
  deploy(
    name: string,
    ref?: string
  ): Promise<{ name: string; version: number; url: string }>;
  undeploy(name: string): Promise<unknown>;
}

export interface ICommandOptions {
  api: IActionApi;
  /** the sidebar's widget id, for `aiaas:open` */
  panelId: string;
  icon?: LabIcon;
}

type Args = ReadonlyPartialJSONObject;

const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value ? value : undefined;

export function addCommands(
  app: App,
  model: IAiaasModel,
  tracker: INotebookTracker,
  trans: TranslationBundle,
  options: ICommandOptions
): void {
  const { commands } = app;
  const { api } = options;

  const summary = (name: string | undefined): IModelSummary | undefined =>
    name ? model.models?.models.find(m => m.name === name) : undefined;

  /**
   * The row right-clicked last, as `{model, endpoint, url}` — only for a call without target
   * args (the context menu's): JupyterLab keeps the last right-click, a button must not reach it.
   */
  const hit = (args: Args) => {
    const fromMenu = !args.prompt && !('name' in args) && !('url' in args);
    const node = fromMenu
      ? app.contextMenuHitTest(
          n =>
            n.dataset.aiaasModel !== undefined ||
            n.dataset.aiaasEndpoint !== undefined
        )
      : undefined;
    return {
      model: str(node?.dataset.aiaasModel),
      endpoint: str(node?.dataset.aiaasEndpoint),
      url: str(node?.dataset.aiaasUrl)
    };
  };

  /** The model (or endpoint) a command acts on: its args, else the right-clicked row. */
  const targetName = (args: Args): string | undefined => {
    const h = hit(args);
    return str(args.name) ?? h.model ?? h.endpoint;
  };

  /** The name from args or the row; from the palette (`prompt`), ask for one of `choices`. */
  const pickName = async (
    args: Args,
    title: string,
    choices: string[]
  ): Promise<string | undefined> => {
    const name = targetName(args);
    if (name || !args.prompt) {
      return name;
    }
    if (!choices.length) {
      Notification.info(
        trans.__('No AIaaS models yet: train one in a notebook first.'),
        { autoClose: 4000 }
      );
      return undefined;
    }
    const answer = await InputDialog.getItem({
      title,
      items: choices,
      okLabel: trans.__('OK')
    });
    return answer.button.accept && answer.value ? answer.value : undefined;
  };

  const modelNames = () => (model.models?.models ?? []).map(m => m.name);
  const deployedNames = () =>
    (model.endpoints?.deployments ?? [])
      .map(d => d.name)
      .concat(
        (model.models?.models ?? []).filter(m => m.deployed).map(m => m.name)
      )
      .filter((n, i, all) => all.indexOf(n) === i);

  /** The URL `aiaas:copy-url` copies: args.url, the named deployment's URL, the row's data-aiaas-url. */
  const urlFor = (args: Args): string | undefined => {
    if ('url' in args) {
      return str(args.url);
    }
    const h = hit(args);
    const name = str(args.name) ?? h.endpoint ?? h.model;
    if (name) {
      const dep = model.endpoints?.deployments.find(d => d.name === name);
      const remote = model.endpoints?.endpoints.find(e => e.name === name);
      const found =
        dep?.url ?? remote?.url ?? summary(name)?.endpoint ?? undefined;
      if (found) {
        return found;
      }
    }
    return h.url;
  };

  /** Label: the palette's wording, `withName(name)` for a button with args, `plain` in the context menu. */
  const named = (
    args: Args,
    plain: string,
    withName: (name: string) => string,
    palette: string
  ): string => {
    if (args.prompt) {
      return palette;
    }
    const name = str(args.name);
    return name ? withName(name) : plain;
  };

  commands.addCommand(CommandIDs.open, {
    describedBy: DESCRIBED_BY[CommandIDs.open],
    label: trans.__('AIaaS: Open the models sidebar'),
    caption: trans.__('Show the AIaaS models, endpoints, jobs and cluster'),
    icon: options.icon,
    execute: () => app.shell.activateById(options.panelId)
  });

  commands.addCommand(CommandIDs.refresh, {
    describedBy: DESCRIBED_BY[CommandIDs.refresh],
    label: trans.__('AIaaS: Refresh the models sidebar'),
    caption: trans.__('Read models, endpoints, jobs and cluster again'),
    execute: () => model.refresh()
  });

  commands.addCommand(CommandIDs.deploy, {
    describedBy: DESCRIBED_BY[CommandIDs.deploy],
    label: args =>
      named(
        args,
        trans.__('Deploy'),
        n => trans.__('Deploy %1', n),
        trans.__('AIaaS: Deploy a model…')
      ),
    caption: trans.__(
      'Serve the model (or the given version) at an Open Inference Protocol endpoint'
    ),
    isEnabled: args => !!args.prompt || !!targetName(args),
    execute: async args => {
      const name = await pickName(
        args,
        trans.__('Deploy which model?'),
        modelNames()
      );
      if (!name) {
        return;
      }
      const ref = str(args.ref);
      const target = ref ?? name;
      const current = summary(name);
      if (current?.deployed) {
        const answer = await showDialog({
          title: trans.__('Replace the deployment of %1?', name),
          body: trans.__(
            '%1 now serves v%2; deploying %3 replaces it.',
            name,
            String(current.deployed_version ?? '?'),
            target
          ),
          buttons: [
            Dialog.cancelButton({ label: trans.__('Cancel') }),
            Dialog.warnButton({ label: trans.__('Replace') })
          ]
        });
        if (!answer.button.accept) {
          return;
        }
      }
      const id = Notification.emit(
        trans.__('Deploying %1…', target),
        'in-progress',
        { autoClose: false }
      );
      try {
        const dep = await api.deploy(name, ref);
        Notification.update({
          id,
          message: trans.__(
            '%1 v%2 serves at %3',
            dep.name,
            String(dep.version),
            dep.url
          ),
          type: 'success',
          autoClose: 5000
        });
      } catch (error) {
        Notification.update({
          id,
          message: trans.__('Deploy %1 failed: %2', target, errorText(error)),
          type: 'error',
          autoClose: 10000
        });
      }
      await model.refresh();
    }
  });

  commands.addCommand(CommandIDs.undeploy, {
    describedBy: DESCRIBED_BY[CommandIDs.undeploy],
    label: args =>
      named(
        args,
        trans.__('Undeploy'),
        n => trans.__('Undeploy %1', n),
        trans.__('AIaaS: Undeploy a model…')
      ),
    caption: trans.__('Stop serving the model; the registered model stays'),
    // a model that is not deployed, or a remote endpoint: nothing to undeploy
    isEnabled: args =>
      !!args.prompt || deployedNames().includes(targetName(args) ?? ''),
    execute: async args => {
      const name = await pickName(
        args,
        trans.__('Undeploy which model?'),
        deployedNames()
      );
      if (!name) {
        return;
      }
      const answer = await showDialog({
        title: trans.__('Undeploy %1?', name),
        body: trans.__(
          'The endpoint of %1 stops answering; the registered model stays.',
          name
        ),
        buttons: [
          Dialog.cancelButton({ label: trans.__('Cancel') }),
          Dialog.warnButton({ label: trans.__('Undeploy') })
        ]
      });
      if (!answer.button.accept) {
        return;
      }
      try {
        await api.undeploy(name);
        Notification.success(trans.__('%1 undeployed', name), {
          autoClose: 3000
        });
      } catch (error) {
        Notification.error(
          trans.__('Undeploy %1 failed: %2', name, errorText(error)),
          { autoClose: 8000 }
        );
      }
      await model.refresh();
    }
  });

  commands.addCommand(CommandIDs.insertSnippet, {
    describedBy: DESCRIBED_BY[CommandIDs.insertSnippet],
    label: args =>
      named(
        args,
        trans.__('Insert snippet'),
        n => trans.__('Insert a snippet for %1', n),
        trans.__('AIaaS: Insert a model snippet…')
      ),
    caption: trans.__(
      'A new notebook cell that uses the model (predict when deployed, else load)'
    ),
    isEnabled: args => !!args.prompt || !!summary(targetName(args)),
    execute: async args => {
      const name = await pickName(
        args,
        trans.__('Insert a snippet for which model?'),
        modelNames()
      );
      const found = summary(name);
      if (!found) {
        if (name) {
          Notification.warning(
            trans.__('No model named %1 in the registry.', name),
            { autoClose: 4000 }
          );
        }
        return false;
      }
      const kind = str(args.kind) as SnippetKind | undefined;
      return insertIntoNotebook(
        app,
        tracker,
        kind ? snippet(found, kind) : defaultSnippet(found),
        trans
      );
    }
  });

  commands.addCommand(CommandIDs.loadModel, {
    describedBy: DESCRIBED_BY[CommandIDs.loadModel],
    label: args =>
      named(
        args,
        trans.__('Load model'),
        n => trans.__('Load %1 in the notebook', n),
        trans.__('AIaaS: Load a model…')
      ),
    caption: trans.__(
      'A new notebook cell that loads the registered model into the kernel'
    ),
    isEnabled: args => !!args.prompt || !!str(args.ref) || !!targetName(args),
    execute: async args => {
      const name = await pickName(
        args,
        trans.__('Load which model?'),
        modelNames()
      );
      const ref = str(args.ref);
      if (!name && !ref) {
        return false;
      }
      const found = summary(name);
      const text = ref
        ? loadSnippet(ref)
        : found
          ? snippet(found, 'load')
          : loadSnippet(name!);
      return insertIntoNotebook(app, tracker, text, trans);
    }
  });

  /** The sweep `aiaas:show-sweep` acts on: args.id, else the right-clicked sweep row. */
  const sweepId = (args: Args): string | undefined => {
    if (str(args.id) || args.prompt || 'id' in args) {
      return str(args.id);
    }
    const node = app.contextMenuHitTest(
      n => n.dataset.aiaasSweep !== undefined
    );
    return str(node?.dataset.aiaasSweep);
  };

  commands.addCommand(CommandIDs.showSweep, {
    describedBy: DESCRIBED_BY[CommandIDs.showSweep],
    label: args =>
      args.prompt
        ? trans.__('AIaaS: Show a sweep in the notebook…')
        : str(args.id)
          ? trans.__('Show sweep %1', str(args.id)!)
          : trans.__('Show in notebook'),
    caption: trans.__(
      "A new notebook cell with the sweep's leaderboard (%%aiaas sweep show ID)"
    ),
    isEnabled: args => !!args.prompt || !!sweepId(args),
    execute: async args => {
      let id = sweepId(args);
      if (!id && args.prompt) {
        const choices = (model.sweeps ?? []).map(s => `${s.id} (${s.model})`);
        if (!choices.length) {
          Notification.info(
            trans.__('No sweeps yet: %%aiaas sweep starts one.'),
            { autoClose: 4000 }
          );
          return false;
        }
        const answer = await InputDialog.getItem({
          title: trans.__('Show which sweep?'),
          items: choices,
          okLabel: trans.__('OK')
        });
        id =
          answer.button.accept && answer.value
            ? answer.value.split(' ')[0]
            : undefined;
      }
      if (!id) {
        return false;
      }
      return insertIntoNotebook(app, tracker, sweepSnippet(id), trans);
    }
  });

  commands.addCommand(CommandIDs.copyUrl, {
    describedBy: DESCRIBED_BY[CommandIDs.copyUrl],
    label: args =>
      args.prompt
        ? trans.__('AIaaS: Copy an endpoint URL…')
        : trans.__('Copy URL'),
    caption: trans.__("Copy the endpoint's URL to the clipboard"),
    isEnabled: args => !!args.prompt || !!urlFor(args),
    execute: async args => {
      let url = urlFor(args);
      if (!url && args.prompt) {
        const name = await pickName(
          args,
          trans.__('Copy the URL of which endpoint?'),
          deployedNames()
        );
        url = name ? urlFor({ name }) : undefined;
      }
      if (!url) {
        return false;
      }
      Clipboard.copyToSystem(url);
      Notification.info(trans.__('Copied %1', url), { autoClose: 2000 });
      return true;
    }
  });
}

/** The commands in the palette under "AIaaS"; those needing a name prompt for it. */
export function addToPalette(
  palette: ICommandPalette,
  trans: TranslationBundle
): void {
  const category = trans.__('AIaaS');
  for (const command of PALETTE_COMMANDS) {
    const prompt =
      command !== CommandIDs.open && command !== CommandIDs.refresh;
    palette.addItem({
      command,
      category,
      args: prompt ? { prompt: true } : {}
    });
  }
}
