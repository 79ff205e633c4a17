/**
 * The sidebar: JupyterLab's `SidePanel` with five accordion sections (Models, Endpoints, Jobs,
 * Sweeps, Cluster) rendered from the shared `IAiaasModel`, and a toolbar refresh button. The panel owns
 * no data and no polling: it tells the model when it is shown or hidden (the model decides when to
 * poll) and the buttons run commands (the commands do the work).
 */

import type { TranslationBundle } from '@jupyterlab/translation';
import {
  refreshIcon,
  SidePanel,
  ToolbarButton
} from '@jupyterlab/ui-components';
import type { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import { AccordionPanel, Widget } from '@lumino/widgets';

import { IAiaasModel } from './tokens';
import { CommandIDs, IViewOptions, SectionView } from './views/base';
import { ClusterView } from './views/cluster';
import { EndpointsView } from './views/endpoints';
import { JobsView } from './views/jobs';
import { ModelsView } from './views/models';
import { SweepsView } from './views/sweeps';

export const PANEL_ID = 'aiaas-sidebar';

export interface IPanelOptions {
  model: IAiaasModel;
  commands: CommandRegistry;
  /** from `translator.load('aiaas_jupyter')` (`nullTranslator` when JupyterLab has none) */
  trans: TranslationBundle;
}

/** A section of the accordion around one plain-DOM view; disposes the view with it. */
class Section extends Widget {
  constructor(
    readonly view: SectionView,
    label: string,
    cls: string
  ) {
    super();
    this.addClass('aiaas-section');
    this.addClass(cls);
    this.title.label = label;
    this.node.setAttribute('aria-label', label);
    this.node.appendChild(view.node);
  }

  dispose(): void {
    this.view.dispose();
    super.dispose();
  }
}

export class AiaasPanel extends SidePanel {
  readonly model: IAiaasModel;
  readonly models: ModelsView;
  readonly endpoints: EndpointsView;
  readonly jobs: JobsView;
  readonly sweeps: SweepsView;
  readonly cluster: ClusterView;
  private sized = false;

  constructor(options: IPanelOptions) {
    super();
    const { model, commands, trans } = options;
    const views: IViewOptions = { model, commands, trans };
    this.model = model;
    this.id = PANEL_ID;
    this.addClass('aiaas-panel');
    this.title.caption = trans.__('AIaaS models, endpoints, jobs and cluster');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute(
      'aria-label',
      trans.__('AIaaS models, endpoints, jobs and cluster')
    );
    this.models = new ModelsView(views);
    this.endpoints = new EndpointsView(views);
    this.jobs = new JobsView(views);
    this.sweeps = new SweepsView(views);
    this.cluster = new ClusterView(views);
    this.addWidget(
      new Section(this.models, trans.__('Models'), 'aiaas-section-models')
    );
    this.addWidget(
      new Section(
        this.endpoints,
        trans.__('Endpoints'),
        'aiaas-section-endpoints'
      )
    );
    this.addWidget(
      new Section(this.jobs, trans.__('Jobs'), 'aiaas-section-jobs')
    );
    this.addWidget(
      new Section(this.sweeps, trans.__('Sweeps'), 'aiaas-section-sweeps')
    );
    this.addWidget(
      new Section(this.cluster, trans.__('Cluster'), 'aiaas-section-cluster')
    );
    const title = new Widget();
    title.addClass('aiaas-panel-title');
    title.node.textContent = trans.__('AIaaS');
    this.header.addWidget(title);
    this.toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        className: 'aiaas-refresh',
        tooltip: trans.__('Refresh models, endpoints, jobs and cluster'),
        label: '',
        onClick: () => {
          commands
            .execute(CommandIDs.refresh)
            .catch(reason => console.error('aiaas:refresh failed', reason));
        }
      })
    );
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    const content = this.content;
    if (!this.sized && content instanceof AccordionPanel) {
      // models get most of the height (once, after the first layout); the user may drag the splitters
      this.sized = true;
      requestAnimationFrame(() => content.setRelativeSizes([5, 2, 2, 2, 1.5]));
    }
    this.model.setVisible(true);
    for (const view of [
      this.models,
      this.endpoints,
      this.jobs,
      this.sweeps,
      this.cluster
    ]) {
      view.tick(); // times are current the moment the panel shows, not up to a tick later
    }
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.setVisible(false);
  }
}
