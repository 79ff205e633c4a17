/**
 * A typed client of the server extension's API. The transport is injected (`Requester`), so
 * the panel uses JupyterLab's authenticated `ServerConnection` (see `request.ts`) and the unit
 * tests a plain function.
 */

import {
  IClusterAnswer,
  IEndpointsAnswer,
  IJob,
  IModelDetail,
  IModelsAnswer,
  ISweep
} from './types';

/** An answer that is not 2xx, with the server's one-line message and hint. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly hint: string | null = null
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** `message (hint)` for display in one line. */
  get line(): string {
    return this.hint ? `${this.message} (${this.hint})` : this.message;
  }
}

/** The one-line text of any failure, for error lines and notifications. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) {
    return error.line;
  }
  return String((error as Error)?.message || error);
}

/** Performs one request to `{base_url}/aiaas/api/{path}` and returns the parsed JSON body. */
export type Requester = (path: string, init?: RequestInit) => Promise<any>;

export class AiaasApi {
  constructor(private readonly request: Requester) {}

  models(): Promise<IModelsAnswer> {
    return this.request('models');
  }

  model(name: string): Promise<IModelDetail> {
    return this.request(`models/${encodeURIComponent(name)}`);
  }

  async jobs(): Promise<IJob[]> {
    const answer = await this.request('jobs');
    return answer.jobs;
  }

  /** Sweeps, newest first (`{"sweeps": [...]}` on the wire). */
  async sweeps(): Promise<ISweep[]> {
    const answer = await this.request('sweeps');
    return answer.sweeps;
  }

  endpoints(): Promise<IEndpointsAnswer> {
    return this.request('endpoints');
  }

  cluster(): Promise<IClusterAnswer> {
    return this.request('cluster');
  }

  deploy(
    name: string,
    ref?: string
  ): Promise<{ name: string; version: number; url: string }> {
    return this.request(`models/${encodeURIComponent(name)}/deploy`, {
      method: 'POST',
      body: JSON.stringify(ref ? { ref } : {})
    });
  }

  undeploy(name: string): Promise<{ name: string; undeployed: boolean }> {
    return this.request(`models/${encodeURIComponent(name)}/undeploy`, {
      method: 'POST',
      body: '{}'
    });
  }
}

/**
 * Turn a fetch `Response` into JSON or an `ApiError` carrying the server's message. Used by
 * `request.ts`; exported for the tests.
 */
export async function readAnswer(response: Response): Promise<any> {
  const text = await response.text();
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message =
      (data && typeof data.message === 'string' && data.message) ||
      `${response.status} ${response.statusText || 'error'} from the AIaaS server extension`;
    const hint =
      (data && data.hint) ||
      (response.status === 404 && !data
        ? 'is the aiaas_jupyter server extension enabled? (jupyter server extension list)'
        : null);
    throw new ApiError(response.status, message, hint);
  }
  if (data === null) {
    throw new ApiError(
      response.status,
      'the AIaaS server extension answered no JSON'
    );
  }
  return data;
}
