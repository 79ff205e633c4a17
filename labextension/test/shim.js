/* What jsdom lacks and the JupyterLab/lumino packages touch at import or drag time
 * (the same gaps @jupyterlab/testing's jest-shim fills). */
if (typeof window.DragEvent === 'undefined') {
  window.DragEvent = class DragEvent extends MouseEvent {};
}
if (typeof document.elementFromPoint !== 'function') {
  document.elementFromPoint = () => null;
}
if (typeof window.matchMedia !== 'function') {
  window.matchMedia = () => ({
    matches: false,
    addListener() {},
    removeListener() {},
    addEventListener() {},
    removeEventListener() {}
  });
}
if (typeof window.requestIdleCallback !== 'function') {
  window.requestIdleCallback = cb =>
    setTimeout(() => cb({ didTimeout: false, timeRemaining: () => 50 }), 0);
  window.cancelIdleCallback = id => clearTimeout(id);
}
