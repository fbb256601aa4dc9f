"""speech-embedding-bench: a declarative benchmark harness for speech embeddings.

Importing this package is free: no torch, no device probe, no file I/O. The engine lives in
submodules (``harness.config``, ``harness.run``, ``harness.matrix`` ...), each imported on use.
"""

__version__ = "0.1.0"
