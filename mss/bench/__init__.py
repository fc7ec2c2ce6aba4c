"""Benchmarks behind `mss bench …`: scripts that print figures, never timed tests."""
