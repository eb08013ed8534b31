"""The product's dialplans, included by asterisk_conf/extensions.conf (package data)."""
