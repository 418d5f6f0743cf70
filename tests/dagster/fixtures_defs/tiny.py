"""A two-asset code location for the code-server tests, with vidpipe's snapshot memo."""

import dagster as dg

from vidpipe_dagster.orchestration import code_server

code_server.install()


@dg.asset
def upstream() -> None: ...


@dg.asset(deps=[upstream], automation_condition=dg.AutomationCondition.eager())
def downstream() -> None: ...


defs = dg.Definitions(assets=[upstream, downstream])
