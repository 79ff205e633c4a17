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
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import { AiaasApi } from './api';
import { addCommands, addToPalette, CommandIDs } from './commands';
import { AiaasModel } from './model';
import { AiaasPanel } from './panel';
import { serverRequester } from './request';
import { RunningJobsItem } from './statusbar';
import { IAiaasModel } from './tokens';

import iconSvg from '../style/icon.svg';

export const aiaasIcon = new LabIcon({ name: 'aiaas-jupyter:models', svgstr: iconSvg });

/** The plugin whose settings (`schema/plugin.json`) hold the intervals, page size and menus. */
export const SETTINGS_ID = 'aiaas-jupyter:plugin';
export const TRANSLATION_DOMAIN = 'aiaas_jupyter';

export { CommandIDs };

const modelPlugin: JupyterFrontEndPlugin<IAiaasModel> = {
  id: 'aiaas-jupyter:model',
  description: 'The AIaaS data (models, endpoints, jobs, cluster) with change signals, polled while something shows it.',
  autoStart: true,
  provides: IAiaasModel,
  optional: [ISettingRegistry],
  activate: (app: JupyterFrontEnd, registry: ISettingRegistry | null): IAiaasModel => {
    const model = new AiaasModel(new AiaasApi(serverRequester()));
    if (registry) {
      registry
        .load(SETTINGS_ID)
        .then(settings => {
          const apply = () => model.updateSettings(settings.composite as Record<string, unknown>);
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason => console.warn('aiaas-jupyter: settings not loaded, using the defaults', reason));
    }
    return model;
  }
};

const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: SETTINGS_ID,
  description: 'AIaaS models, endpoints, jobs and cluster in the left sidebar, and their commands.',
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
  description: 'The number of running AIaaS jobs in the status bar; a click opens the sidebar.',
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
