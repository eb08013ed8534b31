"""The simulator's Asterisk manager interface (AMI) server, on Twisted."""
