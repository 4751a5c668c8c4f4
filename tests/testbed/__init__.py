"""The test bed: a real Docker engine, a token-auth registry and a GitHub stand-in.

``python -m tests.testbed up`` (``make testbed``) starts it; pytest fixtures live in
``tests.testbed.fixtures`` (see its docstring for how tests use the bed).
"""
