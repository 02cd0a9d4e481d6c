"""Speed and memory benchmarks, run by ``make bench`` (``python -m benchmarks``)."""
