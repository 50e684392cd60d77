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

import hashlib
import json
import os
import time
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


# ------------------------------------------------------------- governance (test_governance_*.py)


def token_of(raw_key: str) -> str:
    """The stored token of a virtual key: SHA-256 hex of the raw key (docs/governance.md)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def eventually(check, timeout: float = 6.0, interval: float = 0.1):
    """Calls `check` until it returns without failing an assertion or raising an HTTP error
    (then returns its value), or re-raises the last failure after `timeout` seconds. For what lands after the response (spend,
    rollups) and for admin changes that another instance sees within the key cache's 5 s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, pytest.fail.Exception, openai.APIStatusError):
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)


class Admin:
    """The admin API over plain HTTP, with the master key unless another key is given."""

    def __init__(self, base: str, key: str):
        self.base = base
        self.key = key
        self.session = requests.Session()

    def call(self, method, path, *, key=None, json=None, params=None):
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return self.session.request(
            method, self.base + path, headers=headers, json=json, params=params, timeout=TIMEOUT
        )

    def ok(self, method, path, **kw) -> dict:
        """The 200 answer's JSON; any other status fails the test, naming the route."""
        r = self.call(method, path, **kw)
        assert r.status_code == 200, f"{method} {path} -> {r.status_code}: {r.text}"
        return r.json()

    def new_key(self, **fields) -> str:
        """A fresh virtual key with `fields` (LiteLLM's /key/generate body); its raw key."""
        body = self.ok("POST", "/key/generate", json=fields)
        assert body["key"].startswith("sk-"), body
        return body["key"]


@pytest.fixture(scope="session")
def admin() -> Admin:
    return Admin(TOLLGATE_URL, MASTER_KEY)


@pytest.fixture(scope="session")
def key_client():
    """key_client(raw_key): an SDK client authenticated with a virtual key."""

    def make(api_key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=TOLLGATE_URL + "/v1", api_key=api_key, max_retries=0, timeout=TIMEOUT)

    return make
