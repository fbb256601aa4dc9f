"""Probes (layer L2): the heads that read cached features, which layers they may read, and how
they train.

- :mod:`.heads`: the registered heads (``linear``, ``bilstm``);
- :mod:`.layers`: the layer sweep's candidates and the frame layers a profile needs;
- :mod:`.sets`: feature sets per split, as a cell's head reads them from the cache;
- :mod:`.train`: training with early stopping on dev micro-F1, prediction, :func:`~.train.head_for`.
"""
