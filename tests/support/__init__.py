"""Helpers shared by the tests, apart from the tests themselves.

``tests/`` holds only ``test_*.py`` and ``conftest.py``; everything a test imports lives here and is
imported as ``support.<module>`` (pytest puts ``tests/`` on ``sys.path``, as ``tests/`` has no
``__init__.py``):

- ``leakcheck``: the session-end leak check, wired into ``tests/conftest.py`` by its two hooks
- ``cli_cluster``: a ``dask scheduler`` + ``dask worker`` processes started as a user starts them
- ``serving_models``: small seeded models registered into a throwaway home
- ``standin_server``: an OpenAI-compatible stand-in for the remote-endpoint tests
- ``lab_harness``: a real ``jupyter lab`` driven by Chromium, for the end-to-end tests
- ``readme_walk``: runs every README call in its own process (``tests/test_readme_api.py``)
"""
