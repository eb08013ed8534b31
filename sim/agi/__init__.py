"""The AGI side of the simulator: FastAGI client, classic agi-bin runner, command semantics."""
