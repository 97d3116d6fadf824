"""Data in and out: audio reading, corpus preparation, trial lists, training pipeline.

Also the atomic file writes every output of the package goes through.
"""
