"""Domain side of hotline12349: registry, work orders, vendors, storage."""
