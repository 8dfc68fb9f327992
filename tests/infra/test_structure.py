"""The templates declare what the deployment needs, checked on pycep-parser's tree.

Each rule holds on `infra/`, and each fails on a copy broken the way a careless edit would.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.infra import jobs, rules
from tests.infra.bicep import INFRA, broken_copy

RULES: list[Callable[[Path], list[str]]] = [
    rules.api_versions,
    rules.required_resources,
    rules.keyless,
    rules.role_assignments,
    rules.frontend_app,
    rules.backend_app,
    rules.secrets_stay_secret,
    jobs.recovery_jobs,
    jobs.workbook,
]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_the_templates_follow_the_rule(rule: Callable[[Path], list[str]]) -> None:
    assert rule(INFRA) == []


# (rule, file, text, replacement, a fragment of the problem reported)
BREAKAGES = [
    (
        rules.api_versions,
        "modules/backend.bicep",
        "containerApps@2025-01-01",
        "containerApps@2024-03-01",
        "2024-03-01",
    ),
    (
        rules.required_resources,
        "modules/storage.bicep",
        "resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@",
        "resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices@",
        "queues: 1 declared",
    ),
    (
        rules.keyless,
        "modules/storage.bicep",
        "allowSharedKeyAccess: false",
        "allowSharedKeyAccess: true",
        "allowSharedKeyAccess",
    ),
    (
        rules.keyless,
        "modules/monitoring.bicep",
        "DisableLocalAuth: true",
        "DisableLocalAuth: false",
        "local",
    ),
    (
        rules.role_assignments,
        "modules/roles.bicep",
        "scope: poisonQueue",
        "scope: account",
        "missing grant",
    ),
    (
        rules.role_assignments,
        "modules/roles.bicep",
        "guid(ledgerTable.id, backendPrincipalId",
        "guid(account.id, backendPrincipalId",
        "guid(scope.id",
    ),
    (
        rules.role_assignments,
        "modules/roles.bicep",
        "principalId: frontendPrincipalId\n    principalType: 'ServicePrincipal'",
        "principalId: frontendPrincipalId\n    principalType: 'User'",
        "principalType",
    ),
    (
        rules.role_assignments,
        "modules/roles.bicep",
        "roles.queueMessageSender)\n",
        "roles.queueDataContributor)\n",
        "missing grant",
    ),
    (
        rules.frontend_app,
        "modules/frontend.bicep",
        "@minValue(1)\nparam minReplicas int = 1",
        "@minValue(0)\nparam minReplicas int = 1",
        "min replicas",
    ),
    (
        rules.frontend_app,
        "main.bicep",
        "@minValue(1)\nparam frontendMinReplicas int = 1",
        "param frontendMinReplicas int = 0",
        "main.bicep: frontend min replicas",
    ),
    (rules.frontend_app, "modules/frontend.bicep", "path: '/ready'", "path: '/health'", "probes"),
    (
        rules.frontend_app,
        "modules/frontend.bicep",
        "allowInsecure: false",
        "allowInsecure: true",
        "HTTPS only",
    ),
    (
        rules.frontend_app,
        "modules/frontend.bicep",
        "secretRef: 'webhook-secret'",
        "value: webhookSecret",
        "secret reference",
    ),
    (
        rules.backend_app,
        "modules/backend.bicep",
        "              identity: identityId\n",
        "\n",
        "identity or accountName",
    ),
    (
        rules.backend_app,
        "modules/backend.bicep",
        "accountName: storageAccountName",
        "queueLength: 1",
        "identity or accountName",
    ),
    (
        rules.backend_app,
        "modules/backend.bicep",
        "terminationGracePeriodSeconds int = 120",
        "terminationGracePeriodSeconds int = 10",
        "grace",
    ),
    (
        rules.backend_app,
        "modules/backend.bicep",
        "value: 'Authorization=AAD;ClientId=${identityClientId}'",
        "value: 'Authorization=AAD'",
        "Entra ID",
    ),
    (
        rules.secrets_stay_secret,
        "modules/frontend.bicep",
        "@secure()\nparam webhookSecret",
        "param webhookSecret",
        "not @secure()",
    ),
    (
        rules.secrets_stay_secret,
        "main.bicep",
        "output WEBHOOK_URL string = ",
        "output LEAK string = webhookSecret\noutput WEBHOOK_URL string = ",
        "an output uses webhookSecret",
    ),
    (
        rules.required_resources,
        "modules/workbook.bicep",
        "'Microsoft.Insights/workbooks@",
        "'Microsoft.Insights/components@",
        "workbooks: 0 declared",
    ),
    (
        jobs.workbook,
        "modules/workbook.bicep",
        "guid(resourceGroup().id, 'github-telemetry-workbook')",
        "guid(resourceGroup().id, deployment().name)",
        "workbook name",
    ),
    (jobs.workbook, "modules/workbook.bicep", "kind: 'shared'", "kind: 'user'", "kind"),
    (
        jobs.workbook,
        "modules/workbook.bicep",
        "loadTextContent('../workbook/github-telemetry.workbook.json')",
        "loadTextContent('../workbook/other.json')",
        "serializedData",
    ),
    (
        jobs.workbook,
        "modules/workbook.bicep",
        "sourceId: appInsightsId",
        "sourceId: ''",
        "sourceId",
    ),
    (
        jobs.recovery_jobs,
        "main.bicep",
        "param enableRecoveryJobs bool = false",
        "param enableRecoveryJobs bool = true",
        "off by default",
    ),
    (
        jobs.recovery_jobs,
        "main.bicep",
        "module jobs 'modules/jobs.bicep' = if (enableRecoveryJobs) {",
        "module jobs 'modules/jobs.bicep' = {",
        "regardless of enableRecoveryJobs",
    ),
    (jobs.recovery_jobs, "modules/jobs.bicep", "parallelism: 1", "parallelism: 3", "one scheduled"),
    (
        jobs.recovery_jobs,
        "modules/jobs.bicep",
        "{ name: 'GITHUB_TOKEN', secretRef: 'github-token' }",
        "{ name: 'GITHUB_TOKEN', value: githubToken }",
        "GITHUB_TOKEN is not a secret reference",
    ),
    (
        jobs.recovery_jobs,
        "modules/jobs.bicep",
        "@secure()\nparam githubAppPrivateKey",
        "param githubAppPrivateKey",
        "githubAppPrivateKey is not @secure()",
    ),
    (
        jobs.recovery_jobs,
        "modules/jobs.bicep",
        "value: 'Authorization=AAD;ClientId=${identityClientId}'",
        "value: 'Authorization=AAD'",
        "Entra ID",
    ),
    (
        jobs.recovery_jobs,
        "modules/jobs.bicep",
        "command: ['python', '-m', 'backend.backfill']",
        "command: ['python', '-m', 'backend']",
        "backfill job: not",
    ),
    (
        rules.secrets_stay_secret,
        "main.bicep",
        "output WEBHOOK_URL string = ",
        "output LEAK string = githubToken\noutput WEBHOOK_URL string = ",
        "an output uses githubToken",
    ),
]


@pytest.mark.parametrize(
    ("rule", "file", "old", "new", "problem"),
    BREAKAGES,
    ids=[f"{rule.__name__}-{index}" for index, (rule, *_) in enumerate(BREAKAGES)],
)
def test_a_broken_copy_fails_the_rule(
    tmp_path: Path,
    rule: Callable[[Path], list[str]],
    file: str,
    old: str,
    new: str,
    problem: str,
) -> None:
    broken = broken_copy(tmp_path, file, old, new)

    assert any(problem in found for found in rule(broken)), rule(broken)
