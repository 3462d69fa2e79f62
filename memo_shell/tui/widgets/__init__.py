"""Widgets of the memo-shell app; each talks to its screen through messages."""
