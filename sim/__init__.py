"""Software stand-in for Asterisk and the PSTN, speaking the real AMI and FastAGI protocols."""
