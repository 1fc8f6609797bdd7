"""The REST API for agency systems (Litestar)."""
