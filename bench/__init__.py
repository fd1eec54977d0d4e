"""Benchmarks: ktsync against raw baselines measured in the same run on the same machine."""
