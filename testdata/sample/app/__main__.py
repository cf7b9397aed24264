"""Serve the sample service: python3 -m app (PORT defaults to 8000)."""

import os
from wsgiref.simple_server import make_server

from greeting_lib import greet

from app import application


def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    with make_server("0.0.0.0", port, application) as server:
        print(f"{greet('gantry')} serving on :{port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
