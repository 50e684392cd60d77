"""Every native provider end to end: the official openai SDK → the gateway → the mock
provider speaking that provider's own wire format → back.

Each provider has the `p-<provider>-*` model groups of config.yaml: `-chat` (text, tools,
stops), `-429` / `-400` (the mock's error-NNN scenarios), `-ctx` (its prompt-too-long error),
`-cut` (a stream broken off midway) and, where the provider embeds, `-embed`. Whatever the wire format, the client must see OpenAI's answers: the mock replies
`mock reply to: <last user text>` everywhere, so every provider is held to the same text.
"""

import json
from dataclasses import dataclass

import openai
import pytest

from conftest import assert_error_shape, marker, words
from test_gateway import (
    TOOLS,
    assert_vectors_close,
    chat_turn,
    collect_stream,
    expected_embedding,
    read_tolerant,
    sse_payloads,
    user,
)


@dataclass(frozen=True)
class Provider:
    name: str
    # The upstream model of p-<name>-chat, as the mock records it.
    upstream: str
    # The upstream path the chat request must reach (a suffix; some include the model).
    chat_path: str
    tools: bool = True


VERTEX_MODELS = "/v1/projects/tollgate-test-project/locations/us-central1/publishers/google/models"
PROVIDERS = [
    Provider("openai", "p-gpt-4o", "/v1/chat/completions"),
    Provider("anthropic", "p-claude-3-5-haiku", "/v1/messages"),
    Provider("gemini", "p-gemini-1.5-flash", "/v1beta/models/p-gemini-1.5-flash:generateContent"),
    Provider("vertex_ai", "p-gemini-1.5-pro", f"{VERTEX_MODELS}/p-gemini-1.5-pro:generateContent"),
    Provider("bedrock", "anthropic.p-claude-3-haiku-v1:0", "/converse"),
    Provider("cohere", "p-command-r", "/v2/chat"),
    Provider("ollama_chat", "p-llama3-chat", "/api/chat"),
    # Ollama's generate API has no tools (LiteLLM sends tool calls through ollama_chat/).
    Provider("ollama", "p-llama3-generate", "/api/generate", tools=False),
    Provider("azure", "p-azure-gpt-4o", "/openai/deployments/p-azure-gpt-4o/chat/completions"),
]
WITH_TOOLS = [p for p in PROVIDERS if p.tools]


def ids(providers):
    return [p.name for p in providers]


def group(p, kind="chat"):
    return f"p-{p.name}-{kind}"


def assert_model(p, model):
    """The answer names the model the client asked for (LiteLLM may add the provider's)."""
    assert model in (group(p), p.upstream, f"{p.name}/{p.upstream}"), model


# ------------------------------------------------------------------------- plain chat


@pytest.mark.parametrize("p", PROVIDERS, ids=ids(PROVIDERS))
def test_chat_plain(client, mock, p):
    mark = marker()
    prompt = f"hello there {mark}"
    r = client.chat.completions.create(model=group(p), messages=user(prompt), max_tokens=100)
    reply = f"mock reply to: {prompt}"
    assert r.choices[0].message.content == reply
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason == "stop"
    assert r.object == "chat.completion"
    assert r.id
    assert_model(p, r.model)
    u = r.usage
    # Ollama's generate prompt carries its `### User:` headers, so only a lower bound there.
    assert u.prompt_tokens >= words(prompt)
    assert u.completion_tokens == words(reply)
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens

    rec = mock.get(p.upstream, mark)
    assert rec["method"] == "POST"
    assert rec["path"].endswith(p.chat_path), rec["path"]


@pytest.mark.parametrize("p", PROVIDERS, ids=ids(PROVIDERS))
def test_conversation_with_system_prompt(client, mock, p):
    """A system prompt and earlier turns go upstream in the provider's own places (Gemini's
    systemInstruction, Anthropic's and Bedrock's system, Ollama's system field, ...)."""
    mark = marker()
    messages = [
        {"role": "system", "content": f"be terse {mark}"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": [{"type": "text", "text": f"second question {mark}"}]},
    ]
    r = client.chat.completions.create(model=group(p), messages=messages, max_tokens=100, temperature=0.3, top_p=0.9)
    assert r.choices[0].message.content == f"mock reply to: second question {mark}"
    sent = json.dumps(mock.get(p.upstream, mark)["body"])
    assert f"be terse {mark}" in sent and "first answer" in sent and "first question" in sent
    # The mock counts every message's words, the system prompt's too.
    assert r.usage.prompt_tokens >= 9


# -------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("p", PROVIDERS, ids=ids(PROVIDERS))
def test_chat_stream_with_usage(client, mock, p):
    mark = marker()
    prompt = f"stream me {mark}"
    out = collect_stream(
        client.chat.completions.create(
            model=group(p),
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
    assert len(chunks) >= 3, "the mock streams word by word"
    assert len({c.id for c in chunks}) == 1, "all chunks must share one id"
    assert {c.model for c in chunks} == {group(p)}, "every chunk names the requested model"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens >= words(prompt)
    assert last.usage.completion_tokens == words(reply)
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1]), "only the final chunk carries usage"
    # The upstream was asked to stream (a buffered answer replayed as chunks would pass the
    # checks above too).
    rec = mock.get(p.upstream, mark)
    streamed_path = p.chat_path.replace(":generateContent", ":streamGenerateContent")
    streamed_path = streamed_path.replace("/converse", "/converse-stream")
    assert rec["path"].endswith(streamed_path), rec["path"]


@pytest.mark.parametrize("p", PROVIDERS, ids=ids(PROVIDERS))
def test_chat_stream_without_usage(client, p):
    mark = marker()
    out = collect_stream(
        client.chat.completions.create(model=group(p), messages=user(f"no usage {mark}"), max_tokens=100, stream=True)
    )
    assert out["content"] == f"mock reply to: no usage {mark}"
    assert out["finish"] == "stop"
    assert all(c.usage is None for c in out["chunks"])


# ------------------------------------------------------------------------------ tools


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("p", WITH_TOOLS, ids=ids(WITH_TOOLS))
def test_tool_call_round_trip(client, mock, p, stream):
    mark = marker()
    messages = user(f"What is the weather in Paris? {mark}")
    out = chat_turn(client, stream, model=group(p), messages=messages, tools=TOOLS, max_tokens=100)
    assert out["finish"] == "tool_calls"
    assert len(out["calls"]) == 1, out["calls"]
    call = out["calls"][0]
    assert call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Paris"}
    # Gemini and Ollama send no call id; the gateway makes one up, as LiteLLM does.
    assert call["id"], call
    assert "get_weather" in json.dumps(mock.get(p.upstream, mark)["body"])

    # Second turn: the tool's result goes back in the provider's format; the model answers.
    mark2 = marker()
    messages = messages + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}
            ],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": f"sunny {mark2}"},
    ]
    out2 = chat_turn(client, stream, model=group(p), messages=messages, tools=TOOLS, max_tokens=100)
    assert out2["content"] == f"tool said: sunny {mark2}"
    assert out2["finish"] == "stop"
    assert not out2["calls"]
    # The call's arguments went back upstream as well (as an object or as JSON text).
    sent = json.dumps(mock.get(p.upstream, mark2)["body"])
    assert "Paris" in sent


@pytest.mark.parametrize("p", WITH_TOOLS, ids=ids(WITH_TOOLS))
def test_tool_choice_none_gets_text(client, p):
    mark = marker()
    kwargs = dict(model=group(p), messages=user(f"no tools {mark}"), tools=TOOLS, tool_choice="none", max_tokens=50)
    if p.name == "bedrock":
        # Converse cannot say "none"; LiteLLM refuses it too unless drop_params is on.
        with pytest.raises(openai.BadRequestError) as ei:
            client.chat.completions.create(**kwargs)
        assert "tool_choice" in ei.value.response.json()["error"]["message"]
        return
    out = chat_turn(client, False, **kwargs)
    assert out["content"] == f"mock reply to: no tools {mark}"
    assert out["finish"] == "stop"


@pytest.mark.parametrize("p", WITH_TOOLS, ids=ids(WITH_TOOLS))
def test_forced_tool_choice_calls_that_tool(client, p):
    """The mock calls the first tool offered unless one is forced: forcing the second proves
    tool_choice reached the provider (Ollama, which has none, is offered only that tool)."""
    other = {"type": "function", "function": {"name": "other", "parameters": {"type": "object", "properties": {}}}}
    out = chat_turn(
        client,
        True,
        model=group(p),
        messages=user(f"forced {marker()}"),
        tools=TOOLS + [other],
        tool_choice={"type": "function", "function": {"name": "other"}},
        max_tokens=50,
    )
    assert [c["name"] for c in out["calls"]] == ["other"], out["calls"]


# ------------------------------------------------------------- vision and JSON mode

PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


@pytest.mark.parametrize("p", PROVIDERS, ids=ids(PROVIDERS))
def test_image_input_reaches_the_provider(client, mock, p):
    mark = marker()
    content = [
        {"type": "text", "text": f"describe {mark}"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
    ]
    r = client.chat.completions.create(model=group(p), messages=[{"role": "user", "content": content}], max_tokens=50)
    assert r.choices[0].message.content == f"mock reply to: describe {mark}"
    # The image's bytes went upstream in the provider's own image block.
    assert PNG_B64 in json.dumps(mock.get(p.upstream, mark)["body"])


# What each provider's request says when OpenAI's JSON mode is asked for.
JSON_MODE_MARKS = {
    "openai": '"json_object"',
    "azure": '"json_object"',
    "gemini": '"application/json"',
    "vertex_ai": '"application/json"',
    "cohere": '"json_object"',
    "ollama_chat": '"format": "json"',
    "ollama": '"format": "json"',
}
JSON_MODE = [p for p in PROVIDERS if p.name in JSON_MODE_MARKS]


@pytest.mark.parametrize("p", JSON_MODE, ids=ids(JSON_MODE))
def test_json_mode_is_translated(client, mock, p):
    mark = marker()
    r = client.chat.completions.create(
        model=group(p),
        messages=user(f"answer in JSON {mark}"),
        response_format={"type": "json_object"},
        max_tokens=50,
    )
    assert r.choices[0].message.content == f"mock reply to: answer in JSON {mark}"
    assert JSON_MODE_MARKS[p.name] in json.dumps(mock.get(p.upstream, mark)["body"])


# Anthropic and Bedrock have no JSON switch: JSON mode is a forced tool whose input becomes
# the message text (as LiteLLM does it); the mock's tool input is {"city": "Paris"}.
FORCED_TOOL_JSON = [p for p in PROVIDERS if p.name in ("anthropic", "bedrock")]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("p", FORCED_TOOL_JSON, ids=ids(FORCED_TOOL_JSON))
def test_json_mode_through_a_forced_tool(client, p, stream):
    out = chat_turn(
        client,
        stream,
        model=group(p),
        messages=user(f"answer in JSON {marker()}"),
        response_format={"type": "json_object"},
        max_tokens=50,
    )
    assert json.loads(out["content"]) == {"city": "Paris"}
    assert not out["calls"], "the forced tool is not the client's: no tool call may show"
    assert out["finish"] == "stop"


# ------------------------------------------------------------- stops and max_tokens


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("p", PROVIDERS, ids=ids(PROVIDERS))
def test_max_tokens_finishes_with_length(client, p, stream):
    out = chat_turn(client, stream, model=group(p), messages=user(f"a long prompt {marker()}"), max_tokens=2)
    assert out["content"] == "mock reply"
    assert out["finish"] == "length"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("p", PROVIDERS, ids=ids(PROVIDERS))
def test_stop_sequence_finishes_with_stop(client, mock, p, stream):
    mark = marker()
    out = chat_turn(
        client, stream, model=group(p), messages=user(f"please HALT now {mark}"), max_tokens=50, stop=["HALT"]
    )
    assert out["content"].rstrip() == "mock reply to: please"
    assert out["finish"] == "stop"
    # The stop sequence went upstream under the provider's own name for it (not just in the prompt).
    body = mock.get(p.upstream, mark)["body"]
    settings = {k: v for k, v in body.items() if k not in ("messages", "contents", "prompt")}
    assert "HALT" in json.dumps(settings), body


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("p", PROVIDERS, ids=ids(PROVIDERS))
def test_upstream_429_is_a_rate_limit_error(client, p, stream):
    with pytest.raises(openai.RateLimitError) as ei:
        r = client.chat.completions.create(
            model=group(p, "429"), messages=user(f"fail {marker()}"), max_tokens=20, stream=stream
        )
        if stream:
            list(r)
    assert ei.value.status_code == 429
    err = assert_error_shape(ei.value.response.json())
    assert err["type"] == "rate_limit_error", err


@pytest.mark.parametrize("p", PROVIDERS, ids=ids(PROVIDERS))
def test_upstream_400_is_an_invalid_request(client, p):
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model=group(p, "400"), messages=user(f"fail {marker()}"), max_tokens=20)
    assert ei.value.status_code == 400
    err = assert_error_shape(ei.value.response.json())
    assert err["type"] == "invalid_request_error", err
    # The provider's own words survive the translation (the mock's message, or Bedrock's).
    assert "simulated error 400" in err["message"] or "Malformed input request" in err["message"], err


@pytest.mark.parametrize("p", PROVIDERS, ids=ids(PROVIDERS))
def test_prompt_too_long_is_context_length_exceeded(client, p):
    """Each provider words an over-long prompt its own way; clients (and context-window
    fallbacks) see OpenAI's 400 with code context_length_exceeded."""
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model=group(p, "ctx"), messages=user(f"long {marker()}"), max_tokens=20)
    assert ei.value.status_code == 400
    err = assert_error_shape(ei.value.response.json())
    assert err["type"] == "invalid_request_error", err
    assert err["code"] == "context_length_exceeded", err


@pytest.mark.parametrize("p", PROVIDERS, ids=ids(PROVIDERS))
def test_stream_cut_upstream_ends_with_an_error_event(raw, p):
    """The mock aborts the body after two content events: the client gets what arrived, then
    an error event and no [DONE], so a truncated answer never looks complete."""
    mark = marker()
    r = raw.post(
        "/v1/chat/completions",
        json={"model": group(p, "cut"), "messages": user(f"cut {mark}"), "max_tokens": 50, "stream": True},
        stream=True,
    )
    assert r.status_code == 200, r.text
    text = read_tolerant(r)
    assert "data: [DONE]" not in text
    payloads = sse_payloads(text)
    errors = [x for x in payloads if isinstance(x, dict) and "error" in x]
    assert errors and errors[-1]["error"].get("message"), text
    content = "".join(
        (x.get("choices") or [{}])[0].get("delta", {}).get("content") or "" for x in payloads if "choices" in x
    )
    assert content and f"mock reply to: cut {mark}".startswith(content), content


# ------------------------------------------------------------------------- embeddings

# (model group, upstream model, how many inputs one request may carry)
EMBEDDERS = [
    ("p-gemini-embed", "p-text-embedding-004", 3),
    ("p-vertex_ai-embed", "p-text-embedding-005", 3),
    # Titan embeds one text per call.
    ("p-bedrock-embed", "amazon.titan-embed-text-v2:0", 1),
    ("p-bedrock-embed-2", "cohere.embed-english-v3", 3),
    ("p-cohere-embed", "p-embed-english-v3.0", 3),
    ("p-ollama-embed", "p-nomic-embed-text", 3),
    ("p-ollama_chat-embed", "p-nomic-embed-chat", 3),
    ("p-azure-embed", "p-azure-embedding", 3),
]


@pytest.mark.parametrize("model, upstream, batch", EMBEDDERS, ids=[e[0] for e in EMBEDDERS])
def test_embeddings(client, mock, model, upstream, batch):
    mark = marker()
    inputs = [f"alpha {mark}", f"beta {mark}", f"alpha {mark}"][:batch]
    r = client.embeddings.create(model=model, input=inputs if batch > 1 else inputs[0])
    assert r.object == "list"
    assert [d.index for d in r.data] == list(range(len(inputs)))
    for text, d in zip(inputs, r.data):
        assert_vectors_close(d.embedding, expected_embedding(text))
    assert mock.find(upstream, mark) is not None, f"no embedding request for {upstream} reached the mock"


# -------------------------------------------------------------- /v1/completions


@pytest.mark.parametrize(
    "model, upstream, path",
    [
        ("p-openai-chat", "p-gpt-4o", "/v1/completions"),
        ("p-ollama-chat", "p-llama3-generate", "/api/generate"),
        ("p-azure-chat", "p-azure-gpt-4o", "/openai/deployments/p-azure-gpt-4o/completions"),
    ],
    ids=["openai", "ollama", "azure"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_legacy_completions(client, mock, model, upstream, path, stream):
    mark = marker()
    prompt = f"complete this {mark}"
    if stream:
        chunks = list(client.completions.create(model=model, prompt=prompt, max_tokens=50, stream=True))
        text = "".join(c.choices[0].text or "" for c in chunks if c.choices)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert len({c.id for c in chunks}) == 1
    else:
        r = client.completions.create(model=model, prompt=prompt, max_tokens=50)
        assert r.object == "text_completion"
        text, finishes = r.choices[0].text, [r.choices[0].finish_reason]
        assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert text == f"mock reply to: {prompt}"
    assert finishes == ["stop"]
    assert mock.get(upstream, mark)["path"] == path


# ---------------------------------------------------------------- built-in mock/


def test_builtin_mock_embeds_and_completes(client):
    """mock/ answers every endpoint in-process (no provider is called)."""
    a = client.embeddings.create(model="mock-local", input=["one", "two", "one"])
    vectors = [d.embedding for d in a.data]
    assert len(vectors) == 3 and len(vectors[0]) > 0
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1], "deterministic per input"
    r = client.completions.create(model="mock-local", prompt=f"anything {marker()}")
    assert r.choices[0].text == "hello from the built-in mock"
