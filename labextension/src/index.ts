/**
 * The JupyterLab plugin: puts the AIaaS panel in the left sidebar, adds the `aiaas:open`
 * and `aiaas:refresh` commands to the palette, and implements the panel's actions against
 * JupyterLab (dialogs, notifications, the clipboard, the current notebook).
 */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Clipboard,
  Dialog,
  ICommandPalette,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { AiaasApi } from './api';
import { defaultSnippet, snippet, SnippetKind } from './format';
import { AiaasPanel, errorText, IPanelActions } from './panel';
import { serverRequester } from './request';
import { IModelSummary } from './types';
import { SNIPPET_MIME } from './views/models';

import iconSvg from '../style/icon.svg';

export const aiaasIcon = new LabIcon({ name: 'aiaas-jupyter:models', svgstr: iconSvg });

export namespace CommandIDs {
  export const open = 'aiaas:open';
  export const refresh = 'aiaas:refresh';
}

/** Put `text` in a new code cell below the active cell of `panel` (default: the current notebook). */
function insertIntoNotebook(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  text: string,
  panel: NotebookPanel | null = tracker.currentWidget
): boolean {
  if (!panel) {
    Notification.warning('Open a notebook first: the snippet goes into a new cell of it.', { autoClose: 4000 });
    return false;
  }
  const notebook = panel.content;
  NotebookActions.insertBelow(notebook);
  const cell = notebook.activeCell;
  if (!cell) {
    return false;
  }
  if (cell.model.type !== 'code') {
    NotebookActions.changeCellType(notebook, 'code');
  }
  notebook.activeCell?.model.sharedModel.setSource(text);
  app.shell.activateById(panel.id);
  notebook.activeCell?.editor?.focus();
  return true;
}

/**
 * Let a model row dragged from the sidebar be dropped between cells of a notebook: the
 * snippet becomes a new cell below the cell under the pointer. Drops onto a cell editor are
 * left to CodeMirror, which inserts the text/plain payload at the drop point.
 */
function acceptSnippetDrops(app: JupyterFrontEnd, tracker: INotebookTracker, panel: NotebookPanel): void {
  const node = panel.content.node;
  const ours = (event: DragEvent) =>
    !!event.dataTransfer && Array.from(event.dataTransfer.types).includes(SNIPPET_MIME) &&
    !(event.target as HTMLElement | null)?.closest?.('.cm-editor');
  node.addEventListener('dragover', event => {
    if (ours(event)) {
      event.preventDefault();
      event.dataTransfer!.dropEffect = 'copy';
    }
  });
  node.addEventListener('drop', event => {
    if (!ours(event)) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    const cells = panel.content.widgets;
    const target = (event.target as HTMLElement).closest('.jp-Cell');
    const index = cells.findIndex(cell => cell.node === target);
    if (index >= 0) {
      panel.content.activeCellIndex = index;
    } else if (cells.length) {
      panel.content.activeCellIndex = cells.length - 1; // below the last cell
    }
    insertIntoNotebook(app, tracker, event.dataTransfer!.getData(SNIPPET_MIME), panel);
  });
}

function actionsFor(
  app: JupyterFrontEnd,
  api: AiaasApi,
  tracker: INotebookTracker,
  panel: () => AiaasPanel
): IPanelActions {
  const undeployName = async (name: string) => {
    const answer = await showDialog({
      title: `Undeploy ${name}?`,
      body: `The endpoint of ${name} stops answering; the registered model stays.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Undeploy' })]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      await api.undeploy(name);
      Notification.success(`${name} undeployed`, { autoClose: 3000 });
    } catch (error) {
      Notification.error(`Undeploy ${name} failed: ${errorText(error)}`, { autoClose: 8000 });
    }
    await panel().refreshNow();
  };
  return {
    insert: (model: IModelSummary, kind?: SnippetKind) => {
      insertIntoNotebook(app, tracker, kind ? snippet(model, kind) : defaultSnippet(model));
    },
    deploy: async (model: IModelSummary, ref?: string) => {
      const target = ref ?? model.name;
      if (model.deployed) {
        const answer = await showDialog({
          title: `Replace the deployment of ${model.name}?`,
          body: `${model.name} now serves v${model.deployed_version ?? '?'}; deploying ${target} replaces it.`,
          buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Replace' })]
        });
        if (!answer.button.accept) {
          return;
        }
      }
      const id = Notification.emit(`Deploying ${target}…`, 'in-progress', { autoClose: false });
      try {
        const dep = await api.deploy(model.name, ref);
        Notification.update({
          id,
          message: `${dep.name} v${dep.version} serves at ${dep.url}`,
          type: 'success',
          autoClose: 5000
        });
      } catch (error) {
        Notification.update({ id, message: `Deploy ${target} failed: ${errorText(error)}`, type: 'error', autoClose: 10000 });
      }
      await panel().refreshNow();
    },
    undeploy: (model: IModelSummary) => undeployName(model.name),
    undeployName,
    copy: (text: string) => {
      Clipboard.copyToSystem(text);
      Notification.info(`Copied ${text}`, { autoClose: 2000 });
    },
    details: (name: string) => api.model(name)
  };
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'aiaas-jupyter:sidebar',
  description: 'AIaaS models, endpoints, jobs and cluster in the left sidebar.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    const api = new AiaasApi(serverRequester());
    let panel: AiaasPanel;
    panel = new AiaasPanel(api, actionsFor(app, api, tracker, () => panel));
    panel.title.icon = aiaasIcon;
    app.shell.add(panel, 'left', { rank: 350 });
    tracker.widgetAdded.connect((_, notebook) => acceptSnippetDrops(app, tracker, notebook));
    restorer?.add(panel, 'aiaas-sidebar');

    app.commands.addCommand(CommandIDs.open, {
      label: 'AIaaS: Open the models sidebar',
      caption: 'Show the AIaaS models, endpoints, jobs and cluster',
      icon: aiaasIcon,
      execute: () => app.shell.activateById(panel.id)
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: 'AIaaS: Refresh the models sidebar',
      caption: 'Read models, endpoints, jobs and cluster again',
      execute: () => panel.refreshNow()
    });
    if (palette) {
      palette.addItem({ command: CommandIDs.open, category: 'AIaaS' });
      palette.addItem({ command: CommandIDs.refresh, category: 'AIaaS' });
    }
  }
};

export default plugin;
