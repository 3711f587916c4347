"""Retention: history older than its window is deleted (see `prune.py`)."""
