/**
 * Dragging a model row into a notebook with lumino's `Drag`, the way JupyterLab drags cells:
 * the payload is `application/vnd.jupyter.cells` (one code cell with the snippet), which the
 * notebook's own drop handler inserts where the pointer is; `text/plain` is there for other
 * targets. No drop listeners of our own.
 */

import { MimeData } from '@lumino/coreutils';
import { Drag } from '@lumino/dragdrop';

import { h } from '../dom';

export const JUPYTER_CELL_MIME = 'application/vnd.jupyter.cells';
/** Pixels the pointer must move with the button down before a drag starts (a click stays a click). */
export const DRAG_THRESHOLD = 5;

/** The mime data of a drag of `source` (a code snippet). */
export function snippetMimeData(source: string): MimeData {
  const data = new MimeData();
  data.setData(JUPYTER_CELL_MIME, [
    { cell_type: 'code', source, metadata: {} }
  ]);
  data.setData('text/plain', source);
  return data;
}

/**
 * Let `node` start a drag of `snippet()` (read when the drag starts, so it is the current one)
 * after a primary-button press and a move past `DRAG_THRESHOLD`. `onStart` sees the `Drag`.
 */
export function makeDraggable(
  node: HTMLElement,
  snippet: () => string,
  label: () => string,
  onStart?: (drag: Drag) => void
): void {
  node.addEventListener('pointerdown', (down: PointerEvent) => {
    // the version list keeps mouse text selection (refs, metrics); the row itself is the handle
    if (
      down.button !== 0 ||
      (down.target as Element | null)?.closest?.(
        'input, textarea, .aiaas-model-versions'
      )
    ) {
      return;
    }
    const x0 = down.clientX;
    const y0 = down.clientY;
    const move = (event: PointerEvent) => {
      if (
        Math.abs(event.clientX - x0) < DRAG_THRESHOLD &&
        Math.abs(event.clientY - y0) < DRAG_THRESHOLD
      ) {
        return;
      }
      stop();
      window.getSelection()?.removeAllRanges(); // the press began a text selection: the drag replaces it
      const drag = new Drag({
        mimeData: snippetMimeData(snippet()),
        dragImage: h('div', { class: 'aiaas-drag-image', text: label() }),
        proposedAction: 'copy',
        supportedActions: 'copy',
        source: node
      });
      onStart?.(drag);
      void drag.start(event.clientX, event.clientY);
    };
    const stop = () => {
      document.removeEventListener('pointermove', move, true);
      document.removeEventListener('pointerup', stop, true);
    };
    document.addEventListener('pointermove', move, true);
    document.addEventListener('pointerup', stop, true);
  });
}
