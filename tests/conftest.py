"""Shared pytest configuration: the test bed's fixtures (see tests/testbed/fixtures.py)."""

# pytester: tests/unit/test_testbed_never_skips.py runs a pytest session of its own.
pytest_plugins = ["tests.testbed.fixtures", "pytester"]
