"""The openai-agents SDK (whose default model speaks Responses): `Runner.run` with a
function tool, through a failover and across a vendor crossing to Anthropic."""

import agents
import pytest
from openai import AsyncOpenAI

CALLS = []


# Not strict, with a default: the mock calls it with its own arguments ({"mock": NAME}).
@agents.function_tool(strict_mode=False)
def get_weather(city: str = "Paris") -> str:
    """The weather in a city."""
    CALLS.append(city)
    return "sunny"


@pytest.mark.parametrize(
    "model,provider", [("gpt-4o", "secondary"), ("resp-claude", "claude-backup")]
)
def test_runner_runs_a_tool_loop_through_a_failover(sidecar, mocks, model, provider):
    primary, secondary = mocks
    primary.faults(errorRate=1.0)
    agents.set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=sidecar.openai_base, api_key="sk-app-key", max_retries=0)
    agent = agents.Agent(
        name="weather",
        instructions="Answer with the weather.",
        tools=[get_weather],
        model=agents.OpenAIResponsesModel(model=model, openai_client=client),
    )
    CALLS.clear()
    result = agents.Runner.run_sync(agent, "What is the weather in Paris?")
    assert CALLS, "the tool ran"
    assert result.final_output == "Hello from mock secondary"
    paths = {r["path"] for r in secondary.stats()["recent"]}
    assert paths == ({"/v1/responses"} if provider == "secondary" else {"/v1/messages"})
