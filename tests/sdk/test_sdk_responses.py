"""The Responses API through the sidecar with openai-python (`responses.create`,
`responses.stream(...).get_final_response()`), through a failover and across vendor
crossings (to a Chat Completions target and to an Anthropic one), with every response
and stream event the sidecar emits validated against the Open Responses OpenAPI schema."""

import json
import os
import urllib.request

import jsonschema
import openai
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A copy of the Open Responses OpenAPI document, kept in the repository so the schema
# checks run everywhere (refresh it from the specification when it changes).
SPEC = os.path.join(ROOT, "tests", "specs", "openresponses-openapi.json")
STREAM_SCHEMA = "#/paths/~1responses/post/responses/200/content/text~1event-stream/schema"


@pytest.fixture(scope="module")
def validate():
    with open(SPEC) as f:
        spec = json.load(f)

    def check(value, ref):
        schema = {**spec, "$ref": ref}
        jsonschema.Draft202012Validator(schema).validate(value)

    return check


def client(sidecar):
    return openai.OpenAI(base_url=sidecar.openai_base, api_key="sk-app-key", max_retries=0)


def raw(sidecar, body):
    """The sidecar's own bytes: a JSON body, or the data of each SSE event."""
    request = urllib.request.Request(
        f"{sidecar.openai_base}/responses",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        text = response.read().decode()
        provider = response.headers["x-switchyard-provider"]
    if not body.get("stream"):
        return provider, json.loads(text)
    events = [
        json.loads(line[len("data: "):])
        for line in text.splitlines()
        if line.startswith("data: ")
    ]
    return provider, events


@pytest.mark.parametrize(
    "model,provider",
    [("gpt-4o", "secondary"), ("resp-chat", "chat-only"), ("resp-claude", "claude-backup")],
)
def test_create_and_stream_through_a_failover(sidecar, mocks, validate, model, provider):
    primary, _ = mocks
    primary.faults(errorRate=1.0)
    oa = client(sidecar)
    created = oa.responses.with_raw_response.create(model=model, input="hello")
    assert created.headers["x-switchyard-provider"] == provider
    assert created.parse().output_text == "Hello from mock secondary"
    with oa.responses.stream(model=model, input="hello") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "Hello from mock secondary"
    assert final.output_text == "Hello from mock secondary"
    assert final.status == "completed"
    assert final.usage.output_tokens > 0
    assert final.id.startswith("resp_")

    got, body = raw(sidecar, {"model": model, "input": "hello"})
    assert got == provider
    validate(body, "#/components/schemas/ResponseResource")
    _, events = raw(sidecar, {"model": model, "input": "hello", "stream": True})
    for event in events:
        validate(event, STREAM_SCHEMA)
    assert events[-1]["type"] == "response.completed"


@pytest.mark.parametrize("model", ["gpt-4o", "resp-chat", "resp-claude"])
def test_a_function_tool_round_trip(sidecar, mocks, validate, model):
    primary, _ = mocks
    primary.faults(errorRate=1.0)
    oa = client(sidecar)
    tools = [{"type": "function", "name": "get_weather", "description": "Weather in a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    first = oa.responses.create(model=model, input="weather in Paris?", tools=tools)
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather"
    follow_up = [
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    with oa.responses.stream(model=model, input=follow_up) as stream:
        final = stream.get_final_response()
    assert final.status == "completed"
    _, events = raw(sidecar, {"model": model, "input": follow_up, "tools": tools, "stream": True})
    for event in events:
        validate(event, STREAM_SCHEMA)


def test_a_break_after_content_ends_with_response_failed(sidecar, mocks, validate):
    primary, _ = mocks
    primary.faults(chunks=6, dropAfterChunks=2)
    _, events = raw(sidecar, {"model": "gpt-4o", "input": "hello", "stream": True})
    for event in events:
        validate(event, STREAM_SCHEMA)
    assert events[-1]["type"] == "response.failed"
    assert all(e["type"] != "response.completed" for e in events)
