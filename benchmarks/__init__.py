"""Benchmarks: scripts that print figures (run each as a module from the repo root, e.g.
`python -m benchmarks.bench_prep`; `python -m benchmarks.run_all` runs them all into RESULTS.md)."""
