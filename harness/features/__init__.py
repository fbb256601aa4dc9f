"""Features (layer L2): an upstream run once over an audio set, into the feature cache.

- :mod:`.upstream`: build a card's adapter, on a device, in eval mode, frozen;
- :mod:`.extract`: one pass over a dataset (longest first, chunked) into a cache entry;
- :mod:`.cache`: the entry on disk (float16, atomic, checksummed) and :class:`~.cache.FeatureStore`;
- :mod:`.build`: a cell's entry, with the frame layers its profile needs;
- :mod:`.source`: cache or stream a pair's frames (``features.source``), decided once for the plan and the run;
- :mod:`.pairs`: a (card, corpus) pair's audio, architecture and cache entries, as both count them;
- :mod:`.contract`: the executable upstream contract (``bench check-upstream``);
- :mod:`.info`: parameters, layers and weights of a card (``bench info``).
"""
