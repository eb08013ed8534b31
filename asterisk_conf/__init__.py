"""The Asterisk configuration the engine relies on (package data)."""
