"""Call flows served over FastAGI, one module per route."""
