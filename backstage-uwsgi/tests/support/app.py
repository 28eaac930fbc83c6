"""The WSGI app the backstage-uwsgi tests run under a real uWSGI."""
import hashlib
import json


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        start_response("200 OK", [
            ("Content-Type", "application/octet-stream"),
            ("X-Body-Sha256", hashlib.sha256(body).hexdigest()),
            ("X-Body-Length", str(len(body))),
        ])
        return [body]
    if path == "/environ":
        keys = sorted(k for k, v in environ.items() if isinstance(v, str))
        body = json.dumps({k: environ[k] for k in keys}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/binary":
        body = bytes(range(256)) * 4
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found: " + path.encode("latin-1")]
