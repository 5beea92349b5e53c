"""End-to-end performance benchmark of the intake. Run: scripts/benchmark (see benchmarks/README.md)."""
