"""What only the tests, the benchmarks and the tools use: never shipped in the wheel."""
