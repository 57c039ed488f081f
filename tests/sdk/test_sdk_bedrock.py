"""Amazon Bedrock, checked by AWS's own SDK: boto3's `bedrock-runtime` client parses the
mock's Converse and ConverseStream answers (so the mock, its SigV4 check and its
event-stream frames are faithful), botocore's signer agrees with the sidecar's SigV4,
frames made by hand (and checked by botocore's decoder) are decoded by the sidecar even
one byte per chunk, and the official openai / anthropic SDKs reach Bedrock through the
sidecar."""

import binascii
import datetime
import http.server
import json
import os
import struct
import tempfile
import threading

import anthropic
import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.eventstream
import openai
import pytest
from botocore.exceptions import ClientError

from conftest import Mock, Proc

KEY_ID = "AKIDSDKTESTKEY"
SECRET = "sdk-test-secret-never-logged"
MODEL = "arn:aws:bedrock:eu-west-3:123456789012:inference-profile/eu.anthropic.claude-sonnet-4-5-v1:0"


def bedrock_client(mock, secret=SECRET):
    return boto3.client(
        "bedrock-runtime",
        region_name="eu-west-3",
        endpoint_url=mock.url,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


@pytest.fixture
def bedrock_mock():
    mock = Mock("bedrock")
    mock.faults(sigv4Key=f"{KEY_ID}:{SECRET}")
    yield mock
    mock.proc.stop()


def test_boto3_parses_converse(bedrock_mock):
    reply = bedrock_client(bedrock_mock).converse(
        modelId=MODEL,
        system=[{"text": "Be brief."}],
        messages=[{"role": "user", "content": [{"text": "hello"}]}],
        inferenceConfig={"maxTokens": 64, "temperature": 0.2},
    )
    assert reply["output"]["message"]["content"][0]["text"] == "Hello from mock bedrock"
    assert reply["stopReason"] == "end_turn"
    assert reply["usage"]["outputTokens"] > 0
    seen = bedrock_mock.stats()["recent"][0]
    assert seen["model"] == MODEL, "botocore encodes the ARN into one path segment"
    assert "/eu-west-3/bedrock/aws4_request" in seen["headers"]["authorization"]


def test_boto3_parses_converse_stream(bedrock_mock):
    bedrock_mock.faults(sigv4Key=f"{KEY_ID}:{SECRET}", chunks=6)
    reply = bedrock_client(bedrock_mock).converse_stream(
        modelId=MODEL,
        messages=[{"role": "user", "content": [{"text": "hello"}]}],
    )
    events = list(reply["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == "Hello from mock bedrock"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 6


def test_boto3_parses_tool_use_and_stream_exceptions(bedrock_mock):
    client = bedrock_client(bedrock_mock)
    tools = {"tools": [{"toolSpec": {"name": "weather", "inputSchema": {"json": {"type": "object"}}}}]}
    reply = client.converse(
        modelId=MODEL, messages=[{"role": "user", "content": [{"text": "weather?"}]}], toolConfig=tools
    )
    call = reply["output"]["message"]["content"][0]["toolUse"]
    assert (call["name"], call["input"], reply["stopReason"]) == ("weather", {"mock": "bedrock"}, "tool_use")
    bedrock_mock.faults(sigv4Key=f"{KEY_ID}:{SECRET}", errorEventAfterChunks=1, errorStatus=429)
    stream = client.converse_stream(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    with pytest.raises(Exception) as raised:
        list(stream["stream"])
    assert "throttlingException" in repr(raised.value) or "Throttling" in repr(raised.value)


def test_boto3_sees_the_mocks_refusals(bedrock_mock):
    with pytest.raises(ClientError) as raised:
        bedrock_client(bedrock_mock, secret="not-the-secret").converse(
            modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
    assert raised.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    bedrock_mock.faults(sigv4Key=f"{KEY_ID}:{SECRET}", errorRate=1.0, errorStatus=429)
    with pytest.raises(ClientError) as raised:
        bedrock_client(bedrock_mock).converse(
            modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"


POLICY = """
providers:
  - name: bedrock
    api: bedrock
    region: eu-west-3
    baseUrl: {url}
    auth: {{aws: {{}}}}
routes:
  - model: claude
    targets: [{{provider: bedrock, model: "{model}"}}]
"""


def start_sidecar(url):
    policy = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    policy.write(POLICY.format(url=url, model=MODEL))
    policy.close()
    proc = Proc(
        ["run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--policy-file", policy.name],
        "switchyard is serving",
        env={"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-west-2"},
    )
    return proc, policy.name


@pytest.fixture
def sidecar_to_bedrock(bedrock_mock):
    proc, policy = start_sidecar(bedrock_mock.url)
    yield f"http://{proc.addrs[0]}"
    log = proc.stop()
    os.unlink(policy)
    assert SECRET not in log, "AWS secrets never appear in logs"


def test_openai_and_anthropic_sdks_reach_bedrock(sidecar_to_bedrock):
    oa = openai.OpenAI(base_url=f"{sidecar_to_bedrock}/v1", api_key="sk-app-key", max_retries=0)
    reply = oa.chat.completions.create(model="claude", messages=[{"role": "user", "content": "hello"}])
    assert reply.choices[0].message.content == "Hello from mock bedrock"
    stream = oa.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "hello"}], stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from mock bedrock"
    assert chunks[-1].usage.completion_tokens > 0
    an = anthropic.Anthropic(base_url=sidecar_to_bedrock, api_key="sk-app-key", max_retries=0)
    message = an.messages.create(model="claude", max_tokens=64, messages=[{"role": "user", "content": "hello"}])
    assert message.content[0].text == "Hello from mock bedrock"
    with an.messages.stream(model="claude", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        assert s.get_final_text() == "Hello from mock bedrock"
        assert s.get_final_message().stop_reason == "end_turn"


def frame(event_type, payload, message_type="event"):
    """One event-stream message built by hand from the format's description."""

    def header(name, value):
        name, value = name.encode(), value.encode()
        return struct.pack("!B", len(name)) + name + b"\x07" + struct.pack("!H", len(value)) + value

    headers = (
        header(":message-type", message_type)
        + header(":event-type" if message_type == "event" else ":exception-type", event_type)
        + header(":content-type", "application/json")
    )
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack("!II", total, len(headers))
    prelude += struct.pack("!I", binascii.crc32(prelude))
    message = prelude + headers + body
    return message + struct.pack("!I", binascii.crc32(message))


HAND_MADE = b"".join(
    [
        frame("messageStart", {"role": "assistant", "p": "abc"}),
        frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hand"}, "p": "abcdef"}),
        frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "-made"}}),
        frame("contentBlockStop", {"contentBlockIndex": 0}),
        frame("messageStop", {"stopReason": "end_turn"}),
        frame("metadata", {"usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}, "metrics": {"latencyMs": 1}}),
    ]
)


def test_hand_made_frames_are_valid_for_botocore():
    buffer = botocore.eventstream.EventStreamBuffer()
    buffer.add_data(HAND_MADE)
    messages = list(buffer)
    assert [m.headers[":event-type"] for m in messages][:2] == ["messageStart", "contentBlockDelta"]
    assert json.loads(messages[1].payload)["delta"]["text"] == "Hand"


class FakeBedrock(http.server.BaseHTTPRequestHandler):
    """Answers ConverseStream with the hand-made frames one byte per HTTP chunk, after
    checking the sidecar's SigV4 with botocore's own signer."""

    protocol_version = "HTTP/1.1"
    checks = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        FakeBedrock.checks.append(botocore_agrees(self, body))
        self.send_response(200)
        self.send_header("content-type", "application/vnd.amazon.eventstream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for byte in HAND_MADE:
            self.wfile.write(b"1\r\n" + bytes([byte]) + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


def botocore_agrees(handler, body):
    """Signs the received request again with botocore at its own x-amz-date, over the
    headers it says it signed, and compares the signatures."""
    authorization = handler.headers["authorization"]
    scope = authorization.split("Credential=")[1].split(",")[0].split("/")
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    received = authorization.split("Signature=")[1]
    headers = {name: handler.headers[name] for name in signed}
    url = f"http://{handler.headers['host']}{handler.path}"
    request = botocore.awsrequest.AWSRequest(method="POST", url=url, data=body, headers=headers)
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(KEY_ID, SECRET), scope[3], scope[2])
    request.context["timestamp"] = handler.headers["x-amz-date"]
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return scope[2], expected == received


def test_sidecar_signs_as_botocore_does_and_decodes_frames_split_at_every_byte():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeBedrock)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proc, policy = start_sidecar(f"http://127.0.0.1:{server.server_port}")
    try:
        oa = openai.OpenAI(base_url=f"http://{proc.addrs[0]}/v1", api_key="sk-app-key", max_retries=0)
        stream = oa.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "hello"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "Hand-made"
        assert FakeBedrock.checks == [("eu-west-3", True)], "signed for the provider's region, as botocore signs"
    finally:
        server.shutdown()
        proc.stop()
        os.unlink(policy)
