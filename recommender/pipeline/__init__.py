"""The trainer (python -m recommender.pipeline), its JSON-lines protocol, and the worker that runs it
in a child.
"""
