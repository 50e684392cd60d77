"""Governance end to end, spend: a request's cost lands in every scope it belongs to (key, user,
team, end user, tag), in its spend-log row, for streams too, and a cut stream is billed.

Spend is recorded by the request's after-response work, so it is polled for (`eventually`).
Each test uses a key of its own and reads `/spend/logs?api_key=<that key>`.
"""

import importlib

import openai
import pytest

from conftest import eventually, marker, token_of

COST = 0.001

STREAM_BREAK_ERRORS = [openai.APIError]
for _name in ("httpx", "httpx2"):
    try:
        STREAM_BREAK_ERRORS.append(importlib.import_module(_name).HTTPError)
    except ImportError:
        pass
STREAM_BREAK_ERRORS = tuple(STREAM_BREAK_ERRORS)


def approx(x):
    return pytest.approx(x, abs=1e-9)


def spend_rows(admin, raw, n=1):
    """The key's spend-log rows, once there are `n`."""

    def check():
        rows = admin.ok("GET", "/spend/logs", params={"api_key": raw})
        assert isinstance(rows, list) and len(rows) == n, rows
        return rows

    return eventually(check)


def test_governance_spend_is_attributed_everywhere(admin, key_client):
    m = marker()
    team_id, user_id, end_user, tag = f"gov-team-{m}", f"gov-user-{m}", f"gov-cust-{m}", f"t-{m}"
    admin.ok("POST", "/team/new", json={"team_id": team_id})
    admin.ok("POST", "/user/new", json={"user_id": user_id, "user_role": "internal_user"})
    raw = admin.new_key(user_id=user_id, team_id=team_id)
    r = key_client(raw).chat.completions.create(
        model="gov-priced",
        messages=[{"role": "user", "content": f"spend {m}"}],
        max_tokens=1,
        user=end_user,
        extra_body={"metadata": {"tags": [tag]}},
    )
    assert r.usage.completion_tokens == 1

    (row,) = spend_rows(admin, raw)
    assert row["spend"] == approx(COST), row
    assert row["api_key"] == token_of(raw) and row["status"] == "success", row
    assert (row["user"], row["team_id"], row["end_user"]) == (user_id, team_id, end_user), row
    assert row["model_group"] == "gov-priced" and tag in row["request_tags"], row
    assert row["prompt_tokens"] >= 1 and row["completion_tokens"] == 1, row

    key_info = admin.ok("GET", "/key/info", params={"key": token_of(raw)})["info"]
    assert key_info["spend"] == approx(COST), key_info
    user_info = admin.ok("GET", "/user/info", params={"user_id": user_id})["user_info"]
    assert user_info["spend"] == approx(COST), user_info
    team_info = admin.ok("GET", "/team/info", params={"team_id": team_id})["team_info"]
    assert team_info["spend"] == approx(COST), team_info
    # End users are created on first spend.
    customer = eventually(lambda: admin.ok("GET", "/customer/info", params={"end_user_id": end_user}))
    assert customer["user_id"] == end_user and customer["spend"] == approx(COST), customer

    def tag_activity():
        body = admin.ok("GET", "/tag/daily/activity", params={"tags": tag})
        meta = body["metadata"]
        assert meta["api_requests"] == 1 and meta["spend"] == approx(COST), body
        assert body["results"][0]["breakdown"]["tags"][tag]["metrics"]["successful_requests"] == 1, body

    eventually(tag_activity)


def test_governance_stream_is_billed(admin, key_client):
    raw = admin.new_key()
    stream = key_client(raw).chat.completions.create(
        model="gov-priced",
        messages=[{"role": "user", "content": f"stream {marker()}"}],
        max_tokens=1,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "mock"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 1, chunks[-1]
    (row,) = spend_rows(admin, raw)
    assert row["spend"] == approx(COST) and row["status"] == "success", row
    assert row["usage_quality"] == "exact", row


def test_governance_cut_stream_is_billed(admin, key_client):
    raw = admin.new_key()
    got = []
    with pytest.raises(STREAM_BREAK_ERRORS):
        for chunk in key_client(raw).chat.completions.create(
            model="gov-cut", messages=[{"role": "user", "content": f"cut {marker()}"}], max_tokens=50, stream=True
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                got.append(chunk.choices[0].delta.content)
    assert "".join(got), "content sent before the cut must reach the client"
    (row,) = spend_rows(admin, raw)
    assert row["status"] == "failure" and row["usage_quality"] == "estimated", row
    assert row["spend"] > 0, row
