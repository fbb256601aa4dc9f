"""The matrix (layer L4): every cell a profile declares, run locally or on a Ray cluster, then the leaderboards.

- :mod:`.select`: ``--only`` filters, the profile's cells in run order, their state on disk;
- :mod:`.stages`: the stages (small models, features, layer sweeps, cells) and :func:`run_matrix`;
- :mod:`.executors`: how jobs run (:class:`LocalExecutor`, :class:`ProcessExecutor`;
  :mod:`.ray` for a Ray cluster), all following :class:`harness.protocols.Executor`;
- :mod:`.dryrun`: ``bench matrix --dry-run``.

Stages are separate from executors: a stage is a list of jobs and a function; any executor runs it.
"""

from __future__ import annotations

from .dryrun import dry_run
from .executors import LocalExecutor, ProcessExecutor, WorkerDiedError, make_executor
from .select import CellState, cells_of, check_matrix, only_problems, parse_only, survey
from .stages import ExtractionOutcome, MatrixRun, extract_for_cell, result_of, run_matrix

__all__ = ["CellState", "ExtractionOutcome", "MatrixRun", "LocalExecutor", "ProcessExecutor", "WorkerDiedError", "cells_of", "check_matrix", "dry_run",
           "extract_for_cell", "make_executor", "only_problems", "parse_only", "result_of", "run_matrix", "survey"]
