"""MovieLens in (fetch, verify, parse, links), titles, popularity, and the history files members
import.
"""
