"""callcore benchmarks: ``benchmarks/run`` (or ``python -m benchmarks``); see README.md."""
