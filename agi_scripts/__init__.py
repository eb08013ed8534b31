"""Classic AGI scripts for the paths that must work without the engine."""
