"""Shared vocabulary: value types and user keys, domain errors, settings, atomic file writes. Imports
nothing of the project.
"""
