"""Verification metrics, trial scoring, calibration and plots.

Everything here works on embeddings and scores, never on a particular model.
"""
