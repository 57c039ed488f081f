"""The official SDKs, unmodified but for their base URL, through a failover."""

import anthropic
import openai
import pytest


def openai_client(sidecar):
    return openai.OpenAI(base_url=sidecar.openai_base, api_key="sk-app-key", max_retries=0)


def anthropic_client(sidecar):
    return anthropic.Anthropic(base_url=sidecar.anthropic_base, api_key="sk-app-key", max_retries=0)


def test_openai_chat_fails_over(sidecar, mocks):
    primary, secondary = mocks
    primary.faults(errorRate=1.0, errorStatus=503)
    raw = openai_client(sidecar).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hello"}]
    )
    completion = raw.parse()
    assert "secondary" in completion.choices[0].message.content
    assert completion.model == "gpt-4o-mini"
    assert completion.usage.total_tokens > 0
    assert raw.headers["x-switchyard-provider"] == "secondary"
    assert raw.headers["x-switchyard-attempts"] == "2"
    seen = secondary.stats()["recent"][0]["headers"]
    assert seen["authorization"] == "Bearer sk-sidecar-secret", "the app's own key is never forwarded"


def test_openai_stream_fails_over_before_first_content(sidecar, mocks):
    primary, _ = mocks
    primary.faults(dropAfterChunks=0)
    stream = openai_client(sidecar).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "secondary" in text


def test_openai_stream_cut_after_content_raises(sidecar, mocks):
    primary, _ = mocks
    primary.faults(chunks=6, dropAfterChunks=2)
    stream = openai_client(sidecar).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hello"}], stream=True
    )
    with pytest.raises(openai.APIError, match="stream_cut|failed"):
        for _ in stream:
            pass


def test_openai_errors_are_sdk_exceptions(sidecar):
    client = openai_client(sidecar)
    with pytest.raises(openai.NotFoundError, match="gpt-9"):
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])


def test_openai_embeddings(sidecar):
    result = openai_client(sidecar).embeddings.create(model="gpt-4o", input="hello")
    assert len(result.data[0].embedding) > 0


def test_openai_models_lists_routes(sidecar):
    ids = [m.id for m in openai_client(sidecar).models.list()]
    assert ids == ["gpt-4o", "cross-gpt", "cross-claude", "resp-chat", "resp-claude", "claude-chat"]


def test_anthropic_messages_fail_over(sidecar, mocks):
    primary, _ = mocks
    primary.faults(errorRate=1.0, errorStatus=529)
    raw = anthropic_client(sidecar).messages.with_raw_response.create(
        model="claude-chat", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
    )
    message = raw.parse()
    assert "secondary" in message.content[0].text
    assert message.model == "claude-haiku-4-5"
    assert raw.headers["x-switchyard-provider"] == "claude-backup"


def test_anthropic_stream_fails_over_on_early_overload(sidecar, mocks):
    primary, _ = mocks
    primary.faults(errorEventAfterChunks=0)
    with anthropic_client(sidecar).messages.stream(
        model="claude-chat", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "secondary" in text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_anthropic_stream_error_after_content_raises(sidecar, mocks):
    primary, _ = mocks
    primary.faults(chunks=6, errorEventAfterChunks=2)
    with pytest.raises(anthropic.APIStatusError):
        with anthropic_client(sidecar).messages.stream(
            model="claude-chat", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
        ) as stream:
            for _ in stream.text_stream:
                pass


def test_anthropic_errors_are_sdk_exceptions(sidecar):
    with pytest.raises(anthropic.NotFoundError, match="claude-9"):
        anthropic_client(sidecar).messages.create(
            model="claude-9", max_tokens=1, messages=[{"role": "user", "content": "hi"}]
        )


def test_metrics_show_the_failover(sidecar, mocks):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    primary, _ = mocks
    primary.faults(errorRate=1.0, errorStatus=500)
    openai_client(sidecar).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    families = {f.name: f for f in text_string_to_metric_families(sidecar.metrics())}
    failovers = [s for s in families["switchyard_failovers"].samples if s.name.endswith("_total")]
    assert failovers[0].labels == {
        "route": "gpt-4o",
        "from": "primary/gpt-4o",
        "to": "secondary/gpt-4o-mini",
        "reason": "http_500",
    }
    assert failovers[0].value == 1
