"""Running one cell (layer L3): :func:`harness.run.cell.run_cell` and its steps.

- :mod:`.cell`: a cell from plan to result JSON (:func:`~.cell.run_cell`, :func:`~.cell.select_layer`);
- :mod:`.inputs`: a cell's dataset, splits, feature cache entry and feature sets;
- :mod:`.context`: :class:`~.context.CellContext`, what the steps after training receive;
- :mod:`.steps`: layer selection (``sweep``), ``capacity``, ``timing`` (inference time),
  emotion ``discrimination`` and ``words`` (word discrimination); no step imports ``run.cell``.
"""
