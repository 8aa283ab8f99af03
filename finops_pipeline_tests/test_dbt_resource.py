"""The dbt resource skips two of dagster-dbt's steps (asking `dbt --version`, opening an adapter in
Dagster's process) by overriding two of its members: these tests fail when an upgrade of
dagster-dbt renames them (the overrides would silently stop saving anything) or when the version
given no longer is the one the dbt executable reports."""

import inspect
import re
import subprocess
from functools import cached_property

from dagster_dbt import DbtCliResource
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

from finops_pipeline.defs.transform.assets import DBT_EXECUTABLE, FinopsDbtCliResource, dbt_resource


def test_the_version_given_is_the_one_the_dbt_executable_reports():
    reported = subprocess.run([DBT_EXECUTABLE, "--version"], capture_output=True, text=True, check=True).stdout
    installed = re.search(r"installed:\s*(\d+\.\d+\.\d+)", reported).group(1)
    assert str(dbt_resource()._cli_version) == installed


def test_the_overridden_members_are_still_dagster_dbts():
    assert isinstance(inspect.getattr_static(DbtCliResource, "_cli_version"), cached_property)
    original = inspect.signature(DbtCliResource._initialize_dbt_core_adapter)
    assert list(original.parameters) == list(inspect.signature(FinopsDbtCliResource._initialize_dbt_core_adapter).parameters)
    # The adapter serves only to fetch metadata; an invocation without one is dagster-dbt's default.
    assert DbtCliInvocation.__dataclass_fields__["adapter"].default is None
