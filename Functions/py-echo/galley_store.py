"""Galley's key-value store for Python functions: one HTTP call to the host per operation.

The host checks the namespace grants of the function that owns the Runtime API endpoint; the
function never sees the store's files. Values are bytes (JSON text, typically).
"""

import base64
import json
import os
import urllib.request


class StoreError(Exception):
    """A refused or failed call; `code` is the store's (conflict, accessDenied, …)."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code


def call(op, namespace=None, **fields):
    """Sends one store call and returns the host's answer as a dict."""
    body = {"op": op, **{k: v for k, v in fields.items() if v is not None}}
    if namespace is not None:
        body["namespace"] = namespace
    request = urllib.request.Request(
        f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/galley/store",
        data=json.dumps(body).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request) as answer:
        result = json.loads(answer.read())
    if "error" in result:
        raise StoreError(result["error"]["code"], result["error"]["message"])
    return result


def get(key, namespace=None):
    entry = call("get", namespace, key=key)["entry"]
    return None if entry is None else base64.b64decode(entry["value"])


def put(key, value: bytes, namespace=None, ttl=None, if_version=None):
    return call("put", namespace, key=key, value=base64.b64encode(value).decode(), ttl=ttl, ifVersion=if_version)[
        "version"
    ]


def increment(key, by=1, namespace=None):
    return call("increment", namespace, key=key, by=by)["value"]
