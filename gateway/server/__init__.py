"""Server wiring: the ASGI app, the runtime that wires the layers, uvicorn and systemd."""
