"""The edges: everything that touches the world.

The runner, the GitHub API, the Docker engine and builders, and the registries.
"""
