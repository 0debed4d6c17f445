"""The fault suite: `python -m chaos` runs the distributed store under faults and checks that
nothing is lost or doubled. See docs/reliability.md."""
