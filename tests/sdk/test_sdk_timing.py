"""Real model timing as the official SDKs meet it: their default retries never walk the
plan twice, and reasoning streams reach them as they come."""

import anthropic
import openai
import pytest


def test_default_sdk_retries_cost_one_walk_of_the_plan(sidecar, mocks):
    primary, secondary = mocks
    for mock in mocks:
        mock.faults(errorRate=1.0, errorStatus=503)
    # The SDKs' defaults: two retries with back-off on a 502/503.
    for client, call in [
        (
            openai.OpenAI(base_url=sidecar.openai_base, api_key="sk-app-key"),
            lambda c: c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}]),
        ),
        (
            anthropic.Anthropic(base_url=sidecar.anthropic_base, api_key="sk-app-key"),
            lambda c: c.messages.create(
                model="claude-chat", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
            ),
        ),
    ]:
        before = primary.stats()["calls"] + secondary.stats()["calls"]
        with pytest.raises((openai.APIStatusError, anthropic.APIStatusError)) as raised:
            call(client)
        assert raised.value.status_code == 502
        assert raised.value.response.headers["x-should-retry"] == "false"
        after = primary.stats()["calls"] + secondary.stats()["calls"]
        assert after - before == 2, "one app call, one walk of the two targets"


def test_reasoning_deltas_reach_the_openai_sdk(sidecar, mocks):
    primary, _ = mocks
    primary.faults(think="3s", thinkAs="reasoning")
    client = openai.OpenAI(base_url=sidecar.openai_base, api_key="sk-app-key", max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "think"}], stream=True
    )
    reasoning, text = "", ""
    for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta
            reasoning += getattr(delta, "reasoning_content", None) or ""
            text += delta.content or ""
    assert "Thinking, step 1." in reasoning
    assert "primary" in text


def test_anthropic_thinking_crosses_to_the_openai_sdk(sidecar, mocks):
    primary, _ = mocks
    primary.faults(think="2s", thinkAs="reasoning")
    client = openai.OpenAI(base_url=sidecar.openai_base, api_key="sk-app-key", max_retries=0)
    # `claude-chat` is served by the Anthropic-speaking `claude` provider.
    stream = client.chat.completions.create(
        model="claude-chat", messages=[{"role": "user", "content": "think"}], stream=True
    )
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in stream if c.choices
    )
    assert "Thinking, step 1." in reasoning
