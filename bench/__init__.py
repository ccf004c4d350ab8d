"""Benchmarks for the "measured speed" targets. Run: .venv/bin/python -m bench.run [--quick]."""
