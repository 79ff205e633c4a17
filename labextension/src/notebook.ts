/**
 * What the commands put into a notebook: a new code cell below the active one, in the current
 * notebook (the one the user last worked in), focused so the user can run it at once.
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import type { TranslationBundle } from '@jupyterlab/translation';

/** Put `text` in a new code cell below the active cell of the current notebook. */
export function insertIntoNotebook(
  app: Pick<JupyterFrontEnd, 'shell'>,
  tracker: INotebookTracker,
  text: string,
  trans: TranslationBundle
): boolean {
  const panel = tracker.currentWidget;
  if (!panel) {
    Notification.warning(
      trans.__(
        'Open a notebook first: the snippet goes into a new cell of it.'
      ),
      {
        autoClose: 4000
      }
    );
    return false;
  }
  const notebook = panel.content;
  NotebookActions.insertBelow(notebook);
  if (notebook.activeCell && notebook.activeCell.model.type !== 'code') {
    NotebookActions.changeCellType(notebook, 'code');
  }
  const cell = notebook.activeCell;
  if (!cell) {
    return false;
  }
  cell.model.sharedModel.setSource(text);
  app.shell.activateById(panel.id);
  cell.editor?.focus();
  return true;
}

/** The cell `aiaas:load-model` inserts for an explicit reference (`name`, `name:3`, `name@prod`). */
export function loadSnippet(ref: string): string {
  return [
    'import aiaas_jupyter',
    `model = aiaas_jupyter.load_model(${JSON.stringify(ref)})`,
    'model'
  ].join('\n');
}
