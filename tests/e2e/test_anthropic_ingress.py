"""Anthropic-format ingress: the official `anthropic` SDK against /v1/messages.

Every model group answers in Anthropic's format whatever its provider: OpenAI, Gemini and
Bedrock deployments of the mock get the request translated; an Anthropic deployment gets
the client's body as it came (passthrough). Each test carries a unique marker so the
upstream request can be found at the mock.
"""

import anthropic
import pytest

from conftest import MASTER_KEY, TIMEOUT, TOLLGATE_URL, marker, words

# model group -> the upstream model name the mock records it under
GROUPS = {
    "ingress-openai": "gpt-4o-ingress",
    "ingress-gemini": "gemini-2.0-flash-ingress",
    "ingress-bedrock": "anthropic.claude-3-haiku-ingress-v1:0",
    "ingress-claude": "claude-ingress-passthrough",
}

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def claude() -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=TOLLGATE_URL, api_key=MASTER_KEY, max_retries=0, timeout=TIMEOUT)


def text_of(message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


@pytest.mark.parametrize("group", GROUPS)
def test_text_answer(claude, mock, group):
    m = marker()
    msg = claude.messages.create(
        model=group,
        max_tokens=100,
        system="You are terse.",
        # Claude Code sends this on every request; providers without `user` must not fail.
        metadata={"user_id": "u-ingress"},
        messages=[{"role": "user", "content": f"hello {m}"}],
    )
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.model == group
    assert msg.id.startswith("msg_")
    assert text_of(msg) == f"mock reply to: hello {m}"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens == words(text_of(msg))
    assert msg.usage.input_tokens >= 1
    rec = mock.get(GROUPS[group], m)
    if group == "ingress-claude":
        # Passthrough: the body is the client's, with the upstream model name.
        assert rec["body"]["system"] == "You are terse."
        assert rec["body"]["model"] == GROUPS[group]
        assert rec["body"]["max_tokens"] == 100


@pytest.mark.parametrize("group", GROUPS)
def test_streamed_answer(claude, group):
    m = marker()
    with claude.messages.stream(
        model=group,
        max_tokens=100,
        messages=[{"role": "user", "content": f"stream please {m}"}],
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1, "text arrives in pieces"
    assert "".join(pieces) == f"mock reply to: stream please {m}"
    assert text_of(final) == "".join(pieces)
    assert final.model == group
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == words("".join(pieces))


@pytest.mark.parametrize("group", GROUPS)
def test_max_tokens_cuts_the_answer(claude, group):
    msg = claude.messages.create(
        model=group,
        max_tokens=2,
        messages=[{"role": "user", "content": f"a long reply {marker()}"}],
    )
    assert msg.stop_reason == "max_tokens"
    assert words(text_of(msg)) == 2


def tool_round_trip(claude, mock, group, stream):
    m = marker()
    asked = [{"role": "user", "content": f"weather in Paris? {m}"}]

    def send(messages):
        kwargs = dict(model=group, max_tokens=200, tools=[WEATHER_TOOL], messages=messages)
        if not stream:
            return claude.messages.create(**kwargs)
        with claude.messages.stream(**kwargs) as s:
            return s.get_final_message()

    first = send(asked)
    assert first.stop_reason == "tool_use"
    calls = [b for b in first.content if b.type == "tool_use"]
    assert len(calls) == 1
    assert calls[0].name == "get_weather"
    assert calls[0].input == {"city": "Paris"}
    assert calls[0].id
    answer = f"sunny {m}"
    second = send(
        asked
        + [
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": answer}]},
        ]
    )
    assert second.stop_reason == "end_turn"
    assert text_of(second) == f"tool said: {answer}"
    # The upstream saw the result tied to its call.
    assert mock.get(GROUPS[group], answer)


@pytest.mark.parametrize("group", GROUPS)
def test_tool_call_round_trip(claude, mock, group):
    tool_round_trip(claude, mock, group, stream=False)


@pytest.mark.parametrize("group", GROUPS)
def test_streamed_tool_call_round_trip(claude, mock, group):
    tool_round_trip(claude, mock, group, stream=True)


def test_forced_tool_choice_is_translated(claude, mock):
    m = marker()
    msg = claude.messages.create(
        model="ingress-openai",
        max_tokens=50,
        tools=[WEATHER_TOOL, {**WEATHER_TOOL, "name": "get_time"}],
        tool_choice={"type": "tool", "name": "get_time"},
        messages=[{"role": "user", "content": f"time? {m}"}],
    )
    assert [b.name for b in msg.content if b.type == "tool_use"] == ["get_time"]
    sent = mock.get(GROUPS["ingress-openai"], m)["body"]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert sent["tools"][0]["function"]["parameters"] == WEATHER_TOOL["input_schema"]


def test_image_blocks_reach_openai_as_image_parts(claude, mock):
    m = marker()
    claude.messages.create(
        model="ingress-openai",
        max_tokens=50,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                    {"type": "text", "text": f"what is this {m}"},
                ],
            }
        ],
    )
    parts = mock.get(GROUPS["ingress-openai"], m)["body"]["messages"][0]["content"]
    assert parts[0] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    assert parts[1]["image_url"]["url"] == "https://example.com/cat.png"


def test_wrong_key_is_an_authentication_error():
    bad = anthropic.Anthropic(base_url=TOLLGATE_URL, api_key="sk-wrong", max_retries=0, timeout=TIMEOUT)
    with pytest.raises(anthropic.AuthenticationError) as e:
        bad.messages.create(model="ingress-openai", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 401
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "authentication_error"


def test_bad_requests_are_invalid_request_errors(claude):
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(model="no-such-group", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(model="ingress-openai", max_tokens=5, messages=[])
    assert "messages" in e.value.body["error"]["message"]


def test_upstream_errors_keep_status_and_type(claude):
    with pytest.raises(anthropic.RateLimitError) as e:
        claude.messages.create(model="ingress-openai-429", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["error"]["type"] == "rate_limit_error"
    with pytest.raises(anthropic.APIStatusError) as e:
        claude.messages.create(model="ingress-claude-529", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 529
    assert e.value.body["error"]["type"] == "overloaded_error"


def test_cut_stream_raises_instead_of_ending_cleanly(claude):
    with pytest.raises(anthropic.APIError):
        with claude.messages.stream(
            model="ingress-openai-cut", max_tokens=50, messages=[{"role": "user", "content": "one two three four"}]
        ) as stream:
            for _ in stream.text_stream:
                pass
            stream.get_final_message()
