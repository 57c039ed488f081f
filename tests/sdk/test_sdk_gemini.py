"""Gemini seen by independent clients: Google's own SDK (`google-genai`) parses the mock's
generateContent and streamGenerateContent answers (so the mock is faithful), and the
OpenAI and Anthropic SDKs are answered by a Gemini target through the sidecar."""

import json
import os
import tempfile

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from conftest import Mock, Proc

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}
    ),
)


@pytest.fixture
def google_mock():
    mock = Mock("google")
    yield mock
    mock.proc.stop()


def genai_client(mock):
    return genai.Client(api_key="gm-test-key", http_options=types.HttpOptions(base_url=mock.url))


def test_google_sdk_parses_a_whole_answer(google_mock):
    client = genai_client(google_mock)  # kept: a collected client closes its connection pool
    response = client.models.generate_content(model="gemini-2.5-flash", contents="hello")
    assert response.text == "Hello from mock google"
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata.prompt_token_count > 0
    assert response.model_version == "gemini-2.5-flash"
    sent = google_mock.stats()["recent"][-1]
    assert sent["path"].endswith("/models/gemini-2.5-flash:generateContent")
    assert sent["headers"]["x-goog-api-key"] == "gm-test-key"


def test_google_sdk_parses_a_stream_and_a_function_call(google_mock):
    google_mock.faults(chunks=4)
    client = genai_client(google_mock)
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hello"))
    assert "".join(c.text or "" for c in chunks) == "Hello from mock google"
    assert len(chunks) >= 4
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    sent = google_mock.stats()["recent"][-1]
    assert sent["query"] == "alt=sse"

    response = client.models.generate_content(
        model="gemini-2.5-flash",
        contents="weather?",
        config=types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[WEATHER])],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        ),
    )
    call = response.function_calls[0]
    assert call.name == "get_weather"
    assert call.args == {"mock": "google"}


def test_google_sdk_sees_google_errors(google_mock):
    google_mock.faults(errorRate=1.0, errorStatus=429, retryAfter=7)
    client = genai_client(google_mock)
    with pytest.raises(genai.errors.ClientError) as raised:
        client.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert raised.value.code == 429
    assert raised.value.status == "RESOURCE_EXHAUSTED"


POLICY = """
providers:
  - name: gemini
    api: gemini
    baseUrl: {g}
    auth: {{apiKey: {{fromEnv: SDK_TEST_KEY}}}}
routes:
  - model: "*"
    targets: [{{provider: gemini, model: gemini-2.5-flash}}]
"""


@pytest.fixture
def gemini_sidecar(google_mock):
    policy = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    policy.write(POLICY.format(g=google_mock.url))
    policy.close()
    proc = Proc(
        ["run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--policy-file", policy.name],
        "switchyard is serving",
        env={"SDK_TEST_KEY": "gm-sidecar-secret"},
    )
    yield proc.addrs[0]
    log = proc.stop()
    assert "gm-sidecar-secret" not in log, "API keys never appear in logs"
    os.unlink(policy.name)


def test_openai_sdk_is_answered_by_gemini(gemini_sidecar, google_mock):
    client = openai.OpenAI(base_url=f"http://{gemini_sidecar}/v1", api_key="sk-app-key", max_retries=0)
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": False}}}
    completion = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "weather?"}], tools=[tool]
    )
    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"mock": "google"}
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from mock google"
    assert chunks[-1].usage.completion_tokens > 0
    assert google_mock.stats()["recent"][-1]["headers"]["x-goog-api-key"] == "gm-sidecar-secret"


def test_anthropic_sdk_is_answered_by_gemini(gemini_sidecar):
    client = anthropic.Anthropic(base_url=f"http://{gemini_sidecar}", api_key="sk-app-key", max_retries=0)
    message = client.messages.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].text == "Hello from mock google"
    assert message.stop_reason == "end_turn"
    with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from mock google"
    assert final.usage.output_tokens > 0
