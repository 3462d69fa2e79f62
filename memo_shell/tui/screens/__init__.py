"""Screens of the memo-shell app; each owns its own state and talks to the library via workers."""
