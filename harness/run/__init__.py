"""Running one cell (layer L3) and the record it leaves.

- :mod:`.cell`: a cell from plan to result JSON (:func:`~.cell.run_cell`, :func:`~.cell.select_layer`);
- :mod:`.record`: :class:`~harness.run.record.CellResult`, the typed result of one cell (schema
  version 2) that the cell runner writes and the leaderboards and the matrix read by attribute
  access, and the reader that keeps version-1 result files readable;
- :mod:`.inputs`: a cell's dataset, splits, feature cache entry and feature sets;
- :mod:`.context`: :class:`~.context.CellContext`, what the steps after training receive;
- :mod:`.steps`: layer selection (``sweep``), ``capacity``, ``timing`` (inference time),
  emotion ``discrimination`` and ``words`` (word discrimination); no step imports ``run.cell``.
"""
