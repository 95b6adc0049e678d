"""Metrics, splits and baselines as plain functions and small classes; nothing here trains a family."""
