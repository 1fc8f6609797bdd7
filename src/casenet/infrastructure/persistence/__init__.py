"""The event store and casenet's tables beside it, one module per store.

Each store's module holds everything that store does its own way: its recorder (a
subclass of the eventsourcing library's application recorder, which the library's
``APPLICATION_RECORDER_TOPIC`` selects; see ``infrastructure.store``) and its
``sql.Database`` subclass, which the recorder builds for casenet's own tables.
``base`` holds what the recorders share.
"""
