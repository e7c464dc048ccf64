"""The deployable template: built as `make package` builds it, linted, and read.

Each stage is packaged once per session by tools/package.py, in a copy of the
project without requirements.txt: the template does not depend on the Lambda
dependencies, so nothing is downloaded and neither network nor AWS
credentials are needed. The tests then read the template for what issue 7
asks: a clean cfn-lint, the table's protections, least-privilege IAM per
function, the schedules and SES events wired as app.py declares them,
throttling and gateway responses.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tools import local_stack
from tools import package as packaging

pytestmark = pytest.mark.slow

ROOT = local_stack.ROOT
STAGES = ("dev", "prod")
SES_EVENT_TYPES = {"send", "delivery", "bounce", "complaint", "reject", "deliveryDelay"}
DAILY = re.compile(r"^cron\(\d{1,2} \d{1,2} \* \* \? \*\)$")
# What Lambda's event source mapping needs of the stream consumer's role.
STREAM_READING = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
}
# What each scheduled job is meant to run on (issues 3 and 6), once it exists.
INTENDED_SCHEDULES = {
    "chase_overdue": "daily",
    "purge_expired": "daily",
    "retry_queued": "every few minutes",
}


@dataclass(frozen=True)
class Built:
    stage: str
    path: Path
    template: dict[str, Any]
    env: dict[str, str]
    config: dict[str, Any]
    infra: dict[str, Any]

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.template["Resources"]
        return resources

    def of_type(self, kind: str) -> dict[str, Any]:
        return {name: res for name, res in self.resources.items() if res["Type"] == kind}


@pytest.fixture(scope="module", params=STAGES)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    stage: str = request.param
    project = tmp_path_factory.mktemp(f"package-{stage}")
    for name in ("app.py", "chalicelib", "vendor", "infra"):
        (project / name).symlink_to(ROOT / name)
    shutil.copytree(
        ROOT / ".chalice", project / ".chalice", ignore=shutil.ignore_patterns("deployments")
    )
    path = packaging.package(stage, project / "dist", project_dir=project, lint=False)
    return Built(
        stage=stage,
        path=path,
        template=json.loads(path.read_text()),
        env=local_stack.stage_environment(stage),
        config=json.loads((ROOT / ".chalice" / "config.json").read_text()),
        infra=json.loads((ROOT / "infra" / "stages.json").read_text())[stage],
    )


@pytest.fixture(scope="module")
def chalice_app() -> Any:
    from app import app

    return app


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(built: Built) -> Iterator[tuple[str, dict[str, Any]]]:
    for role_id, role in built.of_type("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield role_id, statement


def _role_of(function: dict[str, Any]) -> str:
    role = function["Properties"]["Role"]
    assert set(role) == {"Fn::GetAtt"}, f"function role is not one of the stack's roles: {role}"
    return str(role["Fn::GetAtt"][0])


def _expected_arns(built: Built) -> dict[str, set[str]]:
    table = built.env["TABLE_NAME"]
    sender = built.env["SENDER_EMAIL"]
    domain = sender.rpartition("@")[2]
    return {
        "dynamodb": {
            f"arn:aws:dynamodb:*:*:table/{table}",
            f"arn:aws:dynamodb:*:*:table/{table}/index/*",
            f"arn:aws:dynamodb:*:*:table/{table}/stream/*",
        },
        "ses": {
            f"arn:aws:ses:*:*:identity/{domain}",
            f"arn:aws:ses:*:*:identity/{sender}",
            f"arn:aws:ses:*:*:configuration-set/{built.env['SES_CONFIGURATION_SET']}",
        },
        # The signing secret, and the human-check secret a stage may enable.
        "ssm": {
            f"arn:aws:ssm:*:*:parameter{built.env['SIGNING_SECRET_PARAM']}",
            f"arn:aws:ssm:*:*:parameter/takeback/{built.stage}/captcha-secret",
        },
    }


def test_cfn_lint_is_clean(built: Built) -> None:
    assert packaging.lint_template(built.path) == ""


def test_table_is_protected_and_on_demand(built: Built) -> None:
    tables = built.of_type("AWS::DynamoDB::Table")
    assert list(tables) == ["Table"]
    table = tables["Table"]
    props = table["Properties"]
    assert props["TableName"] == built.env["TABLE_NAME"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    prod = built.stage == "prod"
    assert props["DeletionProtectionEnabled"] is prod
    assert (
        table["DeletionPolicy"] == table["UpdateReplacePolicy"] == ("Retain" if prod else "Delete")
    )


def test_table_has_the_keys_and_every_index_of_table_json(built: Built) -> None:
    definition = json.loads((ROOT / "infra" / "table.json").read_text())
    props = built.resources["Table"]["Properties"]
    assert props["KeySchema"] == definition["KeySchema"]
    defined = {(a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]}
    assert defined == {
        (a["AttributeName"], a["AttributeType"]) for a in definition["AttributeDefinitions"]
    }
    indexes = {index["IndexName"]: index for index in props.get("GlobalSecondaryIndexes", [])}
    for index in definition.get("GlobalSecondaryIndexes", []):
        assert index["IndexName"] in indexes, f"index {index['IndexName']} missing"
        deployed = indexes[index["IndexName"]]
        assert deployed["KeySchema"] == index["KeySchema"]
        assert deployed["Projection"] == index["Projection"]
    assert len(indexes) == len(definition.get("GlobalSecondaryIndexes", []))


def test_no_wildcard_actions_or_resources(built: Built) -> None:
    for role_id, statement in _statements(built):
        for action in _list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{role_id}: {action}"
            assert "*" not in action, f"{role_id}: wildcard action {action}"
        for resource in _list(statement["Resource"]):
            assert resource != "*", f"{role_id}: resource * for {statement['Action']}"
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement


def test_dynamodb_ses_and_ssm_only_on_the_stages_own_resources(built: Built) -> None:
    expected = _expected_arns(built)
    for role_id, statement in _statements(built):
        services = {action.partition(":")[0] for action in _list(statement["Action"])}
        assert len(services) == 1, f"{role_id}: one service per statement, got {services}"
        service = services.pop()
        if service not in expected:
            continue
        resources = set(_list(statement["Resource"]))
        assert resources <= expected[service], f"{role_id}: {resources - expected[service]}"


def test_index_actions_only_on_indexes(built: Built) -> None:
    table = built.env["TABLE_NAME"]
    for role_id, statement in _statements(built):
        actions = set(_list(statement["Action"]))
        if not any(action.startswith("dynamodb:") for action in actions):
            continue
        for resource in _list(statement["Resource"]):
            if resource.endswith("/index/*"):
                assert actions <= {"dynamodb:Query"}, f"{role_id}: {actions} on indexes"
            elif resource.endswith("/stream/*"):
                # Lambda reads the stream for the stream consumer, and only for it.
                assert actions == STREAM_READING, f"{role_id}: {actions} on the stream"
                assert role_id.startswith("SendStored"), f"{role_id} may read the stream"
            else:
                assert not actions & STREAM_READING, f"{role_id}: stream actions on {resource}"
                assert resource.endswith(f":table/{table}")
                # Only the API reads the whole table: GET /admin/stats (IAM-only).
                if "dynamodb:Scan" in actions:
                    assert role_id.startswith("ApiHandler"), f"{role_id} may Scan the table"


def test_sending_mail_requires_the_stages_sender_address(built: Built) -> None:
    sends = 0
    for role_id, statement in _statements(built):
        if not any(action.startswith("ses:") for action in _list(statement["Action"])):
            continue
        sends += 1
        assert statement.get("Condition") == {
            "StringEquals": {"ses:FromAddress": built.env["SENDER_EMAIL"]}
        }, f"{role_id}: ses statement without the ses:FromAddress condition"
    assert sends, "no function may send mail"


def test_every_function_has_its_own_role_and_policy_file(built: Built) -> None:
    functions = packaging.functions(built.template)
    assert "APIHandler" in functions
    roles = {logical_id: _role_of(function) for logical_id, function in functions.items()}
    assert len(set(roles.values())) == len(roles), f"functions share a role: {roles}"
    configured = built.config["stages"][built.stage].get("lambda_functions", {})
    for logical_id, function in functions.items():
        name = packaging.function_name(function)
        role = built.resources[roles[logical_id]]
        policies = role["Properties"]["Policies"]
        assert len(policies) == 1 and policies[0]["PolicyDocument"]["Statement"]
        policy_file = configured.get(name, {}).get("iam_policy_file")
        assert policy_file, (
            f"{name} has no iam_policy_file under stages.{built.stage}.lambda_functions"
            " in .chalice/config.json, so it would get the stage's shared policy"
        )
        wanted = json.loads((ROOT / ".chalice" / policy_file).read_text())
        assert policies[0]["PolicyDocument"] == wanted


def test_each_function_logs_to_its_own_retained_log_group(built: Built) -> None:
    for logical_id, function in packaging.functions(built.template).items():
        name = packaging.function_name(function)
        group_ref = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        group = built.resources[group_ref]["Properties"]
        expected_name = f"/aws/lambda/{built.config['app_name']}-{built.stage}-{name}"
        assert group["LogGroupName"] == expected_name
        assert group["RetentionInDays"] == built.infra["log_retention_days"]
        role = built.resources[_role_of(function)]
        logs = [
            statement
            for policy in role["Properties"]["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]
            if any(action.startswith("logs:") for action in _list(statement["Action"]))
        ]
        assert logs, f"{logical_id} cannot write its logs"
        for statement in logs:
            assert set(_list(statement["Action"])) <= {"logs:CreateLogStream", "logs:PutLogEvents"}
            assert _list(statement["Resource"]) == [f"arn:aws:logs:*:*:log-group:{expected_name}:*"]


def _template_schedules(built: Built) -> dict[str, str]:
    schedules = {}
    for function in packaging.functions(built.template).values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "Schedule":
                schedules[packaging.function_name(function)] = event["Properties"]["Schedule"]
    return schedules


def test_schedules_are_the_ones_app_py_declares(built: Built, chalice_app: Any) -> None:
    from chalice.app import ScheduledEventConfig

    declared = {}
    for source in chalice_app.event_sources:
        if isinstance(source, ScheduledEventConfig):
            expression = source.schedule_expression
            declared[source.name] = (
                expression if isinstance(expression, str) else expression.to_string()
            )
    assert _template_schedules(built) == declared


def test_schedules_run_when_intended(built: Built) -> None:
    for name, expression in _template_schedules(built).items():
        intended = INTENDED_SCHEDULES.get(name)
        if intended == "daily":
            assert DAILY.match(expression), f"{name} should run once a day: {expression}"
        elif intended == "every few minutes":
            match = re.fullmatch(r"rate\((\d+) minutes?\)", expression)
            assert match and int(match.group(1)) <= 15, f"{name}: {expression}"


def test_ses_events_reach_the_events_function(built: Built, chalice_app: Any) -> None:
    from chalice.app import SNSEventConfig

    configuration_set = built.resources["SesConfigurationSet"]["Properties"]
    assert configuration_set["Name"] == built.env["SES_CONFIGURATION_SET"]
    topic = built.resources["SesEventsTopic"]["Properties"]
    assert topic["TopicName"] == f"{built.config['app_name']}-{built.stage}-ses-events"
    destination = built.resources["SesEventDestination"]["Properties"]
    assert destination["ConfigurationSetName"] == {"Ref": "SesConfigurationSet"}
    events = destination["EventDestination"]
    assert events["Enabled"] is True
    assert set(events["MatchingEventTypes"]) == SES_EVENT_TYPES
    assert events["SnsDestination"] == {"TopicARN": {"Ref": "SesEventsTopic"}}
    publish = built.resources["SesEventsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Principal"] for s in publish] == [{"Service": "ses.amazonaws.com"}]
    assert all("AWS:SourceArn" in s["Condition"]["StringEquals"] for s in publish)

    handlers = {s.name for s in chalice_app.event_sources if isinstance(s, SNSEventConfig)}
    subscribed = set()
    for function in packaging.functions(built.template).values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "SNS":
                assert event["Properties"]["Topic"] == {"Fn::Sub": "${SesEventsTopic}"}
                subscribed.add(packaging.function_name(function))
    assert subscribed == handlers


def test_the_stream_consumer_reads_this_stages_table_for_new_and_verified_requests(
    built: Built, chalice_app: Any
) -> None:
    from chalice.app import DynamoDBEventConfig

    table = built.resources["Table"]["Properties"]
    # New images only: an old image would keep a forgotten supporter's data.
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    handlers = {s.name for s in chalice_app.event_sources if isinstance(s, DynamoDBEventConfig)}
    sources = {}
    for function in packaging.functions(built.template).values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "DynamoDB":
                sources[packaging.function_name(function)] = event["Properties"]
    assert set(sources) == handlers == {"send_stored"}
    source = sources["send_stored"]
    assert source["Stream"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert source["StartingPosition"] == "TRIM_HORIZON"
    assert source["MaximumRetryAttempts"] > 0 and source["BisectBatchOnFunctionError"] is True
    patterns = [json.loads(f["Pattern"]) for f in source["FilterCriteria"]["Filters"]]
    assert patterns == [
        {
            "eventName": ["INSERT"],
            "dynamodb": {
                "NewImage": {
                    "record_type": {"S": ["request"]},
                    "status": {"S": ["pending_verification"]},
                }
            },
        },
        {
            "eventName": ["MODIFY"],
            "dynamodb": {
                "NewImage": {
                    "record_type": {"S": ["request"]},
                    "status": {"S": ["queued"]},
                    "send_attempts": {"N": ["0"]},
                }
            },
        },
    ]
    [function] = [
        f
        for f in packaging.functions(built.template).values()
        if packaging.function_name(f) == "send_stored"
    ]
    # Room for a batch of 10 letters at the stage's SES rate.
    assert function["Properties"]["Timeout"] >= 120
    assert built.env["SEND_MODE"] == "stream"


def test_api_stage_is_throttled(built: Built) -> None:
    settings = built.resources["RestAPI"]["Properties"]["MethodSettings"]
    everything = [s for s in settings if s["ResourcePath"] == "/*" and s["HttpMethod"] == "*"]
    assert len(everything) == 1
    assert everything[0]["ThrottlingRateLimit"] == built.infra["throttling_rate_limit"] > 0
    assert everything[0]["ThrottlingBurstLimit"] == built.infra["throttling_burst_limit"] > 0


def test_gateway_errors_carry_cors_headers(built: Built) -> None:
    origin = built.env["ALLOWED_ORIGINS"].split(",")[0].strip()
    responses = built.resources["RestAPI"]["Properties"]["GatewayResponses"]
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX", "THROTTLED"):
        headers = responses[kind]["ResponseParameters"]["Headers"]
        assert headers["Access-Control-Allow-Origin"] == f"'{origin}'"
        assert headers["Vary"] == "'Origin'"


def test_no_secret_in_the_template(built: Built) -> None:
    assert not built.of_type("AWS::SSM::Parameter")
    assert not built.of_type("AWS::SecretsManager::Secret")
    for function in packaging.functions(built.template).values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["SIGNING_SECRET_PARAM"] == built.env["SIGNING_SECRET_PARAM"]
        assert not any("SECRET" in key and key != "SIGNING_SECRET_PARAM" for key in variables)


def test_sam_transform_builds_the_stage_subscription_and_responses(built: Built) -> None:
    """What CloudFormation's own SAM transform makes of the template."""
    samtranslator = pytest.importorskip("samtranslator.translator.transform")
    template = copy.deepcopy(built.template)
    for function in packaging.functions(template).values():
        function["Properties"]["CodeUri"] = "s3://bucket/deployment.zip"  # as after upload

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", local_stack.REGION)
        output = samtranslator.transform(template, {}, NoManagedPolicies())
    resources = output["Resources"]
    stages = [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage"]
    assert len(stages) == 1
    assert stages[0]["Properties"]["MethodSettings"][0]["ThrottlingRateLimit"] > 0
    body = resources["RestAPI"]["Properties"]["Body"]
    assert {"DEFAULT_4XX", "DEFAULT_5XX"} <= set(body["x-amazon-apigateway-gateway-responses"])
    for resource in resources.values():
        if resource["Type"] == "AWS::SNS::Subscription":
            assert resource["Properties"]["TopicArn"] == {"Fn::Sub": "${SesEventsTopic}"}
    [mapping] = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert len(mapping["Properties"]["FilterCriteria"]["Filters"]) == 2
