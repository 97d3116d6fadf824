"""Training-time augmentation: speed perturbation, noise and reverberation."""
