"""The Jupyter server extension: a small JSON API under ``{base_url}/aiaas/api/`` for the
JupyterLab sidebar (models, jobs, deployments and endpoints, the cluster).

:mod:`.manager` holds the logic (plain dicts, no tornado); :mod:`.handlers` the thin,
authenticated tornado handlers. Neither is imported by ``import aiaas_jupyter``: the server
loads them through ``aiaas_jupyter._load_jupyter_server_extension``.
"""
