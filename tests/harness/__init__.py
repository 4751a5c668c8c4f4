"""The runner harness: runs a Docker action the way the GitHub Actions runner does
(``runner.py``), its fixtures (``fixtures.py``) and its own tests (``test_runner.py``, with
the toy action in ``toy-action/``). The e2e and reliability suites use it."""
