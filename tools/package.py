"""The deployable CloudFormation (SAM) template for a stage, checked.

    python manage.py package --stage prod --out dist/prod

``chalice package`` writes the API, the functions, one IAM role per function
(from the hand-written policy files named in .chalice/config.json), the
schedules and the SNS subscription from app.py's decorators. Everything else
the campaign needs is merged into that template with ``--merge-template``. The
merge template is generated here, at package time, from:

- ``infra/table.json``: the table's keys and indexes (the local stack creates
  its table from the same file, so the two cannot drift);
- ``infra/resources.json``: the table's settings, the SES configuration set
  and its SNS event destination, API throttling and gateway responses, with
  ``{{placeholders}}`` filled from the stage's settings;
- ``infra/stages.json``: per-stage infrastructure settings (deletion
  protection, log retention, throttling);
- the functions Chalice generates: each gets a log group with retention and
  writes its logs there, so its policy can name that one log group.

Chalice runs twice: a plain run shows which functions it generates and under
which logical ids, then the real run merges the template built from that.
Dependencies are built once (Chalice caches them in .chalice/deployments/).
The result is checked with cfn-lint unless ``lint=False``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tools.local_stack import REGION, ROOT, stage_environment

TEMPLATE_NAME = "sam.json"
SES_EVENTS_SUFFIX = "ses-events"
LINT_REGIONS = ("ca-central-1", "us-east-1")

# The parts of a CreateTable definition that CloudFormation takes as they are.
_TABLE_KEYS = ("AttributeDefinitions", "KeySchema")
_INDEX_KEYS = ("IndexName", "KeySchema", "Projection", "OnDemandThroughput")


class PackageError(RuntimeError):
    """Packaging or linting failed; the message says why."""


def package(stage: str, out: Path, *, project_dir: Path = ROOT, lint: bool = True) -> Path:
    """Write ``out/sam.json`` and ``out/deployment.zip`` for ``stage``.

    Returns the template's path. Needs no AWS credentials; building the
    dependencies needs pip to reach its package index unless Chalice's
    cache in .chalice/deployments/ is current.
    """
    out = Path(out).resolve()
    project_dir = Path(project_dir).resolve()
    context = stage_context(stage, project_dir)
    with tempfile.TemporaryDirectory(prefix="takeback-package-") as scratch:
        plain = Path(scratch) / "plain"
        _chalice_package(project_dir, stage, plain)
        chalice_template = json.loads((plain / TEMPLATE_NAME).read_text())
        merge = merge_template(chalice_template, context, project_dir / "infra")
        merge_file = Path(scratch) / "merge.json"
        merge_file.write_text(json.dumps(merge, indent=2))
        _chalice_package(project_dir, stage, out, merge_file)
    template = out / TEMPLATE_NAME
    if lint:
        problems = lint_template(template)
        if problems:
            raise PackageError(f"cfn-lint found problems in {template}:\n{problems}")
    return template


def stage_context(stage: str, project_dir: Path = ROOT) -> dict[str, Any]:
    """The values the infra/ templates are filled with, validated.

    The stage's application settings are checked as the Lambda will check
    them, so a bad setting stops packaging with the setting's name.
    """
    from chalicelib.settings import load

    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    if stage not in config.get("stages", {}):
        raise PackageError(f"stage {stage!r} is not in .chalice/config.json")
    stages = json.loads((project_dir / "infra" / "stages.json").read_text())
    if stage not in stages:
        raise PackageError(f"stage {stage!r} has no entry in infra/stages.json")
    infra: dict[str, Any] = stages[stage]
    settings = load(stage_environment(stage, project_dir))
    if not settings.ses_configuration_set:
        raise PackageError(
            f"SES_CONFIGURATION_SET is not set for stage {stage!r}: a deployed stage needs"
            " it for delivery, bounce and complaint events"
        )
    if not settings.allowed_origins:
        raise PackageError(f"ALLOWED_ORIGINS is empty for stage {stage!r}")
    app_name = str(config["app_name"])
    protected = bool(infra["deletion_protection"])
    return {
        "stage": stage,
        "app_name": app_name,
        "table_name": settings.table_name,
        "configuration_set": settings.ses_configuration_set,
        "ses_events_topic": f"{app_name}-{stage}-{SES_EVENTS_SUFFIX}",
        "deletion_protection": protected,
        "deletion_policy": "Retain" if protected else "Delete",
        "log_retention_days": int(infra["log_retention_days"]),
        "throttling_rate_limit": infra["throttling_rate_limit"],
        "throttling_burst_limit": infra["throttling_burst_limit"],
        # Gateway responses carry one fixed origin: the first allowed one.
        "gateway_cors_origin": settings.allowed_origins[0],
    }


def merge_template(
    chalice_template: dict[str, Any], context: dict[str, Any], infra_dir: Path
) -> dict[str, Any]:
    """The template merged into Chalice's, for the functions it generated."""
    merge: dict[str, Any] = fill(json.loads((infra_dir / "resources.json").read_text()), context)
    generated = chalice_template.get("Resources", {})
    resources: dict[str, Any] = merge.setdefault("Resources", {})
    for logical_id, resource in resources.items():
        if "Type" not in resource and logical_id not in generated:
            raise PackageError(
                f"infra/resources.json patches {logical_id}, which chalice package did not"
                f" generate (it generated: {', '.join(sorted(generated))})"
            )
    table = resources["Table"]["Properties"]
    table.update(table_properties(json.loads((infra_dir / "table.json").read_text())))
    for logical_id, function in functions(chalice_template).items():
        name = function_name(function)
        log_group = f"{logical_id}LogGroup"
        resources[log_group] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": log_group_name(context, name),
                "RetentionInDays": context["log_retention_days"],
            },
        }
        patch: dict[str, Any] = {"LoggingConfig": {"LogGroup": {"Ref": log_group}}}
        events = _ses_event_subscriptions(function)
        if events:
            # Whatever topic name the decorator carries, the deployed
            # function listens to this stage's topic, created above.
            patch["Events"] = {
                event: {"Properties": {"Topic": {"Fn::Sub": "${SesEventsTopic}"}}}
                for event in events
            }
        streams = _events_of_type(function, "DynamoDB")
        if streams:
            patch["Events"] = {event: {"Properties": stream_source()} for event in streams}
        resources.setdefault(logical_id, {}).setdefault("Properties", {}).update(patch)
    return merge


def fill(value: Any, context: dict[str, Any]) -> Any:
    """Replace ``{{name}}`` placeholders; a lone placeholder keeps its type."""
    if isinstance(value, dict):
        return {key: fill(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, context) for item in value]
    if not isinstance(value, str) or "{{" not in value:
        return value
    stripped = value.strip()
    if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
        return _lookup(stripped[2:-2], context)
    result = value
    while "{{" in result:
        start = result.index("{{")
        end = result.index("}}", start)
        result = result[:start] + str(_lookup(result[start + 2 : end], context)) + result[end + 2 :]
    return result


def _lookup(name: str, context: dict[str, Any]) -> Any:
    name = name.strip()
    if name not in context:
        raise PackageError(f"infra template placeholder {{{{{name}}}}} has no value")
    return context[name]


def table_properties(definition: dict[str, Any]) -> dict[str, Any]:
    """Keys and indexes of a CreateTable definition (infra/table.json)."""
    properties = {key: definition[key] for key in _TABLE_KEYS}
    stream = definition.get("StreamSpecification")
    if stream and stream.get("StreamEnabled"):
        # CloudFormation enables the stream by naming its view type.
        properties["StreamSpecification"] = {"StreamViewType": stream["StreamViewType"]}
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        indexes = definition.get(kind)
        if indexes:
            properties[kind] = [
                {key: index[key] for key in _INDEX_KEYS if key in index} for index in indexes
            ]
    return properties


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every Lambda function in a Chalice template, by logical id."""
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")
    }


def function_name(function: dict[str, Any]) -> str:
    """Chalice's name for a function: ``api_handler`` or the Python name.

    These are the names ``lambda_functions`` in .chalice/config.json uses.
    """
    handler = str(function["Properties"]["Handler"])
    python_name = handler.rpartition(".")[2]
    return "api_handler" if handler == "app.app" else python_name


def log_group_name(context: dict[str, Any], name: str) -> str:
    return f"/aws/lambda/{context['app_name']}-{context['stage']}-{name}"


def stream_source() -> dict[str, Any]:
    """The event source mapping of the stream consumer (``send_stored``).

    The decorator's ARN is a placeholder: the function reads this stage's
    table's stream, and only the writes it sends on reach it.
    """
    from chalicelib import journey

    return {
        "Stream": {"Fn::GetAtt": ["Table", "StreamArn"]},
        "FilterCriteria": {"Filters": [{"Pattern": t.pattern()} for t in journey.STREAMED]},
        # A failing batch is split to find the record at fault, retried a
        # few times, then left to the retry job, which sends whatever is
        # still queued after its safety net (5 minutes).
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": 3,
        "MaximumRecordAgeInSeconds": 3600,
    }


def _events_of_type(function: dict[str, Any], kind: str) -> list[str]:
    events = function["Properties"].get("Events", {})
    return [name for name, event in events.items() if event.get("Type") == kind]


def _ses_event_subscriptions(function: dict[str, Any]) -> list[str]:
    names = []
    for event_name, event in function["Properties"].get("Events", {}).items():
        if event.get("Type") != "SNS":
            continue
        topic = event.get("Properties", {}).get("Topic")
        text = topic.get("Fn::Sub", "") if isinstance(topic, dict) else str(topic)
        if isinstance(text, str) and text.rpartition(":")[2].endswith(SES_EVENTS_SUFFIX):
            names.append(event_name)
    return names


def _chalice_package(
    project_dir: Path, stage: str, out: Path, merge_file: Path | None = None
) -> None:
    args = [
        sys.executable,
        "-c",
        "import sys; from chalice.cli import main; sys.exit(main())",
        "--project-dir",
        str(project_dir),
        "package",
        "--stage",
        stage,
        "--pkg-format",
        "cloudformation",
        "--template-format",
        "json",
    ]
    if merge_file is not None:
        args += ["--merge-template", str(merge_file)]
    args.append(str(out))
    result = subprocess.run(
        args, cwd=project_dir, env=_environment(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not (out / TEMPLATE_NAME).is_file():
        raise PackageError(
            f"chalice package --stage {stage} failed (exit {result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )


def _environment() -> dict[str, str]:
    """The caller's environment, with a region if none is configured.

    Chalice wants a region but the template does not depend on it (ARNs use
    ``${AWS::Region}``); no credentials are needed.
    """
    import botocore.session

    env = dict(os.environ)
    if not botocore.session.Session().get_config_variable("region"):
        env["AWS_DEFAULT_REGION"] = REGION
    return env


def lint_template(template: Path) -> str:
    """cfn-lint's findings for a template: empty when it is clean."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cfnlint.runner import main; sys.exit(main())",
            "--regions",
            *LINT_REGIONS,
            "--",
            str(template),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0:
        return ""
    return (result.stdout + result.stderr).strip() or f"cfn-lint exited {result.returncode}"
