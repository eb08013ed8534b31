"""The operators' web console (``hotline console``): server-rendered pages on Starlette."""
