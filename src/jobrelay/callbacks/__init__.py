"""Callbacks from the external AI generator: authentication, audit, and applying them once."""
