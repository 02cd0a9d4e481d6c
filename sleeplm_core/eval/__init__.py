"""Evaluation: DREAMS loader, metrics, YASA baselines and the ``sleeplm eval`` suites."""
