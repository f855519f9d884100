"""A Python function run by Galley through awslambdaric, as AWS Lambda runs it."""

import os


def handler(event, context):
    if isinstance(event, dict) and "fail" in event:
        raise ValueError(event["fail"])
    print(f"py-echo got {event!r}")
    return {
        "echo": event,
        "requestId": context.aws_request_id,
        "functionName": context.function_name,
        "memoryLimitInMB": context.memory_limit_in_mb,
        "greeting": os.environ.get("GREETING", ""),
    }
