"""The flows: publish, pull, cleanup and the post step, each calling core then edges in order."""
