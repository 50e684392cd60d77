"""End-to-end tests of the gateway against the mock provider.

Runs unchanged against every host of the gateway: it only knows TOLLGATE_URL
and MOCK_URL (see conftest.py). Model groups are those of tests/e2e/config.yaml.
"""

import base64
import importlib
import json
import os
import re
import struct

import openai
import pytest

from conftest import MASTER_KEY, MOCK_URL, assert_error_shape, marker, words

MODEL_GROUPS = [
    "gpt-4o",
    "gpt-tools",
    "gpt-broken-429",
    "gpt-broken-500",
    "gpt-broken-401",
    "gpt-cut",
    "claude",
    "claude-broken-429",
    "claude-cut",
    "claude-max",
    "text-embedding-3-small",
    "gpt-3.5-turbo-instruct",
    "mock-local",
]
CLAUDE_UPSTREAM = "claude-3-5-sonnet-20240620"
# model group -> upstream model the mock sees
UPSTREAM = {"gpt-4o": "gpt-4o", "claude": CLAUDE_UPSTREAM}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]

# Transport errors the SDK may surface when a stream breaks (openai>=1 uses
# httpx; newer releases use httpx2).
HTTP_ERRORS = []
for _name in ("httpx", "httpx2"):
    try:
        HTTP_ERRORS.append(importlib.import_module(_name).HTTPError)
    except ImportError:
        pass
STREAM_BREAK_ERRORS = (openai.APIError, *HTTP_ERRORS)


def user(text):
    return [{"role": "user", "content": text}]


def collect_stream(stream):
    """Accumulate an SDK chat stream: text, tool calls, finish reason, chunks."""
    out = {"content": "", "calls": {}, "finish": None, "chunks": []}
    for chunk in stream:
        out["chunks"].append(chunk)
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                out["content"] += delta.content
            for tc in delta.tool_calls or []:
                slot = out["calls"].setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                if tc.id:
                    slot["id"] = tc.id
                if tc.function is not None:
                    if tc.function.name:
                        slot["name"] = tc.function.name
                    if tc.function.arguments:
                        slot["arguments"] += tc.function.arguments
            if choice.finish_reason:
                out["finish"] = choice.finish_reason
    out["calls"] = [out["calls"][i] for i in sorted(out["calls"])]
    return out


def chat_turn(client, stream, **kwargs):
    """One chat call, plain or streamed, normalised to content/calls/finish."""
    if stream:
        return collect_stream(client.chat.completions.create(stream=True, **kwargs))
    r = client.chat.completions.create(**kwargs)
    msg = r.choices[0].message
    calls = [
        {"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments}
        for tc in msg.tool_calls or []
    ]
    return {"content": msg.content or "", "calls": calls, "finish": r.choices[0].finish_reason, "response": r}


def read_tolerant(resp):
    """Whole body of a (possibly broken) streamed response, as text."""
    buf = b""
    try:
        for part in resp.iter_content(chunk_size=None):
            buf += part
    except Exception:  # a broken chunked body ends the read; keep what arrived
        pass
    return buf.decode("utf-8", "replace")


def sse_payloads(text):
    """Parsed JSON of each `data:` line (non-JSON payloads such as [DONE] skipped)."""
    out = []
    for line in text.splitlines():
        if line.startswith("data:"):
            payload = line[5:].strip()
            try:
                out.append(json.loads(payload))
            except ValueError:
                pass
    return out


def expected_embedding(text):
    """The mock provider's deterministic vector (FNV-1a seed, splitmix64, f32 maths)."""
    mask = (1 << 64) - 1

    def f32(x):
        return struct.unpack("<f", struct.pack("<f", x))[0]

    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & mask
    x, v = h, []
    for _ in range(8):
        x = (x + 0x9E3779B97F4A7C15) & mask
        z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        v.append(f32(f32(f32(z >> 40) / f32(1 << 24)) * 2.0 - 1.0))
    acc = 0.0
    for f in v:
        acc = f32(acc + f32(f * f))
    norm = f32(acc**0.5)
    return [f32(f / norm) for f in v]


def as_floats(embedding):
    """SDK embeddings are floats, except when base64 was asked for explicitly."""
    if isinstance(embedding, str):
        raw = base64.b64decode(embedding)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return embedding


def assert_vectors_close(a, b, tol=1e-5):
    assert len(a) == len(b)
    assert max(abs(x - y) for x, y in zip(a, b)) < tol, (a, b)


def upstream_auth_ok(headers, header_name):
    """The gateway sends the deployment's key upstream, never the client's master key."""
    sent = headers.get(header_name, "")
    assert sent, f"no {header_name} header reached the provider: {headers}"
    assert MASTER_KEY not in json.dumps(headers) or os.environ.get("MOCK_API_KEY") == MASTER_KEY, (
        "the gateway leaked its master key upstream"
    )
    want = os.environ.get("MOCK_API_KEY")
    if want:
        assert sent.removeprefix("Bearer ") == want


# ----------------------------------------------------------------- 1. models


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
def test_models_lists_every_model_group(raw, path):
    r = raw.get(path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.get("object") == "list"
    ids = [m["id"] for m in body["data"]]
    missing = sorted(set(MODEL_GROUPS) - set(ids))
    assert not missing, f"{path} lacks {missing}; got {ids}"
    assert all(m.get("object") == "model" for m in body["data"])


def test_models_via_sdk(client):
    ids = {m.id for m in client.models.list()}
    assert set(MODEL_GROUPS) <= ids


# ------------------------------------------------------------------- 2. auth


@pytest.mark.parametrize(
    "method, path",
    [("POST", "/v1/chat/completions"), ("GET", "/v1/models")],
    ids=["chat", "models"],
)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer sk-definitely-wrong"}],
    ids=["no-key", "wrong-key"],
)
def test_auth_rejected(raw, method, path, headers):
    kw = {"json": {"model": "gpt-4o", "messages": user("hi")}} if method == "POST" else {}
    r = raw.request(method, path, auth=False, headers=headers, **kw)
    assert r.status_code == 401, r.text
    assert_error_shape(r.json())


def test_auth_rejected_via_sdk(gateway_url):
    bad = openai.OpenAI(base_url=gateway_url + "/v1", api_key="sk-definitely-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as ei:
        bad.chat.completions.create(model="gpt-4o", messages=user("hi"))
    assert ei.value.status_code == 401


@pytest.mark.parametrize("path", ["/health/liveliness", "/health/readiness"])
def test_health_needs_no_auth(raw, path):
    r = raw.get(path, auth=False)
    assert r.status_code == 200, r.text


# ------------------------------------------------------------- 3. plain chat


@pytest.mark.parametrize("model", ["gpt-4o", "claude"])
def test_chat_plain(client, mock, model):
    mark = marker()
    prompt = f"hello there {mark}"
    r = client.chat.completions.create(model=model, messages=user(prompt), max_tokens=100)
    reply = f"mock reply to: {prompt}"
    assert r.choices[0].message.content == reply
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason == "stop"
    assert r.object == "chat.completion"
    assert r.id
    if model == "gpt-4o":
        assert r.model == "gpt-4o"
    else:
        assert r.model in (model, UPSTREAM[model], f"anthropic/{UPSTREAM[model]}")
    u = r.usage
    assert u is not None
    assert u.prompt_tokens == words(prompt)
    assert u.completion_tokens == words(reply)
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens

    rec = mock.get(UPSTREAM[model], mark)
    if model == "gpt-4o":
        assert rec["path"] == "/v1/chat/completions"
        upstream_auth_ok(rec["headers"], "authorization")
    else:
        assert rec["path"] == "/v1/messages"
        upstream_auth_ok(rec["headers"], "x-api-key")


def test_alias_reaches_target_group(client, mock):
    mark = marker()
    r = client.chat.completions.create(model="gpt4-alias", messages=user(f"alias {mark}"))
    assert r.choices[0].message.content == f"mock reply to: alias {mark}"
    rec = mock.get("gpt-4o", mark)
    assert rec["body"]["model"] == "gpt-4o"


# --------------------------------------------------------------- 4. streaming


@pytest.mark.parametrize("model", ["gpt-4o", "claude"])
def test_chat_stream_with_usage(client, model):
    mark = marker()
    prompt = f"stream me {mark}"
    out = collect_stream(
        client.chat.completions.create(
            model=model,
            messages=user(prompt),
            max_tokens=100,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    chunks = out["chunks"]
    reply = f"mock reply to: {prompt}"
    assert out["content"] == reply
    assert out["finish"] == "stop"
    assert len(chunks) >= 3
    assert len({c.id for c in chunks}) == 1, "all chunks must share one id"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens == words(prompt)
    assert last.usage.completion_tokens == words(reply)
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1]), "only the final chunk carries usage"


@pytest.mark.parametrize("model", ["gpt-4o", "claude"])
def test_chat_stream_without_usage(client, model):
    mark = marker()
    out = collect_stream(
        client.chat.completions.create(model=model, messages=user(f"no usage {mark}"), max_tokens=100, stream=True)
    )
    assert out["content"] == f"mock reply to: no usage {mark}"
    assert out["finish"] == "stop"
    assert all(c.usage is None for c in out["chunks"])


@pytest.mark.parametrize("model", ["gpt-4o", "claude"])
def test_chat_stream_raw_sse_framing(raw, model):
    mark = marker()
    r = raw.post(
        "/v1/chat/completions",
        json={"model": model, "messages": user(f"raw {mark}"), "max_tokens": 100, "stream": True},
        stream=True,
    )
    assert r.status_code == 200, r.text
    assert r.headers.get("content-type", "").startswith("text/event-stream")
    text = read_tolerant(r)
    events = [e for e in text.replace("\r\n", "\n").split("\n\n") if e.strip()]
    assert events[-1].strip() == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events), events[:3]
    content = "".join(
        (c.get("choices") or [{}])[0].get("delta", {}).get("content") or "" for c in sse_payloads(text)
    )
    assert content == f"mock reply to: raw {mark}"


# ------------------------------------------------------------------- 5. tools


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(
    "model, upstream, call_id",
    [("gpt-tools", "gpt-4o-tools", "call_mock_1"), ("claude", CLAUDE_UPSTREAM, "toolu_mock_1")],
    ids=["openai", "anthropic"],
)
def test_tool_call_round_trip(client, mock, model, upstream, call_id, stream):
    mark = marker()
    messages = user(f"What is the weather in Paris? {mark}")
    out = chat_turn(client, stream, model=model, messages=messages, tools=TOOLS, max_tokens=100)
    assert out["finish"] == "tool_calls"
    assert len(out["calls"]) == 1, out["calls"]
    call = out["calls"][0]
    assert call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Paris"}
    assert call["id"] == call_id

    sent = mock.get(upstream, mark)["body"]
    if model == "claude":
        assert [t["name"] for t in sent["tools"]] == ["get_weather"]
        assert sent["tools"][0]["input_schema"]["properties"] == {"city": {"type": "string"}}
    else:
        assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]

    # Second turn: the tool's result goes back, the model answers in text.
    mark2 = marker()
    messages = messages + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": f"sunny {mark2}"},
    ]
    out2 = chat_turn(client, stream, model=model, messages=messages, tools=TOOLS, max_tokens=100)
    assert out2["content"] == f"tool said: sunny {mark2}"
    assert out2["finish"] == "stop"
    assert not out2["calls"]

    sent2 = mock.get(upstream, mark2)["body"]
    last = sent2["messages"][-1]
    if model == "claude":
        assert last["role"] == "user"
        results = [b for b in last["content"] if b.get("type") == "tool_result"]
        assert [b["tool_use_id"] for b in results] == [call_id]
        uses = [b for b in sent2["messages"][-2]["content"] if b.get("type") == "tool_use"]
        assert uses and uses[0]["input"] == {"city": "Paris"}
    else:
        assert last["role"] == "tool" and last["tool_call_id"] == call_id


def test_tool_choice_none_gets_text(client):
    mark = marker()
    out = chat_turn(
        client, False, model="gpt-tools", messages=user(f"no tools {mark}"), tools=TOOLS, tool_choice="none"
    )
    assert out["content"] == f"mock reply to: no tools {mark}"
    assert out["finish"] == "stop"


# ---------------------------------------------------- 6. Anthropic translation


def _system_text(system):
    if isinstance(system, str):
        return system
    return " ".join(b.get("text", "") for b in system or [])


def test_anthropic_request_translation(client, mock):
    mark = marker()
    system = f"You are terse {mark}"
    prompt = f"hello claude {mark}"
    r = client.chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        temperature=0.5,
        stop=["END"],
        max_tokens=50,
    )
    assert r.choices[0].message.content == f"mock reply to: {prompt}"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == words(system) + words(prompt)

    rec = mock.get(CLAUDE_UPSTREAM, mark)
    assert rec["method"] == "POST"
    assert rec["path"] == "/v1/messages"
    headers = rec["headers"]
    assert headers.get("x-api-key"), headers
    assert headers.get("anthropic-version"), headers
    body = rec["body"]
    assert body["model"] == CLAUDE_UPSTREAM
    assert system in _system_text(body.get("system"))
    assert {m["role"] for m in body["messages"]} <= {"user", "assistant"}
    assert not any(system in json.dumps(m) for m in body["messages"]), "system text must not stay in messages"
    assert body["stop_sequences"] == ["END"]
    assert body["max_tokens"] == 50
    assert body["temperature"] == 0.5


def test_anthropic_default_max_tokens(client):
    r = client.chat.completions.create(model="claude-max", messages=user(f"hi {marker()}"))
    text = r.choices[0].message.content
    assert text.startswith("max_tokens="), text
    assert int(text.split("=", 1)[1]) > 0


def test_anthropic_finish_reason_mapping(client):
    mark = marker()
    r = client.chat.completions.create(model="claude", messages=user(f"a long prompt {mark}"), max_tokens=2)
    assert r.choices[0].finish_reason == "length"  # Anthropic stop_reason max_tokens
    assert r.choices[0].message.content == "mock reply"
    r = client.chat.completions.create(
        model="claude", messages=user(f"please HALT now {mark}"), max_tokens=50, stop=["HALT"]
    )
    assert r.choices[0].finish_reason == "stop"  # Anthropic stop_reason stop_sequence
    assert r.choices[0].message.content.rstrip() == "mock reply to: please"


@pytest.mark.parametrize(
    "url, expected_source",
    [
        (
            "data:image/png;base64,iVBORw0KGgo=",
            {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        ),
        ("http://example.com/cat.png", {"type": "url", "url": "http://example.com/cat.png"}),
    ],
    ids=["data-url", "http-url"],
)
def test_anthropic_image_translation(client, mock, url, expected_source):
    mark = marker()
    content = [
        {"type": "text", "text": f"describe {mark}"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    r = client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": content}], max_tokens=50
    )
    assert r.choices[0].message.content == f"mock reply to: describe {mark}"
    blocks = mock.get(CLAUDE_UPSTREAM, mark)["body"]["messages"][-1]["content"]
    images = [b for b in blocks if b.get("type") == "image"]
    assert len(images) == 1, blocks
    source = images[0]["source"]
    for key, value in expected_source.items():
        assert source.get(key) == value, source


# -------------------------------------------------------------- 7. embeddings


def test_embeddings(client, mock):
    mark = marker()
    inputs = [f"alpha {mark}", f"beta {mark}", f"alpha {mark}"]
    r = client.embeddings.create(model="text-embedding-3-small", input=inputs)
    assert len(r.data) == 3
    assert [d.index for d in r.data] == [0, 1, 2]
    vectors = [d.embedding for d in r.data]
    assert all(len(v) == 8 for v in vectors)
    assert vectors[0] == vectors[2], "same input, same vector"
    assert vectors[0] != vectors[1]
    for text, vec in zip(inputs, vectors):
        assert_vectors_close(vec, expected_embedding(text))
    assert mock.get("text-embedding-3-small", mark)["path"] == "/v1/embeddings"


@pytest.mark.parametrize("encoding_format", ["float", "base64"])
def test_embeddings_single_input(client, encoding_format):
    text = f"gamma {marker()}"
    r = client.embeddings.create(model="text-embedding-3-small", input=text, encoding_format=encoding_format)
    assert len(r.data) == 1
    vector = as_floats(r.data[0].embedding)
    assert len(vector) == 8
    assert_vectors_close(vector, expected_embedding(text))
    again = client.embeddings.create(model="text-embedding-3-small", input=text)
    assert_vectors_close(again.data[0].embedding, vector, tol=1e-7)


# ---------------------------------------------------- 8. legacy completions


def test_legacy_completion(client, mock):
    mark = marker()
    prompt = f"complete this {mark}"
    r = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=prompt, max_tokens=50)
    assert r.object == "text_completion"
    assert r.choices[0].text == f"mock reply to: {prompt}"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert mock.get("gpt-3.5-turbo-instruct", mark)["path"] == "/v1/completions"


def test_legacy_completion_stream(client):
    mark = marker()
    prompt = f"stream this {mark}"
    chunks = list(
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt=prompt, max_tokens=50, stream=True)
    )
    assert "".join(c.choices[0].text or "" for c in chunks if c.choices) == f"mock reply to: {prompt}"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert len({c.id for c in chunks}) == 1


# --------------------------------------------------------- 9. provider errors


@pytest.mark.parametrize(
    "model, status, exc, stream",
    [
        ("gpt-broken-429", 429, openai.RateLimitError, False),
        ("gpt-broken-429", 429, openai.RateLimitError, True),
        ("claude-broken-429", 429, openai.RateLimitError, False),
        ("claude-broken-429", 429, openai.RateLimitError, True),
        ("gpt-broken-500", 500, openai.InternalServerError, False),
        # One call only: a gateway may cool a deployment down after an auth
        # failure, and tests must not depend on each other.
        ("gpt-broken-401", 401, openai.AuthenticationError, False),
    ],
    ids=["gpt-429", "gpt-429-stream", "claude-429", "claude-429-stream", "gpt-500", "gpt-401"],
)
def test_provider_errors(client, model, status, exc, stream):
    with pytest.raises(exc) as ei:
        r = client.chat.completions.create(
            model=model, messages=user(f"fail {marker()}"), max_tokens=20, stream=stream
        )
        if stream:
            list(r)
    assert ei.value.status_code == status
    assert_error_shape(ei.value.response.json())


@pytest.mark.parametrize("status", [400, 403, 404, 408, 422, 503])
def test_upstream_status_is_kept(raw, status):
    """Each upstream error status reaches the client unchanged, in OpenAI's error shape."""
    r = raw.post("/v1/chat/completions", json={"model": f"gpt-broken-{status}", "messages": user(f"fail {marker()}")})
    assert r.status_code == status, r.text
    assert_error_shape(r.json())
    # The provider's own message survives the translation.
    assert f"simulated error {status}" in r.json()["error"]["message"], r.text


# ------------------------------------------------------ 10. malformed requests


def test_invalid_json_body(raw):
    r = raw.post(
        "/v1/chat/completions", data=b'{"model": "gpt-4o", "messages": [', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert_error_shape(r.json())


@pytest.mark.parametrize(
    "body",
    [{"model": "gpt-4o"}, {"model": "gpt-4o", "messages": "hello"}, {"model": "gpt-4o", "messages": {"role": "user"}}],
    ids=["missing-messages", "messages-string", "messages-object"],
)
def test_bad_messages(raw, body):
    r = raw.post("/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text
    assert_error_shape(r.json())


def test_unknown_model(raw):
    name = f"no-such-model-{marker()}"
    r = raw.post("/v1/chat/completions", json={"model": name, "messages": user("hi")})
    assert r.status_code in (400, 404), r.text
    err = assert_error_shape(r.json())
    assert name in err["message"]


# ----------------------------------------------------------- 11. stream cuts


@pytest.mark.parametrize("model", ["gpt-cut", "claude-cut"])
def test_stream_cut_reports_error_event(raw, model):
    mark = marker()
    r = raw.post(
        "/v1/chat/completions",
        json={"model": model, "messages": user(f"cut {mark}"), "max_tokens": 50, "stream": True},
        stream=True,
    )
    assert r.status_code == 200, r.text
    text = read_tolerant(r)
    assert "data: [DONE]" not in text, "a broken stream must not look complete"
    assert re.search(r'data: ?\{\s*"error"', text), text
    payloads = sse_payloads(text)
    errors = [p for p in payloads if isinstance(p, dict) and "error" in p]
    assert errors and isinstance(errors[-1]["error"], dict) and errors[-1]["error"].get("message"), errors
    content = "".join(
        (p.get("choices") or [{}])[0].get("delta", {}).get("content") or "" for p in payloads if "choices" in p
    )
    assert content, "content sent before the cut must reach the client"
    assert f"mock reply to: cut {mark}".startswith(content)


@pytest.mark.parametrize("model", ["gpt-cut", "claude-cut"])
def test_stream_cut_raises_in_sdk(client, model):
    got = []
    with pytest.raises(STREAM_BREAK_ERRORS):
        for chunk in client.chat.completions.create(
            model=model, messages=user(f"cut {marker()}"), max_tokens=50, stream=True
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                got.append(chunk.choices[0].delta.content)
    assert "".join(got)


# -------------------------------------------------------- 12. built-in mock


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_builtin_mock_response(client, mock, stream):
    mark = marker()
    out = chat_turn(client, stream, model="mock-local", messages=user(f"anything {mark}"))
    assert out["content"] == "hello from the built-in mock"
    assert mock.find("anything", mark) is None, "mock_response must not call a provider"


# ------------------------------------------------------- LiteLLM's response headers


def test_litellm_correlation_headers(client):
    """Which deployment answered, as LiteLLM reports it (the group as the client named it)."""
    resp = client.chat.completions.with_raw_response.create(model="gpt4-alias", messages=user(f"hi {marker()}"))
    h = resp.headers
    assert h["x-litellm-model-group"] == "gpt4-alias"
    assert h["x-litellm-model-api-base"] == f"{MOCK_URL}/v1"
    assert re.fullmatch(r"[0-9a-f]{32}", h["x-litellm-model-id"]), h["x-litellm-model-id"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", h["x-litellm-call-id"])
    assert int(h["x-litellm-response-duration-ms"]) >= 0
    assert h["x-litellm-attempted-retries"] == "0"
    assert resp.parse().choices[0].message.content.startswith("mock reply to:")


def test_health_probes_every_deployment(raw):
    """GET /health probes each deployment: working ones healthy, failing ones not, no keys shown."""
    assert raw.get("/health", auth=False).status_code == 401
    r = raw.get("/health")
    assert r.status_code == 200, r.text
    body = r.json()
    healthy = {e["model"] for e in body["healthy_endpoints"]}
    unhealthy = {e["model"] for e in body["unhealthy_endpoints"]}
    assert {"gpt-4o", "claude", "mock-local", "gpt-3.5-turbo-instruct"} <= healthy, body
    assert {"gpt-broken-429", "gpt-broken-500", "claude-broken-429"} <= unhealthy, body
    assert body["healthy_count"] == len(body["healthy_endpoints"])
    assert body["unhealthy_count"] == len(body["unhealthy_endpoints"])
    assert body["status"] == "unhealthy"
    assert all(isinstance(e["latency_ms"], int) for e in body["healthy_endpoints"])
    assert os.environ.get("MOCK_API_KEY", "sk-mock") not in r.text
    assert re.fullmatch(r"\d+h \d+m \d+s", body["uptime"])


def test_failing_group_falls_back(client, raw):
    """gpt-falls-back answers 503; router_settings.fallbacks sends the request on to gpt-4o."""
    prompt = f"fall back {marker()}"
    resp = client.chat.completions.with_raw_response.create(model="gpt-falls-back", messages=user(prompt))
    assert resp.headers["x-litellm-attempted-fallbacks"] == "1"
    assert resp.headers["x-litellm-model-group"] == "gpt-4o"
    assert resp.parse().choices[0].message.content == f"mock reply to: {prompt}"
    # A request's own fallbacks pointing nowhere useful: the last error comes back, naming the tries.
    r = raw.post("/v1/chat/completions", json={"model": "gpt-broken-500", "messages": user("x"), "fallbacks": ["gpt-broken-429"]})
    assert r.status_code == 429, r.text
    assert "gpt-broken-500, gpt-broken-429" in r.json()["error"]["message"]


def test_embeddings_and_completions_fall_back_too(raw):
    """The request's own fallbacks apply on every model endpoint."""
    r = raw.post("/v1/embeddings", json={"model": "gpt-broken-500", "input": "hi", "fallbacks": ["text-embedding-3-small"]})
    assert r.status_code == 200, r.text
    assert r.headers["x-litellm-attempted-fallbacks"] == "1"
    assert len(r.json()["data"][0]["embedding"]) == 8
    r = raw.post("/v1/completions", json={"model": "gpt-broken-500", "prompt": "hi", "fallbacks": ["gpt-3.5-turbo-instruct"]})
    assert r.status_code == 200, r.text
    assert r.headers["x-litellm-model-group"] == "gpt-3.5-turbo-instruct"
