"""Telephony side of hotline12349: FastAGI server, AMI client, call flows, engine wiring."""
