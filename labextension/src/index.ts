/**
 * The JupyterLab plugins, split the way JupyterLab's own extensions are:
 * - `aiaas-jupyter:model` provides `IAiaasModel` (the data, its polling, its settings), so any
 *   plugin can use the same data without a second poll;
 * - `aiaas-jupyter:plugin` puts the panel in the left sidebar and registers the commands
 *   (palette, context menu on rows — declared in `schema/plugin.json`);
 * - `aiaas-jupyter:status` shows "AIaaS: N running" in the status bar.
 * Translation is optional (`nullTranslator` when JupyterLab has none).
 */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import { AiaasApi } from './api';
import { addCommands, addToPalette, CommandIDs } from './commands';
import { modelPlugin } from './modelplugin';
// eslint-disable-next-line jupyter/prefer-lazy-imports -- the sidebar tab is added at activation, so the panel is needed at once
import { AiaasPanel } from './panel';
import { serverRequester } from './request';
import { RunningJobsItem } from './statusbar';
import { SETTINGS_ID } from './settings';
import { IAiaasModel } from './tokens';

import iconSvg from '../style/icon.svg';

export const aiaasIcon = new LabIcon({
  name: 'aiaas-jupyter:models',
  svgstr: iconSvg
});

export const TRANSLATION_DOMAIN = 'aiaas_jupyter';

export { CommandIDs };

const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: SETTINGS_ID,
  description:
    'AIaaS models, endpoints, jobs and cluster in the left sidebar, and their commands.',
  autoStart: true,
  requires: [IAiaasModel, INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    model: IAiaasModel,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
    const panel = new AiaasPanel({ model, commands: app.commands, trans });
    panel.title.icon = aiaasIcon;
    app.shell.add(panel, 'left', { rank: 350 });
    restorer?.add(panel, 'aiaas-sidebar');
    addCommands(app, model, tracker, trans, {
      api: new AiaasApi(serverRequester()),
      panelId: panel.id,
      icon: aiaasIcon
    });
    if (palette) {
      addToPalette(palette, trans);
    }
  }
};

const statusPlugin: JupyterFrontEndPlugin<void> = {
  id: 'aiaas-jupyter:status',
  description:
    'The number of running AIaaS jobs in the status bar; a click opens the sidebar.',
  autoStart: true,
  requires: [IAiaasModel],
  optional: [IStatusBar, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    model: IAiaasModel,
    statusBar: IStatusBar | null,
    translator: ITranslator | null
  ) => {
    if (!statusBar) {
      return;
    }
    const trans = (translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
    const item = new RunningJobsItem(model, trans, () => {
      void app.commands.execute(CommandIDs.open);
    });
    statusBar.registerStatusItem('aiaas-jupyter:running-jobs', {
      item,
      align: 'left',
      rank: 50,
      isActive: () => item.isActive,
      activeStateChanged: item.activeChanged
    });
  }
};

export default [modelPlugin, sidebarPlugin, statusPlugin];
