"""Publish Docker images to GitHub Packages in one step."""

__version__ = "0.1.0"
