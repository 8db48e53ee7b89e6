"""The web dashboard: a page and its static files, a pure client of the HTTP API."""
