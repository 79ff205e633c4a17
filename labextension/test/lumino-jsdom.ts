/**
 * jsdom has no `DragEvent`, which `@lumino/dragdrop` (loaded by `@lumino/widgets`) subclasses at
 * import time: import this module before any lumino widget.
 */
const g = globalThis as any;
if (typeof g.DragEvent === 'undefined') {
  g.DragEvent = class DragEvent extends MouseEvent {};
}
export {};
