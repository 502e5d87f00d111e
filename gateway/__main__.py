"""`python -m gateway`: serve the gateway with settings from the environment."""

from __future__ import annotations

import logging

from gateway.server import serve
from services.config import load

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    serve(load())
