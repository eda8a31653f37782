"""Layer 2: the service configuration: its types and how a file becomes them."""
