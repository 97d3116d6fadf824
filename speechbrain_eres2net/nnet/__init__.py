"""Training objectives and schedules: AAM loss, LR and margin schedules."""
