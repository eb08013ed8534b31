"""The main job: a day of calls through the engine and the simulator, then a summary."""
