"""Shared pytest configuration: the test bed's fixtures (see tests/testbed/fixtures.py)."""

pytest_plugins = ["tests.testbed.fixtures"]
