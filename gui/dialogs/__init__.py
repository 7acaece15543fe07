"""Dialogs: import preview, settings, report export and session recovery."""
