"""Anomaly detection over normalised logs and metrics."""
