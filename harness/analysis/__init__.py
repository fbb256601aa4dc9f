"""The paper's analyses as declared, cached, reproducible steps of the benchmark cells.

Every analysis reads the feature cache; none runs an upstream again, except the inference-time
step, whose purpose is to time it. Nothing is imported here (importing costs nothing); the
steps are looked up lazily through the tables in :mod:`harness.cell`.

=====================  =========================================  =================================
analysis               entry point                                how it runs
=====================  =========================================  =================================
layer sweep            :func:`.sweep.choose_layer`                inside every classification cell
(Table II, Figs 9-11)  :func:`.sweep.run_sweep`                   whose downstream has
                                                                  ``layer: sweep``; the curve is
                                                                  saved per (profile, upstream,
                                                                  downstream, language) and reused
10% capacity           :func:`.capacity.capacity_step`            ``POST_STEPS["capacity"]``, after
(Table VIII, Fig. 4)                                              training, for the tasks in
                                                                  ``analyses.capacity_tasks``
dimension overlap      :func:`harness.report.overlap.             a pure function of a profile's
(Figs 5-8)             overlap_report`                            result files (the leaderboard
                                                                  writer calls it)
emotion                :func:`.discrimination.                    ``KIND_RUNNERS["emotion_
discrimination         run_emotion_discrimination`                discrimination"]``: the cell of
(Table VII)                                                       the ``emotion_discrimination``
                                                                  downstream
inference time         :func:`.timing.inference_time_step`        ``POST_STEPS["inference_time"]``,
(Table IX)                                                        once per upstream: the cell of
                                                                  ``analyses.inference_time_task``
                                                                  and ``_language``, first seed
=====================  =========================================  =================================

Settings live in the profile's ``analyses`` (:class:`harness.schema.AnalysisSpec`):
``capacity_fraction`` (0.1), ``capacity_ig_steps`` (50), ``capacity_tasks``,
``emotion_triplets`` (None = one per test utterance), ``inference_time_warmup`` (2),
``inference_time_subset`` (15), ``inference_time_task`` / ``_language``.

Files, under ``<results>/<profile>/``:

- ``sweeps/<upstream>/<downstream>/<language>.{json,png}``: the layer curve;
- ``capacity/<upstream>/<downstream>/<language>/seed<k>.{json,png}``: the selected dimensions
  (``"format": "capacity/1"``), the normalised attributions and Figure 4's plot;
- the cell result ``<upstream>/<downstream>/<language>/seed<k>.json`` holds
  ``analyses.capacity`` and ``analyses.inference_time`` (and the discrimination cell's metrics);
- :func:`harness.report.overlap.overlap_report` writes ``overlap.{md,csv,json}`` and heatmaps to the folder
  it is given.

Library use without the matrix: every step takes a :class:`harness.cell.CellContext` (what the
cell computed), so ``run_cell(ws, CellSpec(...))`` runs a cell with its analyses, and the
functions under the steps (``integrated_gradients``, ``rank_dimensions``, ``make_triplets``,
``triplet_correct``, ``time_pipeline``, ``overlap_pct``) work on plain arrays and modules.
"""
