"""Layer 3: the HTTP API (Starlette); it knows the service only through the backend protocol."""
