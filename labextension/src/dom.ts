/**
 * A tiny element builder and the in-place patching the views rely on. The views are plain DOM
 * (no React) so that a refresh can leave every unchanged node alone: focus, a text selection
 * and screen-reader live regions survive a 2-second poll. Text always goes through
 * `textContent` / text nodes (never HTML).
 */

import type { TranslationBundle } from '@jupyterlab/translation';

import { formatDuration, parseTime, relativeTime } from './format';

export type Child = Node | string | null | undefined | false;
export type Attrs = Record<
  string,
  string | number | boolean | null | undefined
>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
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

export function append(el: Element, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    el.appendChild(
      typeof child === 'string' ? document.createTextNode(child) : child
    );
  }
}

/**
 * A `<button type=button>` that runs `onClick` (and never submits or bubbles the click).
 * `label` is its visible text and accessible name unless `attrs` gives an `aria-label`.
 * `onClick` gets the button: a handler of a patched row reads its data from the DOM or the
 * row's state at click time (see `morph`), never from the closure of an older rendering.
 */
export function button(
  cls: string,
  label: Child,
  onClick: (el: HTMLButtonElement) => void,
  attrs: Attrs = {}
): HTMLButtonElement {
  const el = h(
    'button',
    { type: 'button', class: `aiaas-button ${cls}`, ...attrs },
    label
  );
  el.addEventListener('click', event => {
    event.stopPropagation();
    onClick(el);
  });
  return el;
}

/** Set `el`'s text only when it differs: no mutation (and no live-region announcement) otherwise. */
export function setText(el: Node, text: string): void {
  if (el.textContent !== text) {
    el.textContent = text;
  }
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

// ---------------------------------------------------------------------------------------------
// Times that tick

/** `ago`: "5 s ago" since the time; `since`: the duration up to now ("1 min 5 s"). */
export type TimeKind = 'ago' | 'since';

/**
 * A span showing `iso` relative to now, marked so that `updateTimes` can refresh its text on
 * the view's timer without rebuilding the row around it.
 */
export function timeSpan(
  cls: string,
  iso: string | null | undefined,
  kind: TimeKind,
  trans: TranslationBundle,
  now: number = Date.now()
): HTMLSpanElement {
  return h('span', {
    class: `aiaas-time ${cls}`,
    'data-aiaas-time': iso || '',
    'data-aiaas-time-kind': kind,
    title: iso || null,
    text: timeText(iso, kind, trans, now)
  });
}

export function timeText(
  iso: string | null | undefined,
  kind: TimeKind,
  trans: TranslationBundle,
  now: number = Date.now()
): string {
  if (kind === 'ago') {
    return relativeTime(iso, trans, now);
  }
  const t = parseTime(iso);
  return t === null ? '' : formatDuration(Math.max(0, now - t) / 1000, trans);
}

/** Re-render every time span under `root` for `now`: touches only the texts that changed. */
export function updateTimes(
  root: Element,
  trans: TranslationBundle,
  now: number = Date.now()
): void {
  root.querySelectorAll<HTMLElement>('[data-aiaas-time]').forEach(el => {
    const kind = (el.dataset.aiaasTimeKind as TimeKind) || 'ago';
    setText(el, timeText(el.dataset.aiaasTime, kind, trans, now));
  });
}

// ---------------------------------------------------------------------------------------------
// Patching in place

function sameKind(a: Node, b: Node): boolean {
  if (a.nodeType !== b.nodeType) {
    return false;
  }
  if (a.nodeType !== Node.ELEMENT_NODE) {
    return true;
  }
  const x = a as Element;
  const y = b as Element;
  // a different class means a different control (Deploy vs Undeploy): replace it, with its listener
  return (
    x.tagName === y.tagName &&
    x.getAttribute('class') === y.getAttribute('class')
  );
}

/**
 * Make `from` look like `to` by changing only what differs: attributes, text node data, and
 * children position by position (a child of another tag or class is replaced). `from` keeps its
 * identity, so focus on it or on an unchanged descendant, and selections in unchanged text,
 * survive. Listeners stay those of `from`'s nodes: they must read the row's current data from
 * state shared by both renderings, not from the rendering's closure (see `KeyedList`).
 */
export function morph(from: Element, to: Element): void {
  for (const attr of Array.from(from.attributes)) {
    if (!to.hasAttribute(attr.name)) {
      from.removeAttribute(attr.name);
    }
  }
  for (const attr of Array.from(to.attributes)) {
    if (from.getAttribute(attr.name) !== attr.value) {
      from.setAttribute(attr.name, attr.value);
    }
  }
  if (
    from instanceof HTMLProgressElement &&
    to instanceof HTMLProgressElement &&
    from.value !== to.value
  ) {
    from.value = to.value;
  }
  const old = Array.from(from.childNodes);
  const fresh = Array.from(to.childNodes);
  fresh.forEach((node, i) => {
    const current = old[i];
    if (!current) {
      from.appendChild(node);
    } else if (!sameKind(current, node)) {
      from.replaceChild(node, current);
    } else if (node.nodeType === Node.ELEMENT_NODE) {
      morph(current as Element, node as Element);
    } else if (current.nodeValue !== node.nodeValue) {
      current.nodeValue = node.nodeValue;
    }
  });
  old.slice(fresh.length).forEach(node => node.remove());
}

/** A row's state shared by all its renderings (listeners read `item` when they run). */
export interface IRowState<T> {
  key: string;
  item: T;
}

/**
 * A list whose children are keyed rows, in the order of the items given to `sync`. A row whose
 * signature did not change is not touched; a changed one is re-rendered and `morph`ed into the
 * existing node; rows are moved, never re-created, when the order changes.
 */
export class KeyedList<T, S extends IRowState<T> = IRowState<T>> {
  private readonly rows = new Map<
    string,
    { state: S; sig: string; el: HTMLElement }
  >();

  constructor(
    readonly node: HTMLElement,
    private readonly options: {
      key: (item: T) => string;
      /** everything the row shows except ticking times (which `updateTimes` handles) */
      sig: (item: T, state: S) => string;
      render: (state: S) => HTMLElement;
      state?: (key: string, item: T) => S;
    }
  ) {}

  /** The row node of `key`, if shown. */
  get(key: string): HTMLElement | undefined {
    return this.rows.get(key)?.el;
  }

  sync(items: T[]): void {
    const { key, sig, render } = this.options;
    const keep = new Set(items.map(key));
    for (const [k, row] of this.rows) {
      if (!keep.has(k)) {
        row.el.remove();
        this.rows.delete(k);
      }
    }
    let cursor: ChildNode | null = this.node.firstChild;
    for (const item of items) {
      const k = key(item);
      let row = this.rows.get(k);
      if (!row) {
        const state = this.options.state
          ? this.options.state(k, item)
          : ({ key: k, item } as S);
        row = { state, sig: sig(item, state), el: render(state) };
        this.rows.set(k, row);
      } else {
        row.state.item = item;
        const next = sig(item, row.state);
        if (next !== row.sig) {
          row.sig = next;
          morph(row.el, render(row.state));
        }
      }
      if (row.el !== cursor) {
        this.node.insertBefore(row.el, cursor);
      } else {
        cursor = cursor.nextSibling;
      }
    }
  }
}
