"""Fixtures for the gateway end-to-end suite.

The suite only knows base URLs, so the same tests run against every host of
the gateway (local server, Lambda, Worker):

  TOLLGATE_URL         gateway base, e.g. http://127.0.0.1:4000
                       (the SDK's base_url is TOLLGATE_URL + "/v1")
  MOCK_URL             mock provider base, e.g. http://127.0.0.1:5555
  TOLLGATE_MASTER_KEY  the gateway's master key (default sk-test-master)

Tests never rely on order or on a clean mock: every request carries a unique
marker, and recorded upstream requests are looked up by that marker.
"""

import json
import os
import uuid

import openai
import pytest
import requests

TOLLGATE_URL = os.environ.get("TOLLGATE_URL", "").rstrip("/")
MOCK_URL = os.environ.get("MOCK_URL", "").rstrip("/")
MASTER_KEY = os.environ.get("TOLLGATE_MASTER_KEY") or "sk-test-master"
TIMEOUT = float(os.environ.get("E2E_TIMEOUT", "30"))


def pytest_configure(config):
    missing = [n for n, v in (("TOLLGATE_URL", TOLLGATE_URL), ("MOCK_URL", MOCK_URL)) if not v]
    if missing:
        raise pytest.UsageError(
            "e2e suite needs " + " and ".join(missing) + " in the environment (see tests/e2e/run.sh)"
        )


def marker() -> str:
    """A unique single word, to find this test's request at the mock."""
    return "m" + uuid.uuid4().hex[:12]


def words(text: str) -> int:
    return len(text.split())


def assert_error_shape(body):
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    err = body["error"]
    for key in ("message", "type", "param", "code"):
        assert key in err, f"error object lacks {key!r}: {body}"
    assert isinstance(err["message"], str) and err["message"], body
    return err


class Mock:
    """Reads and clears what the mock provider recorded (/__mock/requests)."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()

    def requests(self, model: str) -> list:
        r = self.session.get(f"{self.base}/__mock/requests", params={"model": model}, timeout=TIMEOUT)
        r.raise_for_status()
        return r.json()

    def clear(self, model: str | None = None) -> None:
        params = {"model": model} if model else None
        self.session.delete(f"{self.base}/__mock/requests", params=params, timeout=TIMEOUT).raise_for_status()

    def find(self, model: str, mark: str):
        """The most recent request for upstream `model` whose body mentions `mark`, or None."""
        for rec in reversed(self.requests(model)):
            if mark in json.dumps(rec.get("body")):
                return rec
        return None

    def get(self, model: str, mark: str):
        rec = self.find(model, mark)
        seen = len(self.requests(model))
        assert rec is not None, f"mock got no request for model {model!r} containing {mark!r} ({seen} recorded)"
        return rec


class Raw:
    """Plain HTTP against the gateway, for what the SDK would not send."""

    def __init__(self, base: str, key: str):
        self.base = base
        self.key = key
        self.session = requests.Session()

    def request(self, method, path, *, auth=True, headers=None, **kw):
        h = {}
        if auth:
            h["Authorization"] = f"Bearer {self.key}"
        h.update(headers or {})
        kw.setdefault("timeout", TIMEOUT)
        return self.session.request(method, self.base + path, headers=h, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)


@pytest.fixture(scope="session")
def gateway_url() -> str:
    return TOLLGATE_URL


@pytest.fixture(scope="session")
def master_key() -> str:
    return MASTER_KEY


@pytest.fixture(scope="session")
def client() -> openai.OpenAI:
    return openai.OpenAI(base_url=TOLLGATE_URL + "/v1", api_key=MASTER_KEY, max_retries=0, timeout=TIMEOUT)


@pytest.fixture(scope="session")
def mock() -> Mock:
    return Mock(MOCK_URL)


@pytest.fixture(scope="session")
def raw() -> Raw:
    return Raw(TOLLGATE_URL, MASTER_KEY)
