"""The router end to end: weights, retries, timeouts, context-window fallbacks, cooldowns.

Deployments are the `router-*` entries of config.yaml; the mock provider's model-name
scenarios (flaky, slow-NNN, context-overflow, error-NNN) make them misbehave.
"""

import time

from conftest import marker


def chat(raw, model, content="hello", **extra):
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    return raw.post("/v1/chat/completions", json=body)


def test_weights_split_traffic_about_nine_to_one(raw):
    ids = [chat(raw, "router-weighted").headers["x-litellm-model-id"] for _ in range(200)]
    heavy = ids.count("router-heavy")
    assert heavy + ids.count("router-light") == 200
    # Expected 180; the standard deviation is about 4.2, so this holds unless weights are off.
    assert 160 <= heavy <= 195, heavy


def test_a_flaky_deployment_is_retried_to_success(raw, mock):
    mock.clear("router-flaky")
    resp = chat(raw, "router-flaky", marker(), num_retries=1)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-litellm-attempted-retries"] == "1"
    assert len(mock.requests("router-flaky")) == 2, "one failure, one success"
    # Without retries the first failure is the answer.
    mock.clear("router-flaky")
    resp = chat(raw, "router-flaky", marker())
    assert resp.status_code == 503


def test_a_hanging_deployment_times_out_and_falls_back(raw):
    started = time.monotonic()
    resp = chat(raw, "router-hanging", marker())
    elapsed = time.monotonic() - started
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-litellm-attempted-fallbacks"] == "1"
    assert resp.headers["x-litellm-model-group"] == "gpt-4o"
    # timeout: 1 s, plus a margin for the fallback call and a loaded machine.
    assert elapsed < 4.0, elapsed


def test_a_context_length_error_uses_context_window_fallbacks(raw):
    resp = chat(raw, "router-overflow", marker())
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-litellm-model-group"] == "gpt-4o"
    assert resp.headers["x-litellm-attempted-fallbacks"] == "1"


def test_pre_call_checks_skip_a_deployment_too_small_for_the_prompt(raw):
    short = chat(raw, "router-small", "hi")
    assert short.headers["x-litellm-model-group"] == "router-small"
    long = chat(raw, "router-small", "word " * 200)
    assert long.status_code == 200, long.text
    assert long.headers["x-litellm-model-group"] == "gpt-4o"


def test_a_failing_deployment_stops_getting_traffic_during_its_cooldown(raw, mock):
    mock.clear("router-cool-error-500")
    mock.clear("router-cool-ok")
    for _ in range(20):
        resp = chat(raw, "router-cooling", marker(), num_retries=1)
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-litellm-model-id"] == "router-cool-good"
    bad = len(mock.requests("router-cool-error-500"))
    # allowed_fails: 2 → benched at the 3rd failure (an earlier run may have benched it
    # already); without cooldowns about half of the 20 requests would try it first.
    assert bad <= 3, bad
    assert len(mock.requests("router-cool-ok")) == 20
