import io
import json

from app import application, greet_payload


def call(path, query=""):
    seen = {}

    def start_response(status, headers):
        seen["status"] = status
        seen["headers"] = dict(headers)

    environ = {"PATH_INFO": path, "QUERY_STRING": query, "wsgi.input": io.BytesIO()}
    body = b"".join(application(environ, start_response))
    return seen["status"], json.loads(body)


def test_greet_payload_uses_greeting_lib():
    assert greet_payload("Ada") == {"message": "Hello, Ada!"}
    assert greet_payload("  ") == {"message": "Hello, world!"}


def test_greet_endpoint():
    status, body = call("/greet", "name=Grace")
    assert status == "200 OK"
    assert body == {"message": "Hello, Grace!"}


def test_healthz_and_not_found():
    assert call("/healthz") == ("200 OK", {"status": "ok"})
    status, body = call("/nope")
    assert status == "404 Not Found"
    assert body["path"] == "/nope"
