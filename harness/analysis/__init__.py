"""Analyses that read the feature cache and never run an upstream again: layer sweep, 10% capacity
(Integrated Gradients), dimension overlap, emotion discrimination, inference time."""
