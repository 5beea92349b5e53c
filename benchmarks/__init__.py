"""End-to-end performance benchmark of the intake (issue 7). Run: scripts/benchmark (see benchmarks/README.md)."""
