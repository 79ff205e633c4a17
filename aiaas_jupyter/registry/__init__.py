"""The model registry: versioned, content-addressed models and the record of training jobs.

Imports only the standard library (and ``jupyter_core`` on demand), so loading it from a
Jupyter extension stays cheap.
"""

from .jobs_table import JobRecord
from .names import parse_ref, validate_name
from .store import Registry, default_home
from .versions_table import ModelVersion

__all__ = ["Registry", "ModelVersion", "JobRecord", "default_home", "validate_name", "parse_ref"]
