"""What the bot calls: the MovieService contract and its implementation (paths, caches, hot reload,
catalogue search).
"""
