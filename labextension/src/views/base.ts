/**
 * What every section view shares: the last good data, the current error line, and a
 * `render()` from both. An error keeps the last data on screen (never a blank section).
 */

import { h } from '../dom';

export abstract class SectionView<T> {
  readonly node: HTMLElement;
  protected data: T | null = null;
  protected error: string | null = null;

  constructor(cls: string) {
    this.node = h('div', { class: `aiaas-view ${cls}` });
  }

  /** New data from the API; clears the error. */
  setData(data: T): void {
    this.data = data;
    this.error = null;
    this.render();
  }

  /** An error line for the section (null clears it). */
  setError(message: string | null): void {
    this.error = message;
    this.render();
  }

  abstract render(): void;
}
