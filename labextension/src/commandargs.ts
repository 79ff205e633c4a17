/**
 * The arguments of each `aiaas:*` command, as JSON schemas (`describedBy`): what the palette,
 * `app.commands.describedBy(id)` and other extensions read to call them correctly. Kept apart
 * from `commands.ts`, which says what the commands do.
 */

import type { ReadonlyJSONObject } from '@lumino/coreutils';

/** What each command's arguments are, for the command palette, the API and extensions. */
const PROMPT = {
  type: 'boolean',
  description: 'ask for the model (from the palette)'
};
const NO_ARGS = { args: { type: 'object', properties: {} } };
const MODEL_ARGS = (ref: boolean) => ({
  args: {
    type: 'object',
    properties: {
      name: {
        type: 'string',
        description: 'the registered model (default: the right-clicked row)'
      },
      ...(ref
        ? {
            ref: {
              type: 'string',
              description: 'NAME, NAME:VERSION or NAME@ALIAS (default: NAME)'
            }
          }
        : {}),
      prompt: PROMPT
    }
  }
});
export const DESCRIBED_BY: Record<string, { args: ReadonlyJSONObject }> = {
  'aiaas:open': NO_ARGS,
  'aiaas:refresh': NO_ARGS,
  'aiaas:deploy': MODEL_ARGS(true),
  'aiaas:undeploy': MODEL_ARGS(false),
  'aiaas:load-model': MODEL_ARGS(true),
  'aiaas:insert-snippet': {
    args: {
      type: 'object',
      properties: {
        name: { type: 'string', description: 'the registered model' },
        kind: {
          type: 'string',
          description: 'which snippet (load, predict, deploy, ...)'
        },
        prompt: PROMPT
      }
    }
  },
  'aiaas:show-sweep': {
    args: {
      type: 'object',
      properties: {
        id: {
          type: 'string',
          description: 'the sweep (default: the right-clicked sweep row)'
        },
        prompt: {
          type: 'boolean',
          description: 'ask for the sweep (from the palette)'
        }
      }
    }
  },
  'aiaas:copy-url': {
    args: {
      type: 'object',
      properties: {
        url: { type: 'string', description: 'the URL to copy' },
        name: {
          type: 'string',
          description: 'a deployment, whose URL is copied'
        },
        prompt: PROMPT
      }
    }
  }
};
