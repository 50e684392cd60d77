"""Governance end to end, budgets: a budget admits exactly what it can pay for, alone or under
concurrent load, resets with its period, and end users have budgets and blocks of their own.

gov-priced (tests/e2e/config.yaml) costs $0.001 per completion token and nothing per prompt
token; with max_tokens 1 the mock answers one word, so every request costs exactly $0.001, and
its reservation (the prompt at $0 plus max_tokens at the output price) is exactly $0.001 too.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from conftest import assert_error_shape, eventually, marker, token_of

COST = 0.001


def paid(c, **kw):
    """One $0.001 request; the answer and its x-litellm-response-cost are checked."""
    resp = c.chat.completions.with_raw_response.create(
        model="gov-priced", messages=[{"role": "user", "content": f"pay {marker()}"}], max_tokens=1, **kw
    )
    assert float(resp.headers["x-litellm-response-cost"]) == pytest.approx(COST, abs=1e-12), resp.headers
    r = resp.parse()
    assert r.choices[0].message.content == "mock" and r.usage.completion_tokens == 1, r
    return r


def over_budget(c, param, **kw):
    """A request the budget refuses: 400 budget_exceeded naming the scope `param`."""
    with pytest.raises(openai.BadRequestError) as ei:
        paid(c, **kw)
    err = assert_error_shape(ei.value.response.json())
    assert err["type"] == "budget_exceeded" and err["param"] == param, err
    assert "Budget has been exceeded!" in err["message"], err
    return err


def key_spend(admin, raw):
    return admin.ok("GET", "/key/info", params={"key": token_of(raw)})["info"]["spend"]


def test_governance_budget_admits_exactly_three(admin, key_client):
    raw = admin.new_key(max_budget=0.003)
    c = key_client(raw)
    for _ in range(3):
        paid(c)
    err = over_budget(c, "key")
    assert "Max budget: 0.003" in err["message"], err
    eventually(lambda: assert_approx(key_spend(admin, raw), 0.003))


def assert_approx(got, want):
    assert got == pytest.approx(want, abs=1e-9), (got, want)


def test_governance_budget_holds_under_concurrency(admin, key_client):
    """30 requests at once against $0.010: exactly 10 pass, on every host (the reservation is
    one atomic Store batch; on Workers a Durable Object)."""
    raw = admin.new_key(max_budget=0.010)
    c = key_client(raw)
    start = threading.Barrier(30)

    def one(_):
        start.wait()
        try:
            paid(c)
            return "ok"
        except openai.BadRequestError as e:
            return e.type
        except Exception as e:  # reported in the assertion below
            return repr(e)

    with ThreadPoolExecutor(30) as pool:
        outcomes = list(pool.map(one, range(30)))
    assert outcomes.count("ok") == 10, outcomes
    assert outcomes.count("budget_exceeded") == 20, outcomes
    eventually(lambda: assert_approx(key_spend(admin, raw), 0.010))


def test_governance_budget_resets_with_its_period(admin, key_client):
    """budget_duration 2s: periods start on even seconds counted from UTC midnight."""
    c = key_client(admin.new_key(max_budget=COST, budget_duration="2s"))

    def to_next_period(margin):
        time.sleep(2 - time.time() % 2 + margin)
        return time.time()

    began = to_next_period(0.05)
    paid(c)
    over_budget(c, "key")
    assert time.time() - began < 1.9, "both requests must fall in one 2 s period; the host was too slow"
    to_next_period(0.1)
    paid(c)


# ---------------------------------------------------------------------------- end users


def test_governance_customer_budget(admin, client):
    end_user = f"gov-cust-{marker()}"
    admin.ok("POST", "/customer/new", json={"user_id": end_user, "max_budget": COST})
    paid(client, user=end_user)
    over_budget(client, "end_user", user=end_user)
    paid(client, user=f"gov-other-{marker()}")


def test_governance_blocked_customer_is_refused(admin, client):
    end_user = f"gov-cust-{marker()}"
    admin.ok("POST", "/customer/new", json={"user_id": end_user})
    paid(client, user=end_user)
    admin.ok("POST", "/customer/block", json={"user_ids": [end_user]})

    def blocked():
        with pytest.raises(openai.AuthenticationError) as ei:
            paid(client, user=end_user)
        err = assert_error_shape(ei.value.response.json())
        assert "blocked" in err["message"], err

    eventually(blocked)
    assert admin.ok("GET", "/customer/info", params={"end_user_id": end_user})["blocked"] is True
    admin.ok("POST", "/customer/unblock", json={"user_ids": [end_user]})
    eventually(lambda: paid(client, user=end_user))
