"""Cross-vendor failover seen by the official SDKs: an OpenAI call answered by an
Anthropic target and an Anthropic call answered by an OpenAI target, with tool calls."""

import json

import anthropic
import openai

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def openai_client(sidecar):
    return openai.OpenAI(base_url=sidecar.openai_base, api_key="sk-app-key", max_retries=0)


def anthropic_client(sidecar):
    return anthropic.Anthropic(base_url=sidecar.anthropic_base, api_key="sk-app-key", max_retries=0)


def test_openai_sdk_tool_call_answered_by_anthropic(sidecar, mocks):
    primary, secondary = mocks
    primary.faults(errorRate=1.0, errorStatus=503)
    raw = openai_client(sidecar).chat.completions.with_raw_response.create(
        model="cross-gpt",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )
    completion = raw.parse()
    assert raw.headers["x-switchyard-provider"] == "claude-backup"
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"mock": "secondary"}
    assert completion.choices[0].finish_reason == "tool_calls"
    assert secondary.stats()["recent"][0]["path"] == "/v1/messages"


def test_openai_sdk_stream_answered_by_anthropic(sidecar, mocks):
    primary, _ = mocks
    primary.faults(errorRate=1.0, errorStatus=500)
    stream = openai_client(sidecar).chat.completions.create(
        model="cross-gpt",
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "secondary" in text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_openai_sdk_stream_tool_call_answered_by_anthropic(sidecar, mocks):
    primary, _ = mocks
    primary.faults(errorRate=1.0, errorStatus=500)
    stream = openai_client(sidecar).chat.completions.create(
        model="cross-gpt",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    arguments, name, finish = "", None, None
    for chunk in stream:
        choice = chunk.choices[0]
        for call in choice.delta.tool_calls or []:
            name = name or call.function.name
            arguments += call.function.arguments or ""
        finish = choice.finish_reason or finish
    assert name == "get_weather"
    assert json.loads(arguments) == {"mock": "secondary"}
    assert finish == "tool_calls"


def test_anthropic_sdk_answered_by_openai(sidecar, mocks):
    primary, secondary = mocks
    primary.faults(errorRate=1.0, errorStatus=529)
    client = anthropic_client(sidecar)
    raw = client.messages.with_raw_response.create(
        model="cross-claude", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
    )
    message = raw.parse()
    assert raw.headers["x-switchyard-provider"] == "secondary"
    assert "secondary" in message.content[0].text
    assert message.stop_reason == "end_turn"
    assert secondary.stats()["recent"][0]["path"] == "/v1/chat/completions"

    with client.messages.stream(
        model="cross-claude",
        max_tokens=64,
        messages=[{"role": "user", "content": "weather?"}],
        tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    tool_use = [b for b in final.content if b.type == "tool_use"][0]
    assert tool_use.name == "get_weather" and tool_use.input == {"mock": "secondary"}
