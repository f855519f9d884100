"""A Python function run by Galley through awslambdaric, as AWS Lambda runs it."""

import os

import galley_store


def handler(event, context):
    if isinstance(event, dict) and "fail" in event:
        raise ValueError(event["fail"])
    if isinstance(event, dict) and "count" in event:
        # {"count": "visits"} counts in the function's store; {"count": …, "namespace": "other"} tries another.
        try:
            return {"count": galley_store.increment(event["count"], namespace=event.get("namespace"))}
        except galley_store.StoreError as error:
            return {"storeError": error.code, "message": str(error)}
    print(f"py-echo got {event!r}")
    return {
        "echo": event,
        "requestId": context.aws_request_id,
        "functionName": context.function_name,
        "memoryLimitInMB": context.memory_limit_in_mb,
        "greeting": os.environ.get("GREETING", ""),
    }
