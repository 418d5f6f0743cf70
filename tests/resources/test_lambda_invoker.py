"""Lambda invoker: the AWS path through botocore's Stubber, the local path for real."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from vidpipe_dagster.resources.lambda_invoker import (
    AwsLambdaInvoker,
    LambdaInvocationError,
    LocalLambdaInvoker,
    invoker_from_settings,
)
from vidpipe_dagster.settings import Settings

NAMES = {"video_merger": "merger-fn", "audio_mixer": "mixer-fn", "video_composer": "composer-fn"}
PAYLOAD = {
    "input_videos": ["s3://b/1.mp4", "s3://b/2.mp4"],
    "output_bucket": "b",
    "output_key": "k",
}


def _body(value: object) -> StreamingBody:
    raw = json.dumps(value).encode() if not isinstance(value, bytes) else value
    return StreamingBody(io.BytesIO(raw), len(raw))


@pytest.fixture
def stubbed() -> tuple[AwsLambdaInvoker, Stubber]:
    client = boto3.client(
        "lambda",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stubber = Stubber(client)
    stubber.activate()
    yield AwsLambdaInvoker(client=client, function_names=NAMES), stubber
    stubber.deactivate()


def _expect(stubber: Stubber, response: dict, function: str = "merger-fn") -> None:
    stubber.add_response(
        "invoke",
        response,
        expected_params={
            "FunctionName": function,
            "InvocationType": "RequestResponse",
            "Payload": ANY,
        },
    )


def test_success_returns_the_payload(stubbed) -> None:
    invoker, stubber = stubbed
    answer = {"s3_key": "k", "duration": 2.0, "size": 123, "statusCode": 200}
    _expect(stubber, {"StatusCode": 200, "Payload": _body(answer)})

    assert invoker.invoke("video_merger", PAYLOAD) == answer
    stubber.assert_no_pending_responses()


def test_payload_is_sent_as_json(stubbed) -> None:
    invoker, stubber = stubbed
    stubber.add_response(
        "invoke",
        {"StatusCode": 200, "Payload": _body({"s3_key": "k", "size": 1, "statusCode": 200})},
        expected_params={
            "FunctionName": "mixer-fn",
            "InvocationType": "RequestResponse",
            "Payload": json.dumps({"video": "s3://b/v.mp4"}).encode(),
        },
    )

    invoker.invoke("audio_mixer", {"video": "s3://b/v.mp4"})
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ({"StatusCode": 500, "Payload": _body({})}, "Lambda invocation failed with status 500"),
        (
            {"StatusCode": 200, "FunctionError": "Unhandled",
             "Payload": _body({"errorMessage": "Task timed out after 900.00 seconds",
                               "errorType": "Sandbox.Timedout"})},
            "Lambda function error: Task timed out after 900.00 seconds",
        ),
        (
            {"StatusCode": 200,
             "Payload": _body({"error": "At least 2 input videos required", "statusCode": 400})},
            "Lambda returned error: At least 2 input videos required",
        ),
        (
            {"StatusCode": 200, "Payload": _body({"statusCode": 500})},
            "Lambda returned error: statusCode 500",
        ),
    ],
)  # fmt: skip
def test_failures_map_to_the_seed_messages(stubbed, response: dict, message: str) -> None:
    invoker, stubber = stubbed
    _expect(stubber, response)

    with pytest.raises(LambdaInvocationError) as caught:
        invoker.invoke("video_merger", PAYLOAD)
    assert str(caught.value) == message


def test_client_error_is_an_aws_lambda_error(stubbed) -> None:
    invoker, stubber = stubbed
    stubber.add_client_error(
        "invoke",
        service_error_code="ResourceNotFoundException",
        service_message="Function not found: merger-fn",
        http_status_code=404,
    )

    with pytest.raises(LambdaInvocationError) as caught:
        invoker.invoke("video_merger", PAYLOAD)
    assert str(caught.value).startswith("AWS Lambda error: ")
    assert "ResourceNotFoundException" in str(caught.value)
    assert "Function not found: merger-fn" in str(caught.value)


def test_unknown_role(stubbed) -> None:
    invoker, _ = stubbed
    with pytest.raises(LambdaInvocationError, match="No Lambda function configured"):
        invoker.invoke("video_splitter", PAYLOAD)


def test_local_invoker_runs_the_real_handler(
    red_clip: Path, green_clip: Path, tmp_path: Path
) -> None:
    result = LocalLambdaInvoker().invoke(
        "video_merger",
        {
            "input_videos": [red_clip.as_uri(), green_clip.as_uri()],
            "output_bucket": tmp_path.as_uri(),
            "output_key": "m.mp4",
        },
    )

    assert result["statusCode"] == 200
    assert (tmp_path / "m.mp4").stat().st_size == result["size"]


def test_local_invoker_maps_errors() -> None:
    with pytest.raises(LambdaInvocationError) as caught:
        LocalLambdaInvoker().invoke("video_merger", {"input_videos": []})
    assert str(caught.value) == "Lambda returned error: At least 2 input videos required"

    def broken(event, context):
        raise RuntimeError("kaboom")

    with pytest.raises(LambdaInvocationError) as caught:
        LocalLambdaInvoker({"video_merger": broken}).invoke("video_merger", {})
    assert str(caught.value) == "Lambda function error: kaboom"


def test_invoker_from_settings() -> None:
    assert isinstance(invoker_from_settings(Settings()), LocalLambdaInvoker)

    aws = invoker_from_settings(
        Settings(lambda_mode="aws", lambda_video_merger="prod-merger", aws_region="eu-west-1")
    )
    assert isinstance(aws, AwsLambdaInvoker)
    assert aws.function_names["video_merger"] == "prod-merger"
    assert aws.function_names["audio_mixer"] == Settings().lambda_audio_mixer
    assert aws.client.meta.region_name == "eu-west-1"
    assert aws.client.meta.config.read_timeout > 900


@pytest.fixture
def fake_lambda(moto_s3: str, monkeypatch: pytest.MonkeyPatch):
    """The Lambda Invoke API on loopback running the real handlers; boto3 points at it."""
    from tests.fakes.lambda_service import FakeLambda

    with FakeLambda() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", server.url)
        yield server


def _aws_invoker() -> AwsLambdaInvoker:
    invoker = invoker_from_settings(Settings(lambda_mode="aws"))
    assert isinstance(invoker, AwsLambdaInvoker)
    return invoker


def test_boto3_invoke_runs_the_real_merger_on_s3(
    fake_lambda, s3_client, s3_bucket: str, red_clip: Path, green_clip: Path
) -> None:
    for name, clip in (("in/red.mp4", red_clip), ("in/green.mp4", green_clip)):
        s3_client.upload_file(str(clip), s3_bucket, name)

    result = _aws_invoker().invoke(
        "video_merger",
        {
            "input_videos": [f"s3://{s3_bucket}/in/red.mp4", f"s3://{s3_bucket}/in/green.mp4"],
            "output_bucket": s3_bucket,
            "output_key": "out/merged.mp4",
        },
    )

    assert result["statusCode"] == 200 and result["s3_key"] == "out/merged.mp4"
    stored = s3_client.head_object(Bucket=s3_bucket, Key="out/merged.mp4")
    assert stored["ContentLength"] == result["size"] > 0
    assert [name for name, _ in fake_lambda.invocations] == [Settings().lambda_video_merger]


def test_boto3_invoke_reports_a_handler_error_body(fake_lambda, s3_bucket: str) -> None:
    with pytest.raises(LambdaInvocationError) as caught:
        _aws_invoker().invoke("video_merger", {"input_videos": ["s3://x/1.mp4"]})
    assert str(caught.value) == "Lambda returned error: At least 2 input videos required"


def test_boto3_invoke_reports_an_unhandled_function_error(fake_lambda) -> None:
    def broken(event, context):
        raise MemoryError("Runtime exited with error: signal: killed")

    fake_lambda.functions[Settings().lambda_audio_mixer] = broken
    with pytest.raises(LambdaInvocationError) as caught:
        _aws_invoker().invoke("audio_mixer", {})
    assert str(caught.value) == ("Lambda function error: Runtime exited with error: signal: killed")


def test_boto3_invoke_of_a_function_that_is_not_deployed(fake_lambda) -> None:
    fake_lambda.functions.pop(Settings().lambda_video_composer)
    with pytest.raises(LambdaInvocationError) as caught:
        _aws_invoker().invoke("video_composer", {})
    assert str(caught.value).startswith("AWS Lambda error: An error occurred (ResourceNotFound")
