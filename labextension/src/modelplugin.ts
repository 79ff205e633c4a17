/**
 * The plugin that provides `IAiaasModel`: one model for the whole application (the sidebar,
 * the status bar, any other extension), its settings read from the registry and applied live.
 */

import type {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { AiaasApi } from './api';
// eslint-disable-next-line jupyter/prefer-lazy-imports -- the model is the token this plugin provides at activation
import { AiaasModel } from './model';
import { serverRequester } from './request';
import { SETTINGS_ID } from './settings';
import { IAiaasModel } from './tokens';

export const modelPlugin: JupyterFrontEndPlugin<IAiaasModel> = {
  id: 'aiaas-jupyter:model',
  description:
    'The AIaaS data (models, endpoints, jobs, cluster) with change signals, polled while something shows it.',
  autoStart: true,
  provides: IAiaasModel,
  optional: [ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    registry: ISettingRegistry | null
  ): IAiaasModel => {
    const model = new AiaasModel(new AiaasApi(serverRequester()));
    if (registry) {
      registry
        .load(SETTINGS_ID)
        .then(settings => {
          const apply = () =>
            model.updateSettings(settings.composite as Record<string, unknown>);
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason =>
          console.warn(
            'aiaas-jupyter: settings not loaded, using the defaults',
            reason
          )
        );
    }
    return model;
  }
};
