"""The one place that imports boto3: clients for the AWS commands, and the errors they raise.

boto3 ships without type information, so clients are ``Any``. Credentials, region defaults and the
endpoint come from boto3's standard chain: ``AWS_PROFILE``/``AWS_ACCESS_KEY_ID``..., and
``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_<SERVICE>``) to talk to something other than AWS,
e.g. a local moto server in the tests.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

__all__ = ["AwsError", "BotoCoreError", "ClientError", "account_id", "client", "error_code"]


class AwsError(Exception):
    """A failure a command reports as one message, not a traceback."""


def client(service: str, region: str) -> Any:
    """A boto3 client for ``service`` in ``region``, from the process's one session (which loads
    the service models and resolves credentials once)."""
    return _session().client(service, region_name=region)


@cache
def _session() -> Any:
    return boto3.session.Session()


def error_code(error: Any) -> str:
    """The AWS error code of a :class:`ClientError` (``NotFoundException``, ``AccessDenied``, ...)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def account_id(region: str) -> str:
    """The account of the caller's credentials (``sts:GetCallerIdentity``)."""
    return str(client("sts", region).get_caller_identity()["Account"])
