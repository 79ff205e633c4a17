"""The model registry: versioned, content-addressed models, the record of training jobs and
hyper-parameter sweeps, and the remote endpoints a notebook calls.

Imports only the standard library (and ``jupyter_core`` on demand), so loading it from a
Jupyter extension stays cheap.
"""

from .endpoints_table import Endpoint
from .jobs_table import JobRecord
from .names import parse_ref, validate_name
from .store import Registry, default_home
from .sweeps_table import (SWEEP_LIVE, SWEEP_STATUSES, SWEEP_TERMINAL, TRIAL_LIVE, TRIAL_STATUSES,
                           TRIAL_TERMINAL, SweepRecord, TrialRecord)
from .versions_table import ModelVersion

__all__ = ["Registry", "ModelVersion", "JobRecord", "Endpoint", "SweepRecord", "TrialRecord", "default_home",
           "validate_name", "parse_ref", "SWEEP_STATUSES", "SWEEP_LIVE", "SWEEP_TERMINAL", "TRIAL_STATUSES",
           "TRIAL_LIVE", "TRIAL_TERMINAL"]
