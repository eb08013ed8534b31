"""Asterisk extensions.conf: parsing, pattern matching, expressions and variable substitution."""
