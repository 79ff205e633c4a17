"""aiaas-jupyter: AI models as a service, from inside the notebook.

``%load_ext aiaas_jupyter`` registers the ``%aiaas`` magics. Loading must stay light: nothing
here imports dask, pandas, scikit-learn or torch; the Python API below is resolved lazily.

Python API (one default client per kernel)::

    import aiaas_jupyter as aiaas
    aiaas.connect()                                   # embedded Dask cluster
    aiaas.map(f, [1, 2, 3])                           # [f(1), f(2), f(3)], computed on the workers
    clean = aiaas.preprocess("data/*.csv", body=lambda df: df.dropna()).frame
    job = aiaas.train(model, clean, target="label", name="iris-rf")
    job.result()                                      # ModelVersion iris-rf:1
    aiaas.load_model("iris-rf@prod")
    aiaas.deploy("iris-rf@prod")                      # served by this home's model server
    aiaas.predict("iris-rf", frame)                   # OIP v2 inference → numpy array
    aiaas.endpoint("iris-rf")                         # .predict_url, .headers for requests/curl
    aiaas.add_endpoint("gpt", "https://api.openai.com/v1", "openai", api_key_env="OPENAI_API_KEY")
    aiaas.ask("gpt", "Summarise these metrics")       # Markdown answer
    sweep = aiaas.sweep(model, clean, "label", name="iris-rf",
                        space={"max_depth": [4, 8], "n_estimators": aiaas.randint(50, 200)})
    sweep.result(); sweep.trials                      # best version; the leaderboard as a DataFrame
"""

import sys

from ._version import __version__

_API = ("connect", "disconnect", "status", "preprocess", "train", "jobs", "job", "cancel", "result",
        "attach", "models", "model", "show", "alias", "delete", "load_model", "export",
        "deploy", "undeploy", "deployments", "endpoints", "add_endpoint", "remove_endpoint",
        "predict", "ask", "embed", "stop_server", "endpoint", "map",
        "sweep", "sweeps", "get_sweep", "attach_sweep", "cancel_sweep", "compare")
#: a sweep's search-space helpers: ``aiaas.loguniform(1e-4, 1e-1)``
_SPACE = ("loguniform", "uniform", "randint", "choice")

# ``map`` stays out of ``from aiaas_jupyter import *``: it would shadow the builtin
__all__ = ["__version__", "load_ipython_extension", "get_client", "AiaasClient", *(n for n in _API if n != "map"),
           *_SPACE]


def load_ipython_extension(ipython) -> None:
    from .magics import AiaasMagics

    ipython.register_magics(AiaasMagics)
    _use_notebook_views()


def _use_notebook_views() -> None:
    """Make the notebook's live views the default client's presenter (:mod:`.presenting`).

    Installed from here, the top: the façade never imports Jupyter or the widgets. The factory
    imports them only when a job is first shown, so loading stays light."""
    from . import presenting

    def notebook(client):
        from .widgets.live_views import NotebookPresenter

        return NotebookPresenter(client)

    presenting.install(notebook)


def _in_ipython() -> bool:
    ipython = sys.modules.get("IPython")  # never import IPython for this
    return ipython is not None and ipython.get_ipython() is not None


def unload_ipython_extension(ipython) -> None:  # pragma: no cover - IPython keeps magics registered
    pass


def _jupyter_labextension_paths() -> list[dict]:
    """The prebuilt sidebar (built from ``labextension/`` into ``aiaas_jupyter/labextension``);
    for ``jupyter labextension develop``. A normal install ships it in share/jupyter/labextensions."""
    return [{"src": "labextension", "dest": "aiaas-jupyter"}]


def _jupyter_server_extension_points() -> list[dict]:
    """The Jupyter server extension (the sidebar's API under ``{base_url}/aiaas/api/``)."""
    return [{"module": "aiaas_jupyter"}]


def _load_jupyter_server_extension(serverapp) -> None:
    """Register the API routes; tornado and jupyter_server are imported only here.

    The registry home is ``c.AiaasJupyter.home`` when configured, else the kernel's
    (``$AIAAS_HOME`` or the default)."""
    import os

    from . import dashboard_link
    from .server.handlers import setup_handlers
    from .server.manager import SidebarManager

    home = serverapp.config.get("AiaasJupyter", {}).get("home") or None
    manager = SidebarManager(home)
    setup_handlers(serverapp.web_app, manager)
    proxy, hosts = dashboard_link.proxy_hosts_of(serverapp)
    dashboard_link.record_server(serverapp.runtime_dir, pid=os.getpid(), base_url=serverapp.base_url,
                                 proxy=proxy, proxy_hosts=hosts)
    serverapp.log.info("aiaas_jupyter: API at %saiaas/api/ (registry %s)",
                       serverapp.web_app.settings.get("base_url", "/"), manager.home)


def __getattr__(name: str):
    if name in ("get_client", "AiaasClient"):
        from . import client

        return getattr(client, name)
    if name in _SPACE:
        from . import sweep_space

        return getattr(sweep_space, name)
    if name in _API:
        from .client import get_client

        return getattr(get_client(), name)
    raise AttributeError(f"module 'aiaas_jupyter' has no attribute {name!r}")


if _in_ipython():  # ``import aiaas_jupyter`` in a kernel, without %load_ext: the same live views
    _use_notebook_views()
