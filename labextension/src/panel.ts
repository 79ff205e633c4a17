/**
 * The sidebar: JupyterLab's `SidePanel` with four accordion sections (Models, Endpoints,
 * Jobs, Cluster), a toolbar refresh button and the `Refresher` that keeps them current.
 * What the buttons do (API calls, dialogs, inserting into the notebook) is injected as
 * `IPanelActions`, so this file only wires views to data.
 */

import { SidePanel, refreshIcon, ToolbarButton } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { AccordionPanel, Widget } from '@lumino/widgets';

import { AiaasApi, ApiError } from './api';
import { Refresher } from './refresh';
import { IModelSummary } from './types';
import { SectionView } from './views/base';
import { ClusterView } from './views/cluster';
import { EndpointsView } from './views/endpoints';
import { JobsView } from './views/jobs';
import { IModelActions, ModelsView } from './views/models';

export const PANEL_ID = 'aiaas-sidebar';

export interface IPanelActions extends IModelActions {
  undeployName(name: string): void;
}

/** A section of the accordion around one plain-DOM view. */
class Section extends Widget {
  constructor(view: { node: HTMLElement }, label: string, cls: string) {
    super();
    this.addClass('aiaas-section');
    this.addClass(cls);
    this.title.label = label;
    this.node.appendChild(view.node);
  }
}

/** Put what `request` answers into `view`, or its error line; passes both on. */
async function load<T>(request: Promise<T>, view: SectionView<T>): Promise<T> {
  try {
    const data = await request;
    view.setData(data);
    return data;
  } catch (error) {
    view.setError(errorText(error));
    throw error;
  }
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError) {
    return error.line;
  }
  return String((error as Error)?.message || error);
}

export class AiaasPanel extends SidePanel {
  readonly models: ModelsView;
  readonly endpoints: EndpointsView;
  readonly jobs: JobsView;
  readonly cluster: ClusterView;
  readonly refresher: Refresher;
  private modelList: IModelSummary[] = [];
  private sized = false;

  constructor(
    private readonly api: AiaasApi,
    actions: IPanelActions
  ) {
    super();
    this.id = PANEL_ID;
    this.addClass('aiaas-panel');
    this.title.caption = 'AIaaS models';
    this.models = new ModelsView(actions);
    this.endpoints = new EndpointsView(actions);
    this.jobs = new JobsView();
    this.cluster = new ClusterView();
    this.addWidget(new Section(this.models, 'Models', 'aiaas-section-models'));
    this.addWidget(new Section(this.endpoints, 'Endpoints', 'aiaas-section-endpoints'));
    this.addWidget(new Section(this.jobs, 'Jobs', 'aiaas-section-jobs'));
    this.addWidget(new Section(this.cluster, 'Cluster', 'aiaas-section-cluster'));
    const title = new Widget();
    title.addClass('aiaas-panel-title');
    title.node.textContent = 'AIaaS';
    this.header.addWidget(title);
    this.toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: 'Refresh models, endpoints, jobs and cluster',
        onClick: () => void this.refreshNow()
      })
    );
    this.refresher = new Refresher(full => this.refresh(full));
  }

  /** The models as last read (for commands that pick one). */
  get modelSummaries(): IModelSummary[] {
    return this.modelList;
  }

  refreshNow(): Promise<void> {
    return this.refresher.refreshNow();
  }

  /** Read the API into the views; rejects only when every request failed (so polling backs off). */
  async refresh(full: boolean): Promise<void> {
    const tasks: Promise<unknown>[] = [
      load(this.api.models(), this.models).then(answer => {
        this.modelList = answer.models;
      }),
      load(this.api.jobs(), this.jobs)
    ];
    if (full) {
      tasks.push(load(this.api.endpoints(), this.endpoints), load(this.api.cluster(), this.cluster));
    }
    const results = await Promise.allSettled(tasks);
    const failed = results.filter(r => r.status === 'rejected') as PromiseRejectedResult[];
    if (failed.length === results.length) {
      throw failed[0].reason;
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    const content = this.content;
    if (!this.sized && content instanceof AccordionPanel) {
      // models get most of the height (once, after the first layout); the user may drag the splitters
      this.sized = true;
      requestAnimationFrame(() => content.setRelativeSizes([5, 2, 2, 1.5]));
    }
    this.refresher.shown();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.refresher.hidden();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.refresher.dispose();
    super.dispose();
  }
}
