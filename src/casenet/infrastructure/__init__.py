"""Adapters: the event store's settings and mapper, keys, projections."""
