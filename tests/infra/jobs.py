"""What the templates must say about the optional recovery jobs and the workbook.

Like `rules.py`, each check reads pycep-parser's tree and returns readable problems. Variables
are followed (`env`, `secrets`, ...), and a conditional value counts as each of its branches.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from tests.infra.bicep import INFRA, accessor, declared, function_call, parse

JOBS_FILE = "modules/jobs.bicep"
JOB_COMMANDS = {
    "recover": ["python", "-m", "backend.recover"],
    "backfill": ["python", "-m", "backend.backfill"],
}
# The backend's storage and ingestion settings, on its own identity.
JOB_ENV = {
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_QUEUE_NAME",
    "LEDGER_TABLE_NAME",
    "AZURE_CLIENT_ID",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
GITHUB_SECRETS = ("githubToken", "githubAppPrivateKey")
WORKBOOK_MIN_API = "2022-04-01"
WORKBOOK_FILE = INFRA / "workbook" / "github-telemetry.workbook.json"


def alternatives(value: Any, variables: dict[str, Any]) -> list[Any]:
    """Every concrete value `value` may take: variables followed, both branches of a ?:."""
    if isinstance(value, str) and value in variables:
        return alternatives(variables[value], variables)
    if isinstance(value, dict) and value.get("operator", {}).get("type") == "conditional":
        operands = value["operator"]["operands"]
        return [
            *alternatives(operands["true_value"], variables),
            *alternatives(operands["false_value"], variables),
        ]
    concat = function_call(value, "concat")
    if concat is not None:
        parts = [alternatives(part, variables) for part in concat.values()]
        return [sum((list(p) for p in combo), []) for combo in itertools.product(*parts)]
    return [value]


def _secure(parameters: dict[str, Any], name: str) -> bool:
    decorators = (parameters.get(name) or {}).get("decorators", [])
    return any(d["type"] == "secure" for d in decorators)


def _switch(main: dict[str, Any]) -> list[str]:
    problems = []
    enable = (main.get("parameters") or {}).get("enableRecoveryJobs") or {}
    if enable.get("type") != "bool" or enable.get("default") is not False:
        problems.append("main.bicep: enableRecoveryJobs is not a bool parameter off by default")
    modules = [m for m in (main.get("modules") or {}).values() if m["detail"]["path"] == JOBS_FILE]
    if not modules or any(m["config"].get("condition") != "enableRecoveryJobs" for m in modules):
        problems.append("main.bicep: the jobs module is deployed regardless of enableRecoveryJobs")
    return problems


def _job(name: str, body: dict[str, Any], tree: dict[str, Any]) -> list[str]:
    problems = []
    variables = {key: v["value"] for key, v in (tree.get("variables") or {}).items()}
    parameters = tree.get("parameters") or {}
    configuration = body["properties"]["configuration"]
    trigger = configuration.get("scheduleTriggerConfig") or {}
    if configuration.get("triggerType") != "Schedule" or (
        trigger.get("parallelism"),
        trigger.get("replicaCompletionCount"),
    ) != (1, 1):
        problems.append(f"{name} job: not one scheduled execution at a time")
    schedule = parameters.get(str(trigger.get("cronExpression"))) or {}
    if not schedule.get("default"):
        problems.append(f"{name} job: its schedule is not a parameter with a default")
    [container] = body["properties"]["template"]["containers"]
    if (
        container.get("command") != JOB_COMMANDS[name]
        or str(container.get("args")) not in parameters
    ):
        problems.append(f"{name} job: not `{' '.join(JOB_COMMANDS[name])}` with parameter args")
    for identity in alternatives(body.get("identity"), variables):
        if list(identity.get("userAssignedIdentities", {})) != ["'${identityId}'"]:
            problems.append(f"{name} job: not on the backend's user-assigned identity")
    for registries in alternatives(configuration.get("registries"), variables):
        if not registries or any(r.get("identity") != "identityId" for r in registries):
            problems.append(f"{name} job: images are not pulled with the backend's identity")
    for env in alternatives(container.get("env"), variables):
        by_name = {item["name"]: item for item in env}
        problems += [f"{name} job lacks {var}" for var in sorted(JOB_ENV - set(by_name))]
        auth = str(by_name.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", {}).get("value"))
        if auth != "Authorization=AAD;ClientId=${identityClientId}":
            problems.append(f"{name} job: ingestion is not Entra ID with the backend's client id")
        if "GITHUB_TOKEN" in by_name and "secretRef" not in by_name["GITHUB_TOKEN"]:
            problems.append(f"{name} job: GITHUB_TOKEN is not a secret reference")
        if not {"GITHUB_TOKEN", "GITHUB_APP_PRIVATE_KEY_FILE"} & set(by_name):
            problems.append(f"{name} job: no GitHub credential")
    for secrets in alternatives(configuration.get("secrets"), variables):
        for secret in secrets:
            if not _secure(parameters, str(secret.get("value"))):
                problems.append(
                    f"{name} job: secret {secret.get('name')} is no @secure() parameter"
                )
    return problems


def recovery_jobs(root: Path) -> list[str]:
    """Optional (off by default) scheduled jobs, one execution at a time, secrets kept secret."""
    main = parse(root / "main.bicep")
    tree = parse(root / JOBS_FILE)
    problems = _switch(main)
    for secret in GITHUB_SECRETS:
        for where, parameters in (("main.bicep", main), (JOBS_FILE, tree)):
            if not _secure(parameters.get("parameters") or {}, secret):
                problems.append(f"{where}: {secret} is not @secure()")
    jobs = {}
    for job in declared(root, "Microsoft.App/jobs"):
        jobs[job.body["properties"]["template"]["containers"][0]["name"]] = job
    if set(jobs) != set(JOB_COMMANDS):
        problems.append(f"jobs are {sorted(jobs)}, not {sorted(JOB_COMMANDS)}")
    for name in sorted(set(jobs) & set(JOB_COMMANDS)):
        problems += _job(name, jobs[name].body, parse(root / jobs[name].file))
    return problems


def workbook(root: Path) -> list[str]:
    """The workbook: shared, named by a fixed GUID, on App Insights, with the checked JSON."""
    problems = []
    found = declared(root, "Microsoft.Insights/workbooks")
    if len(found) != 1:
        return [f"{len(found)} workbooks declared, 1 needed"]
    [resource] = found
    body, properties = resource.body, resource.body.get("properties", {})
    if resource.api_version < WORKBOOK_MIN_API:
        problems.append(f"workbook API {resource.api_version} is older than {WORKBOOK_MIN_API}")
    name = function_call(body.get("name"), "guid") or {}
    group = accessor(name.get("base_string"))
    if group is None or name.get("extra_string_1") != "github-telemetry-workbook":
        problems.append(
            "workbook name is not guid(resourceGroup().id, 'github-telemetry-workbook')"
        )
    wanted = {"kind": body.get("kind"), "category": properties.get("category")}
    if wanted != {"kind": "shared", "category": "workbook"}:
        problems.append(f"workbook kind and category are {wanted}")
    if not properties.get("sourceId") or not properties.get("displayName"):
        problems.append("workbook has no sourceId or displayName")
    load = function_call(properties.get("serializedData"), "load_text_content") or {}
    path = (root / Path(resource.file).parent / str(load.get("file_path"))).resolve()
    if not load or path.name != WORKBOOK_FILE.name or not path.is_file():
        problems.append("workbook's serializedData is not loadTextContent of the workbook JSON")
    return problems
