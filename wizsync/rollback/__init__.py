"""Rollback: the desired documents that restore what a run changed, from its snapshots (``restore``).

The restored documents go through apply's batches like any other run. May
import apply, journal and render; never run or commands.
"""
