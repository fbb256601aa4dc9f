"""``python -m harness.synth``: generate one corpus folder (see :func:`harness.synth.write.main`)."""

from .write import main

if __name__ == "__main__":
    raise SystemExit(main())
