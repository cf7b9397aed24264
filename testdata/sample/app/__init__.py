"""A tiny WSGI service used as gantry's sample project (testdata/sample)."""

import json
from urllib.parse import parse_qs

from greeting_lib import greet

__all__ = ["application", "greet_payload"]


def greet_payload(name: str = "") -> dict:
    """The JSON body served by /greet."""
    return {"message": greet(name)}


def application(environ, start_response):
    """WSGI entry point: GET /healthz and GET /greet?name=..."""
    path = environ.get("PATH_INFO", "/")
    if path == "/healthz":
        status, body = "200 OK", {"status": "ok"}
    elif path == "/greet":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        status, body = "200 OK", greet_payload(query.get("name", [""])[0])
    else:
        status, body = "404 Not Found", {"error": "not found", "path": path}
    data = json.dumps(body).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
    return [data]
