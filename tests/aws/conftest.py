"""AWS for the tests, never the real one: fake credentials, and moto both in-process
(``mock_aws``) and as a server on loopback that boto3 reaches through ``AWS_ENDPOINT_URL``."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

ACCOUNT = "111111111111"
"""The account of staging's and prod's Vault roles: the tests' own account."""
OTHER_ACCOUNT = "333333333333"
"""Someone else's account."""
REGION = "eu-west-1"


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    # moto's documented switch for the caller's account (read on every request, server mode too).
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["in-process", "server"])
def aws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto in-process, or the loopback moto server (reset first) through ``AWS_ENDPOINT_URL``."""
    if request.param == "in-process":
        with mock_aws():
            yield request.param
        return
    url: str = request.getfixturevalue("moto_server")
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()  # noqa: S310
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    yield request.param

