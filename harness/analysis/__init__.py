"""Analyses over a profile's result files (no model runs): the dimension overlap (Figures 5-8),
:func:`.overlap.overlap_report`, called by the leaderboard writer.

The analyses that run inside cells (layer sweep, 10% capacity, inference time, emotion and word
discrimination) are steps of a cell: :mod:`harness.run.steps`.
"""
