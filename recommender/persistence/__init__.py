"""Where the pipeline writes and serving reads: the database (SQLite or PostgreSQL), backups, the model
registry.
"""
