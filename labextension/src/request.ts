/**
 * The real transport: JupyterLab's `ServerConnection` adds the token and XSRF headers the
 * server extension requires (every handler is `@authenticated`).
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { ApiError, readAnswer, Requester } from './api';

export function serverRequester(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Requester {
  return async (path: string, init: RequestInit = {}) => {
    const url = URLExt.join(settings.baseUrl, 'aiaas', 'api', path);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, settings);
    } catch (error) {
      throw new ApiError(
        0,
        `the Jupyter server cannot be reached: ${String((error as Error).message || error)}`
      );
    }
    return readAnswer(response);
  };
}
