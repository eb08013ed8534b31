"""Prompt recordings, the catalogue and the spoken-menu grammar (package data)."""
