"""Running one matrix cell and the record it leaves.

:mod:`harness.run.record` holds :class:`~harness.run.record.CellResult`, the typed result of one
cell (schema version 2) that the cell runner writes and the leaderboards and the matrix read by
attribute access, and the reader that keeps version-1 result files readable.
"""
