"""Upstream adapters (one module per model family) and their cards (``upstreams/cards/*.yaml``).

The contract every adapter meets is in :mod:`upstreams.base` and is checked by
:mod:`harness.features.contract`. Importing this package imports nothing heavy.
"""
