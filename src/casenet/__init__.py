"""casenet: the event-sourced backend agencies use to refer clients under consent."""

__version__ = "0.1.0"
