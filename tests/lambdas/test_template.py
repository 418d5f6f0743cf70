"""The SAM template lints clean and deploys the handlers this package defines."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

import lambdas
from vidpipe_dagster.settings import Settings

TEMPLATE = Path(lambdas.__file__).parent / "template.yaml"


def _load() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    def tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> object:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)

    Loader.add_multi_constructor("!", tag)
    return yaml.load(TEMPLATE.read_text(), Loader=Loader)


def test_template_passes_cfn_lint() -> None:
    from cfnlint.api import lint_file

    assert [str(match) for match in lint_file(TEMPLATE)] == []


def test_every_function_points_at_a_real_handler_and_fits_long_renders() -> None:
    template = _load()
    functions = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    globals_ = template["Globals"]["Function"]

    assert len(functions) == 3
    assert globals_["Timeout"] == 900
    assert globals_["MemorySize"] >= 3008
    assert globals_["EphemeralStorage"]["Size"] >= 10240
    names = set()
    for resource in functions.values():
        module_name, _, attribute = resource["Properties"]["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module_name), attribute))
        names.add(
            resource["Properties"]["FunctionName"].replace("${FunctionNamePrefix}", "vidpipe")
        )
        assert any(
            "S3CrudPolicy" in policy
            for policy in resource["Properties"]["Policies"]
            if isinstance(policy, dict)
        )
    settings = Settings()
    assert names == {
        settings.lambda_video_merger,
        settings.lambda_audio_mixer,
        settings.lambda_video_composer,
    }
