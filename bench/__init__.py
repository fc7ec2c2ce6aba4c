"""The benchmarks of mss: scripts that print figures beside their anchors, never timed tests.

They live outside the product's import path (a plain `pip install .` gives a
working `mss` without them): run them from a checkout with `./scripts/bench …`,
`python -m bench …` or `mss bench …`. Their own dependencies are the `bench`
extra of pyproject.toml.
"""
