"""Governance end to end, keys: the virtual key's lifecycle, its checks, roles and model access.

Same tests on every host (docs/governance.md is the behaviour). Admin calls go over plain HTTP
with the master key (`admin`); model calls through the official SDK with a virtual key
(`key_client`). Every id carries a marker, so reruns against a kept Store never collide. A
change made through the admin API is awaited with `eventually` (up to 6 s): immediate on the
instance that served it, within the key cache's 5 s on any other.
"""

import time

import openai
import pytest

from conftest import assert_error_shape, eventually, marker, token_of


def ask(c, model="gpt-4o", **kw):
    """One small chat call; the SDK raises on any refusal."""
    mark = marker()
    r = c.chat.completions.create(model=model, messages=[{"role": "user", "content": f"hi {mark}"}], max_tokens=5, **kw)
    assert r.choices[0].message.content.startswith("mock"), r
    return r


def refused(c, error, model="gpt-4o", **kw):
    """The SDK error a call raises, which must be `error`; its body has OpenAI's error shape."""
    with pytest.raises(error) as ei:
        c.chat.completions.create(model=model, messages=[{"role": "user", "content": f"hi {marker()}"}], max_tokens=5, **kw)
    assert_error_shape(ei.value.response.json())
    return ei.value


def test_governance_key_lifecycle(admin, key_client):
    alias = f"gov-life-{marker()}"
    raw = admin.new_key(key_alias=alias)
    token = token_of(raw)

    # The raw key is shown once: /key/info and /key/list name the key by token and key_name.
    for ref in (token, raw):  # the key is named by its token or by itself
        info = admin.ok("GET", "/key/info", params={"key": ref})
        assert raw not in str(info), info
    assert info["info"]["key_alias"] == alias, info
    key_name = info["info"].get("key_name")
    assert key_name and key_name != raw and key_name.endswith(raw[-4:]), info
    listed = admin.call("GET", "/key/list", params={"key_alias": alias, "return_full_object": "true"})
    assert listed.status_code == 200, listed.text
    assert token in listed.text and raw not in listed.text, listed.text

    c = key_client(raw)
    ask(c)

    admin.ok("POST", "/key/block", json={"key": raw})
    e = eventually(lambda: refused(c, openai.AuthenticationError))
    assert e.status_code == 401
    admin.ok("POST", "/key/unblock", json={"key": token})
    eventually(lambda: ask(c))

    admin.ok("POST", "/key/update", json={"key": raw, "models": ["gov-priced"]})
    e = eventually(lambda: refused(c, openai.AuthenticationError))
    assert e.type == "key_model_access_denied", e.body
    ask(c, model="gov-priced")

    new_raw = admin.ok("POST", "/key/regenerate", json={"key": raw})["key"]
    assert new_raw.startswith("sk-") and new_raw != raw
    eventually(lambda: refused(c, openai.AuthenticationError, model="gov-priced"))
    c2 = key_client(new_raw)
    ask(c2, model="gov-priced")
    # The regenerated key keeps the old one's settings.
    refused(c2, openai.AuthenticationError)

    admin.ok("POST", "/key/delete", json={"keys": [new_raw]})
    eventually(lambda: refused(c2, openai.AuthenticationError, model="gov-priced"))


def test_governance_expired_key_is_400(admin, key_client):
    raw = admin.new_key(duration="1s")
    info = admin.ok("GET", "/key/info", params={"key": token_of(raw)})
    assert info["info"].get("expires"), info
    time.sleep(1.2)
    e = refused(key_client(raw), openai.BadRequestError)
    assert e.status_code == 400 and e.type == "expired_key", e.body


def test_governance_custom_keys(admin, key_client):
    custom = f"sk-gov-{marker()}-custom"
    body = admin.ok("POST", "/key/generate", json={"key": custom})
    assert body["key"] == custom
    ask(key_client(custom))

    r = admin.call("POST", "/key/generate", json={"key": f"gov-{marker()}-no-prefix"})
    assert r.status_code == 400, r.text
    assert_error_shape(r.json())


def test_governance_duplicate_alias_is_400(admin):
    alias = f"gov-dup-{marker()}"
    admin.new_key(key_alias=alias)
    r = admin.call("POST", "/key/generate", json={"key_alias": alias})
    assert r.status_code == 400, r.text
    assert_error_shape(r.json())


@pytest.mark.parametrize(
    "body, param",
    [({"max_budget": "lots"}, "max_budget"), ({"models": "gpt-4o"}, "models")],
    ids=["max_budget", "models"],
)
def test_governance_wrong_types_are_422_naming_the_field(admin, body, param):
    r = admin.call("POST", "/key/generate", json=body)
    assert r.status_code == 422, r.text
    assert assert_error_shape(r.json())["param"] == param


# ------------------------------------------------------------------------------------ roles


def user_key(admin, role):
    """A new user with `role` and a key of its own: (user_id, raw key)."""
    user_id = f"gov-{role}-{marker()}"
    admin.ok("POST", "/user/new", json={"user_id": user_id, "user_role": role})
    return user_id, admin.new_key(user_id=user_id)


def test_governance_internal_user_may_not_manage(admin, key_client):
    _, raw = user_key(admin, "internal_user")
    ask(key_client(raw))
    for method, path, body in [
        ("POST", "/key/generate", {"user_id": f"gov-someone-else-{marker()}"}),
        ("POST", "/team/new", {"team_alias": f"gov-{marker()}"}),
        ("GET", "/global/spend", None),
    ]:
        r = admin.call(method, path, key=raw, json=body)
        assert r.status_code == 403, f"{path}: {r.status_code} {r.text}"
        assert_error_shape(r.json())


def test_governance_proxy_admin_user_may_manage(admin):
    _, raw = user_key(admin, "proxy_admin")
    other = admin.ok("POST", "/key/generate", key=raw, json={"user_id": f"gov-someone-else-{marker()}"})
    assert other["key"].startswith("sk-")
    team = admin.ok("POST", "/team/new", key=raw, json={"team_alias": f"gov-{marker()}"})
    assert team.get("team_id"), team
    assert "spend" in admin.ok("GET", "/global/spend", key=raw)


# ---------------------------------------------------------------- model access, teams


def test_governance_fallback_needs_model_access(admin, key_client, mock):
    """gov-primary fails (503) and falls back to gov-backup only for a key allowed both."""
    only_primary = key_client(admin.new_key(models=["gov-primary"]))
    mark = marker()
    with pytest.raises(openai.APIStatusError) as ei:
        only_primary.chat.completions.create(
            model="gov-primary", messages=[{"role": "user", "content": f"fb {mark}"}], extra_body={"num_retries": 0}
        )
    assert ei.value.status_code == 503, ei.value.body
    assert mock.find("gov-backup-4o", mark) is None, "the fallback the key may not use was called"
    mock.get("gov-error-503", mark)

    both = key_client(admin.new_key(models=["gov-primary", "gov-backup"]))
    mark = marker()
    resp = both.chat.completions.with_raw_response.create(
        model="gov-primary", messages=[{"role": "user", "content": f"fb {mark}"}], extra_body={"num_retries": 0}
    )
    assert resp.headers["x-litellm-attempted-fallbacks"] == "1"
    assert resp.parse().choices[0].message.content == f"mock reply to: fb {mark}"
    mock.get("gov-backup-4o", mark)


def test_governance_blocked_team_blocks_its_keys(admin, key_client):
    team_id = f"gov-team-{marker()}"
    admin.ok("POST", "/team/new", json={"team_id": team_id})
    c = key_client(admin.new_key(team_id=team_id))
    ask(c)
    admin.ok("POST", "/team/block", json={"team_id": team_id})
    e = eventually(lambda: refused(c, openai.AuthenticationError))
    assert e.status_code == 401
    admin.ok("POST", "/team/unblock", json={"team_id": team_id})
    eventually(lambda: ask(c))
