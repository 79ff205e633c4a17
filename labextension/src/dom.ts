/** A tiny element builder: the views are plain DOM (no React), so they render fast and are
 * testable in jsdom without JupyterLab. Text always goes through `textContent` (never HTML). */

export type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | null | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (key === 'class') {
      el.className = String(value);
    } else if (key === 'text') {
      el.textContent = String(value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, ...children);
  return el;
}

export function append(el: HTMLElement, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    el.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
}

/** A `<button type=button>` that runs `onClick` (and never submits or bubbles the click). */
export function button(
  cls: string,
  label: string,
  onClick: () => void,
  attrs: Record<string, string | number | boolean | null | undefined> = {}
): HTMLButtonElement {
  const el = h('button', { type: 'button', class: `aiaas-button ${cls}`, text: label, ...attrs });
  el.addEventListener('click', event => {
    event.stopPropagation();
    onClick();
  });
  return el;
}

/** The health dot's class for a health string from the API. */
export function healthClass(health: string): string {
  const h = (health || '').toLowerCase();
  if (h === 'ready' || h === 'up') {
    return 'aiaas-health-ok';
  }
  if (h.startsWith('up')) {
    return 'aiaas-health-warn';
  }
  return 'aiaas-health-bad';
}

/** A section's error line (`.aiaas-error`), or nothing. */
export function errorLine(message: string | null): HTMLElement | null {
  return message ? h('div', { class: 'aiaas-error', role: 'alert', text: message }) : null;
}
