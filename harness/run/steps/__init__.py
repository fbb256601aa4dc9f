"""The steps of a cell, each a function of what the cell computed returning its own section.

=====================  =========================================  =================================
step                   entry point                                how it runs
=====================  =========================================  =================================
layer selection        :func:`.sweep.choose_layer`                inside every classification cell
(Table II, Figs 9-11)                                             (its plan's ``LayerRule``); the
                                                                  sweep curve is saved per
                                                                  (profile, upstream, downstream,
                                                                  language) and reused
10% capacity           :func:`.capacity.capacity_step`            ``POST_STEPS["capacity"]``, after
(Table VIII, Fig. 4)                                              training, for the tasks in
                                                                  ``analyses.capacity_tasks``
inference time         :func:`.timing.inference_time_step`        ``POST_STEPS["inference_time"]``,
(Table IX)                                                        once per upstream, first seed
emotion                :func:`.discrimination.                    ``KIND_RUNNERS["emotion_
discrimination         run_emotion_discrimination`                discrimination"]``
(Table VII)
word discrimination    :func:`.words.run_word_discrimination_     ``KIND_RUNNERS["word_
(Table V, Figs 1-3)    cell`                                      discrimination"]``
=====================  =========================================  =================================

The tables are in :mod:`harness.run.cell`; post-training steps take a
:class:`harness.run.context.CellContext`, task-kind runners take ``(snap, plan, dataset,
device, progress)``. Settings live in the profile's ``analyses``.
"""
