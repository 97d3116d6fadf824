"""Training: the ``SpeakerBrain``, the recipe driver, recipe checkpoints."""
