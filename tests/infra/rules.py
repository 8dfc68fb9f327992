"""What the templates must say, as checks that return the problems they find.

Each check reads pycep-parser's tree of the templates under a root (`infra/`, or a broken copy
in a test) and returns readable problems; an empty list means the rule holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.infra.bicep import Resource, accessor, declared, function_call, parse, resources

CONTAINER_APPS_MIN_API = "2025-01-01"  # the first GA version with `identity` on scale rules

# Built-in roles. https://learn.microsoft.com/en-us/azure/role-based-access-control/built-in-roles
QUEUE_SENDER = "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a"
QUEUE_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
TABLE_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"

# Each grant as (scope's resource type, scope's name, principal parameter, role).
QUEUE = "Microsoft.Storage/storageAccounts/queueServices/queues"
TABLE = "Microsoft.Storage/storageAccounts/tableServices/tables"
FRONTEND, BACKEND = "frontendPrincipalId", "backendPrincipalId"
EXPECTED_GRANTS = {
    (QUEUE, "queueName", FRONTEND, QUEUE_SENDER),
    (QUEUE, "queueName", BACKEND, QUEUE_CONTRIBUTOR),
    (QUEUE, "${queueName}-poison", BACKEND, QUEUE_CONTRIBUTOR),
    (TABLE, "ledgerTableName", BACKEND, TABLE_CONTRIBUTOR),
    ("Microsoft.Insights/components", "appInsightsName", BACKEND, METRICS_PUBLISHER),
    ("Microsoft.ContainerRegistry/registries", "registryName", FRONTEND, ACR_PULL),
    ("Microsoft.ContainerRegistry/registries", "registryName", BACKEND, ACR_PULL),
    ("Microsoft.KeyVault/vaults/secrets", "keyVaultSecretName", FRONTEND, KEY_VAULT_SECRETS_USER),
}

# Resource types the deployment creates, and how many of each.
REQUIRED = {
    "Microsoft.OperationalInsights/workspaces": 1,
    "Microsoft.Insights/components": 1,
    "Microsoft.Storage/storageAccounts": 1,
    "Microsoft.Storage/storageAccounts/queueServices/queues": 2,
    "Microsoft.Storage/storageAccounts/tableServices/tables": 1,
    "Microsoft.ContainerRegistry/registries": 1,
    "Microsoft.App/managedEnvironments": 1,
    "Microsoft.App/containerApps": 2,
    "Microsoft.ManagedIdentity/userAssignedIdentities": 2,
    "Microsoft.Insights/workbooks": 1,
    "Microsoft.App/jobs": 2,  # declared, deployed only with enableRecoveryJobs
}

FRONTEND_ENV = {
    "GITHUB_WEBHOOK_SECRET",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_QUEUE_NAME",
    "AZURE_CLIENT_ID",
}
BACKEND_ENV = {
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_QUEUE_NAME",
    "AZURE_CLIENT_ID",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}


def api_versions(root: Path) -> list[str]:
    """Container Apps on an API that has identity-based scale rules; no preview API for apps."""
    problems = []
    for resource in resources(root):
        if resource.type.startswith("Microsoft.App/") and (
            resource.api_version < CONTAINER_APPS_MIN_API or "preview" in resource.api_version
        ):
            problems.append(
                f"{resource.file} {resource.symbol}: {resource.type}@{resource.api_version}"
            )
    return problems


def required_resources(root: Path) -> list[str]:
    """Every resource the issue names is declared, as many times as needed."""
    counts = {kind: len(declared(root, kind)) for kind in REQUIRED}
    return [
        f"{kind}: {counts[kind]} declared, {n} needed"
        for kind, n in REQUIRED.items()
        if counts[kind] < n
    ]


def keyless(root: Path) -> list[str]:
    """Storage refuses shared keys and old TLS; App Insights refuses key-based ingestion."""
    problems = []
    for account in declared(root, "Microsoft.Storage/storageAccounts"):
        properties = account.body.get("properties", {})
        wanted = {
            "allowSharedKeyAccess": False,
            "minimumTlsVersion": "TLS1_2",
            "supportsHttpsTrafficOnly": True,
        }
        for name, value in wanted.items():
            if properties.get(name) != value:
                problems.append(f"storage {name} is {properties.get(name)!r}")
    for component in declared(root, "Microsoft.Insights/components"):
        properties = component.body.get("properties", {})
        if properties.get("DisableLocalAuth") is not True:
            problems.append("Application Insights accepts local (key-based) ingestion")
        if not properties.get("WorkspaceResourceId"):
            problems.append("Application Insights is not workspace-based")
    return problems


def _grant(
    assignment: Resource, by_symbol: dict[str, Resource], roles: dict[str, str]
) -> tuple[str, ...] | str:
    body = assignment.body
    properties = body.get("properties", {})
    scope = by_symbol.get(str(body.get("scope")))
    role_call = function_call(properties.get("roleDefinitionId"), "subscription_resource_id") or {}
    role_ref = accessor(role_call.get("resource_name_1"))
    role = roles.get(role_ref[1]) if role_ref else None
    name = function_call(body.get("name"), "guid") or {}
    if scope is None or role is None:
        return f"{assignment.symbol}: scope or role not resolved"
    if properties.get("principalType") != "ServicePrincipal":
        return f"{assignment.symbol}: principalType is not ServicePrincipal"
    expected_name = ((scope.symbol, "id"), properties.get("principalId"), role_ref)
    parts = (name.get("base_string"), name.get("extra_string_1"), name.get("extra_string_2"))
    if (accessor(parts[0]), parts[1], accessor(parts[2])) != expected_name:
        return f"{assignment.symbol}: name is not guid(scope.id, principal, role)"
    return (scope.type, str(scope.body.get("name")), str(properties.get("principalId")), role)


def role_assignments(root: Path) -> list[str]:
    """Exactly the expected grants, each on its narrowest scope, each named deterministically."""
    problems: list[str] = []
    grants = set()
    for path in sorted(root.rglob("*.bicep")):
        tree = parse(path)
        role_table = (tree.get("variables") or {}).get("roles", {}).get("value") or {}
        roles = {key: str(value) for key, value in role_table.items()}
        in_file = [r for r in resources(root) if r.file == str(path.relative_to(root))]
        by_symbol = {r.symbol: r for r in in_file}
        for assignment in in_file:
            if assignment.type != "Microsoft.Authorization/roleAssignments":
                continue
            grant = _grant(assignment, by_symbol, roles)
            if isinstance(grant, str):
                problems.append(grant)
            else:
                grants.add(grant)
    problems += [f"missing grant {grant}" for grant in sorted(EXPECTED_GRANTS - grants)]
    problems += [f"unexpected grant {grant}" for grant in sorted(grants - EXPECTED_GRANTS)]
    return problems


def app(root: Path, container: str) -> Resource:
    """The container app whose container is named `container`."""
    for candidate in declared(root, "Microsoft.App/containerApps"):
        containers = candidate.body["properties"]["template"]["containers"]
        if any(c.get("name") == container for c in containers):
            return candidate
    raise LookupError(f"no container app runs {container!r}")


def _parameter(root: Path, file: str, name: str) -> dict[str, Any]:
    return dict((parse(root / file).get("parameters") or {}).get(name) or {})


def _min_value(parameter: dict[str, Any]) -> Any:
    decorators = parameter.get("decorators", [])
    return next((d.get("argument") for d in decorators if d["type"] == "min_value"), None)


def _env(resource: Resource) -> dict[str, dict[str, Any]]:
    container = resource.body["properties"]["template"]["containers"][0]
    return {item["name"]: item for item in container.get("env", [])}


def frontend_app(root: Path) -> list[str]:
    """External HTTPS ingress, at least one replica, an HTTP rule, probes on /health and /ready."""
    problems = []
    frontend = app(root, "frontend")
    properties = frontend.body["properties"]
    ingress = properties["configuration"].get("ingress") or {}
    if ingress.get("external") is not True or ingress.get("allowInsecure") is not False:
        problems.append("frontend ingress must be external and HTTPS only")
    scale = properties["template"]["scale"]
    minimum = _parameter(root, frontend.file, str(scale.get("minReplicas")))
    in_main = _parameter(root, "main.bicep", "frontendMinReplicas")
    for where, parameter in ((frontend.file, minimum), ("main.bicep", in_main)):
        floor = _min_value(parameter)
        if not (isinstance(floor, int) and floor >= 1 and parameter.get("default", 0) >= 1):
            problems.append(f"{where}: frontend min replicas may be below 1")
    if not any("http" in rule for rule in scale.get("rules", [])):
        problems.append("frontend has no HTTP scale rule")
    probes = properties["template"]["containers"][0].get("probes", [])
    paths = {probe.get("type"): probe.get("httpGet", {}).get("path") for probe in probes}
    wanted = {"Startup": "/health", "Liveness": "/health", "Readiness": "/ready"}
    if paths != wanted:
        problems.append(f"frontend probes are {paths}, not {wanted}")
    missing = FRONTEND_ENV - set(_env(frontend))
    problems += [f"frontend lacks {name}" for name in sorted(missing)]
    secret = _env(frontend).get("GITHUB_WEBHOOK_SECRET", {})
    if "secretRef" not in secret or "value" in secret:
        problems.append("frontend's GITHUB_WEBHOOK_SECRET is not a secret reference")
    return problems


def backend_app(root: Path) -> list[str]:
    """No ingress; KEDA's queue rule on the backend's identity; min replicas and grace set."""
    problems = []
    backend = app(root, "backend")
    properties = backend.body["properties"]
    if properties["configuration"].get("ingress"):
        problems.append("backend must have no ingress")
    template = properties["template"]
    rules = [
        rule["azureQueue"] for rule in template["scale"].get("rules", []) if "azureQueue" in rule
    ]
    if not rules or any(not rule.get("identity") or not rule.get("accountName") for rule in rules):
        problems.append("backend's queue scale rule lacks identity or accountName")
    if not _parameter(root, backend.file, str(template["scale"].get("minReplicas"))):
        problems.append("backend min replicas is not a parameter")
    grace = _parameter(root, backend.file, str(template.get("terminationGracePeriodSeconds")))
    if grace.get("default", 0) < 60:
        problems.append("backend termination grace period does not cover a batch")
    env = _env(backend)
    problems += [f"backend lacks {name}" for name in sorted(BACKEND_ENV - set(env))]
    auth = str(env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", {}).get("value", ""))
    if not auth.startswith("Authorization=AAD;ClientId=${"):
        problems.append("backend's ingestion is not Entra ID with its own client id")
    for resource in (backend, app(root, "frontend")):
        registries = resource.body["properties"]["configuration"].get("registries", [])
        if not registries or any(not r.get("identity") for r in registries):
            problems.append(f"{resource.file}: images are not pulled with a managed identity")
    return problems


def secrets_stay_secret(root: Path) -> list[str]:
    """The webhook secret is a @secure() parameter and no output carries a secure parameter."""
    problems = []
    for path in sorted(root.rglob("*.bicep")):
        tree = parse(path)
        parameters = tree.get("parameters") or {}
        secure = {
            name
            for name, parameter in parameters.items()
            if any(d["type"] == "secure" for d in parameter["decorators"])
        }
        if "webhookSecret" in parameters and "webhookSecret" not in secure:
            problems.append(f"{path.name}: webhookSecret is not @secure()")
        outputs = json.dumps(tree.get("outputs") or {})
        problems += [
            f"{path.name}: an output uses {name}" for name in sorted(secure) if name in outputs
        ]
    if not any(
        "webhookSecret" in (parse(p).get("parameters") or {}) for p in root.rglob("main.bicep")
    ):
        problems.append("main.bicep has no webhookSecret parameter")
    return problems
