"""Dataset adapters that read real corpora exactly as they are distributed.

Every adapter is a module ``harness.corpora.<name>`` with

* ``load(*, root, language, options) -> harness.data.Dataset`` — the corpus as utterances with
  split, speaker, labels, text, words (where alignments exist) and ``duration_s`` from the header;
* ``OPTIONS`` — the options it accepts (:class:`harness.corpora.common.Option`), so that
  ``bench validate`` can check them with :func:`harness.config.validate.option_problems` without
  reading the corpus;
* ``URL`` and ``LAYOUT`` — where the corpus comes from and how it must look on disk (shown when it
  is missing).

Adapters: ``librispeech``, ``iemocap``, ``slurp``, ``commonvoice``, ``cafe`` and ``manifest`` (the
documented JSONL/CSV format for corpora distributed on request: Lahjoita Puhetta, FESC,
HealthCall30, private data). :mod:`harness.corpora.load` turns a task source into a dataset
(the synthetic corpus or a declared one). ``harness.corpora.check`` reports on a loaded dataset without running
a model. Layouts, options and the manifest format are documented in ``docs/corpora.md``.

Importing this package reads no file and imports no adapter.
"""

from __future__ import annotations

ADAPTER_MODULES = ("librispeech", "iemocap", "slurp", "commonvoice", "cafe", "manifest")
