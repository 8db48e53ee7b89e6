"""Persistence: the only package that knows SQL. Every function takes an open connection."""
