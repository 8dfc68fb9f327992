"""Realistic, deterministic GitHub `workflow_run` and `workflow_job` payloads: test and bench load.

Shaped like GitHub's documented examples (`*_url` fields, `head_commit`, nullable fields present
as None): https://docs.github.com/en/webhooks/webhook-events-and-payloads#workflow_run
Keyword overrides set keys of the inner `workflow_run` / `workflow_job` object, after the
defaults for the action; change top-level keys (`repository`, `sender`, ...) on the result.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from common.envelope import Envelope

API = "https://api.github.com"
WEB = "https://github.com"

ORG_LOGIN = "octo-org"
ORG_ID = 79927191
REPO_NAME = "octo-repo"
REPO_FULL_NAME = f"{ORG_LOGIN}/{REPO_NAME}"
REPO_ID = 186853002
SENDER_LOGIN = "octocat"
SENDER_ID = 583231
ACTOR_LOGIN = "monalisa"
ACTOR_ID = 2853011

WORKFLOW_ID = 159038
WORKFLOW_NAME = "Build"
WORKFLOW_PATH = ".github/workflows/build.yml"
RUN_ID = 8179265011
RUN_NUMBER = 562
HEAD_SHA = "9f2c4d1e7b3a5c6d8e0f1a2b3c4d5e6f7a8b9c0d"
HEAD_BRANCH = "main"
CHECK_SUITE_ID = 21187339820

JOB_ID = 22364958377
JOB_NAME = "test"
RUNNER_ID = 7
RUNNER_NAME = "GitHub Actions 7"
RUNNER_GROUP_ID = 2
RUNNER_GROUP_NAME = "GitHub Actions"
LABELS = ("ubuntu-latest",)

# One run, start to finish (attempt 1): requested 10:00:00, done 10:04:30.
RUN_CREATED_AT = "2024-03-05T10:00:00Z"
RUN_IN_PROGRESS_AT = "2024-03-05T10:00:04Z"
RUN_UPDATED_AT = "2024-03-05T10:04:30Z"
# Its job: queued 10:00:02, picked up 10:00:10, done 10:02:40.
JOB_CREATED_AT = "2024-03-05T10:00:02Z"
JOB_STARTED_AT = "2024-03-05T10:00:10Z"
JOB_COMPLETED_AT = "2024-03-05T10:02:40Z"

DELIVERY_ID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
RECEIVED_AT = datetime(2024, 3, 5, 10, 5, 0, tzinfo=UTC)
EXPORTED_AT = datetime(2024, 3, 5, 10, 5, 2, tzinfo=UTC)


# `<name>_url` fields of an account and the path each adds to its API URL, as GitHub sends.
_ACCOUNT_URL_PATHS = (
    "followers=followers following=following{/other_user} gists=gists{/gist_id} "
    "starred=starred{/owner}{/repo} subscriptions=subscriptions organizations=orgs repos=repos "
    "events=events{/privacy} received_events=received_events"
)


def _pairs(table: str) -> list[list[str]]:
    return [entry.split("=", 1) for entry in table.split()]


def account(
    login: str = SENDER_LOGIN, account_id: int = SENDER_ID, kind: str = "User"
) -> dict[str, Any]:
    """Return a user or organization object as GitHub embeds it (`sender`, `actor`, `owner`)."""
    url = f"{API}/users/{login}"
    return {
        "login": login,
        "id": account_id,
        "node_id": f"MDQ6VXNlcn{account_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{account_id}?v=4",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{WEB}/{login}",
        **{f"{name}_url": f"{url}/{path}" for name, path in _pairs(_ACCOUNT_URL_PATHS)},
        "type": kind,
        "site_admin": False,
    }


_ORGANIZATION_URL_PATHS = (
    "repos=repos events=events hooks=hooks issues=issues members=members{/member} "
    "public_members=public_members{/member}"
)


def organization() -> dict[str, Any]:
    """Return the `organization` object of an organization webhook delivery."""
    url = f"{API}/orgs/{ORG_LOGIN}"
    return {
        "login": ORG_LOGIN,
        "id": ORG_ID,
        "node_id": "MDEyOk9yZ2FuaXphdGlvbjc5OTI3MTkx",
        "url": url,
        **{f"{name}_url": f"{url}/{path}" for name, path in _pairs(_ORGANIZATION_URL_PATHS)},
        "avatar_url": f"https://avatars.githubusercontent.com/u/{ORG_ID}?v=4",
        "description": "Octo Org's shared projects",
    }


# `<name>_url` fields of a repository and the path each adds to its API URL, as GitHub sends.
_REPOSITORY_URL_PATHS = (
    "forks=forks keys=keys{/key_id} collaborators=collaborators{/collaborator} teams=teams "
    "hooks=hooks issue_events=issues/events{/number} events=events assignees=assignees{/user} "
    "branches=branches{/branch} tags=tags blobs=git/blobs{/sha} git_tags=git/tags{/sha} "
    "git_refs=git/refs{/sha} trees=git/trees{/sha} statuses=statuses/{sha} "
    "languages=languages stargazers=stargazers contributors=contributors "
    "subscribers=subscribers subscription=subscription commits=commits{/sha} "
    "git_commits=git/commits{/sha} comments=comments{/number} "
    "issue_comment=issues/comments{/number} contents=contents/{+path} "
    "compare=compare/{base}...{head} merges=merges archive={archive_format}{/ref} "
    "downloads=downloads issues=issues{/number} pulls=pulls{/number} "
    "milestones=milestones{/number} notifications=notifications{?since,all,participating} "
    "labels=labels{/name} releases=releases{/id} deployments=deployments"
)


def _repository_urls(full_name: str) -> dict[str, Any]:
    url = f"{API}/repos/{full_name}"
    return {
        "html_url": f"{WEB}/{full_name}",
        "url": url,
        **{f"{name}_url": f"{url}/{path}" for name, path in _pairs(_REPOSITORY_URL_PATHS)},
    }


def minimal_repository() -> dict[str, Any]:
    """Return the short repository object GitHub nests inside `workflow_run`."""
    return {
        "id": REPO_ID,
        "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=",
        "name": REPO_NAME,
        "full_name": REPO_FULL_NAME,
        "private": True,
        "owner": account(ORG_LOGIN, ORG_ID, "Organization"),
        "description": None,
        "fork": False,
        **_repository_urls(REPO_FULL_NAME),
    }


def repository() -> dict[str, Any]:
    """Return the full top-level `repository` object of a delivery."""
    counts = dict(size=2048, stargazers_count=12, watchers_count=12, watchers=12, forks_count=1)
    flags = dict(has_issues=True, has_projects=True, has_downloads=True, has_wiki=False)
    more_flags = dict(has_pages=False, has_discussions=False, archived=False, disabled=False)
    settings = dict(allow_forking=False, is_template=False, web_commit_signoff_required=False)
    return {
        **minimal_repository(),
        "created_at": "2019-05-15T15:19:25Z",
        "updated_at": "2024-02-28T09:12:41Z",
        "pushed_at": "2024-03-05T09:59:57Z",
        "git_url": f"git://github.com/{REPO_FULL_NAME}.git",
        "ssh_url": f"git@github.com:{REPO_FULL_NAME}.git",
        "clone_url": f"{WEB}/{REPO_FULL_NAME}.git",
        "svn_url": f"{WEB}/{REPO_FULL_NAME}",
        **dict(homepage=None, mirror_url=None, license=None, language="Python"),
        **counts,
        **flags,
        **more_flags,
        **settings,
        **dict(forks=1, open_issues=3, open_issues_count=3, topics=[], custom_properties={}),
        **dict(visibility="private", default_branch="main"),
    }


def _workflow() -> dict[str, Any]:
    return {
        "id": WORKFLOW_ID,
        "node_id": "MDg6V29ya2Zsb3cxNTkwMzg=",
        "name": WORKFLOW_NAME,
        "path": WORKFLOW_PATH,
        "state": "active",
        "created_at": "2021-12-15T20:11:38.000Z",
        "updated_at": "2023-11-02T14:47:05.000Z",
        "url": f"{API}/repos/{REPO_FULL_NAME}/actions/workflows/{WORKFLOW_ID}",
        "html_url": f"{WEB}/{REPO_FULL_NAME}/blob/main/{WORKFLOW_PATH}",
        "badge_url": f"{WEB}/{REPO_FULL_NAME}/workflows/{WORKFLOW_NAME}/badge.svg",
    }


def pull_request(number: int = 1347, pr_id: int = 1761309830) -> dict[str, Any]:
    """Return one entry of `workflow_run.pull_requests`."""
    repo = {"id": REPO_ID, "url": f"{API}/repos/{REPO_FULL_NAME}", "name": REPO_NAME}
    return {
        "url": f"{API}/repos/{REPO_FULL_NAME}/pulls/{number}",
        "id": pr_id,
        "number": number,
        "head": {"ref": "feature/faster-tests", "sha": HEAD_SHA, "repo": repo},
        "base": {"ref": "main", "sha": "0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d0", "repo": repo},
    }


_RUN_STATES: dict[str, dict[str, Any]] = {
    "requested": {"status": "queued", "conclusion": None, "updated_at": RUN_CREATED_AT},
    "in_progress": {"status": "in_progress", "conclusion": None, "updated_at": RUN_IN_PROGRESS_AT},
    "completed": {"status": "completed", "conclusion": "success", "updated_at": RUN_UPDATED_AT},
}


def workflow_run_payload(action: str = "completed", **overrides: Any) -> dict[str, Any]:
    """Return a `workflow_run` delivery for `action`; overrides set keys of `workflow_run`."""
    run_url = f"{API}/repos/{REPO_FULL_NAME}/actions/runs/{RUN_ID}"
    run: dict[str, Any] = {
        "id": RUN_ID,
        "name": WORKFLOW_NAME,
        "node_id": "WFR_kwLOCyNdis4A-9_z",
        "head_branch": HEAD_BRANCH,
        "head_sha": HEAD_SHA,
        "path": WORKFLOW_PATH,
        "display_title": "Speed up the test matrix",
        "run_number": RUN_NUMBER,
        "event": "push",
        "status": "completed",
        "conclusion": "success",
        "workflow_id": WORKFLOW_ID,
        "check_suite_id": CHECK_SUITE_ID,
        "check_suite_node_id": "CS_kwDOCyNdis8AAAAE7uQS7A",
        "url": run_url,
        "html_url": f"{WEB}/{REPO_FULL_NAME}/actions/runs/{RUN_ID}",
        "pull_requests": [],
        "created_at": RUN_CREATED_AT,
        "updated_at": RUN_UPDATED_AT,
        "actor": account(ACTOR_LOGIN, ACTOR_ID),
        "run_attempt": 1,
        "referenced_workflows": [],
        "run_started_at": RUN_CREATED_AT,
        "triggering_actor": account(ACTOR_LOGIN, ACTOR_ID),
        "jobs_url": f"{run_url}/jobs",
        "logs_url": f"{run_url}/logs",
        "check_suite_url": f"{API}/repos/{REPO_FULL_NAME}/check-suites/{CHECK_SUITE_ID}",
        "artifacts_url": f"{run_url}/artifacts",
        "cancel_url": f"{run_url}/cancel",
        "rerun_url": f"{run_url}/rerun",
        "previous_attempt_url": None,
        "workflow_url": f"{API}/repos/{REPO_FULL_NAME}/actions/workflows/{WORKFLOW_ID}",
        "head_commit": {
            "id": HEAD_SHA,
            "tree_id": "4c1f2e3d5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0e",
            "message": "Speed up the test matrix\n\nRun the slow suite only on main.",
            "timestamp": "2024-03-05T09:59:41Z",
            "author": {"name": "Mona Lisa", "email": "mona@example.com"},
            "committer": {"name": "GitHub", "email": "noreply@github.com"},
        },
        "repository": minimal_repository(),
        "head_repository": minimal_repository(),
    }
    run.update(_RUN_STATES.get(action, {}))
    run.update(copy.deepcopy(overrides))
    return {
        "action": action,
        "workflow_run": run,
        "workflow": _workflow(),
        "repository": repository(),
        "organization": organization(),
        "sender": account(),
    }


_STEP_KEYS = ("name", "status", "conclusion", "number", "started_at", "completed_at")


def step(
    number: int,
    name: str,
    started_at: str | None,
    completed_at: str | None,
    conclusion: str | None = "success",
    status: str = "completed",
) -> dict[str, Any]:
    """Return one entry of `workflow_job.steps`."""
    values = (name, status, conclusion, number, started_at, completed_at)
    return dict(zip(_STEP_KEYS, values, strict=True))


def completed_steps() -> list[dict[str, Any]]:
    """Return the steps of the default successful job (GitHub writes them with fractions)."""
    return [
        step(1, "Set up job", "2024-03-05T10:00:11.000Z", "2024-03-05T10:00:13.000Z"),
        step(2, "Run actions/checkout@v4", "2024-03-05T10:00:13.000Z", "2024-03-05T10:00:15.000Z"),
        step(3, "Run tests", "2024-03-05T10:00:15.000Z", "2024-03-05T10:02:35.000Z"),
        step(4, "Complete job", "2024-03-05T10:02:35.000Z", "2024-03-05T10:02:40.000Z"),
    ]


def in_progress_steps() -> list[dict[str, Any]]:
    """Return the steps of the default job while it runs: one done, one running, two queued."""
    return [
        step(1, "Set up job", "2024-03-05T10:00:11.000Z", "2024-03-05T10:00:13.000Z"),
        step(2, "Run actions/checkout@v4", "2024-03-05T10:00:13.000Z", None, None, "in_progress"),
        step(3, "Run tests", None, None, conclusion=None, status="queued"),
        step(4, "Complete job", None, None, conclusion=None, status="queued"),
    ]


_RUNNER_KEYS = ("runner_id", "runner_name", "runner_group_id", "runner_group_name")
_NO_RUNNER: dict[str, Any] = dict.fromkeys(_RUNNER_KEYS)

# GitHub already fills `started_at` (with `created_at`) while a job waits for a runner.
_NOT_STARTED: dict[str, Any] = {
    "conclusion": None,
    "started_at": JOB_CREATED_AT,
    "completed_at": None,
    **_NO_RUNNER,
}
_JOB_STATES: dict[str, dict[str, Any]] = {
    "queued": {"status": "queued", **_NOT_STARTED},
    "waiting": {"status": "waiting", **_NOT_STARTED},
    "in_progress": {"status": "in_progress", "conclusion": None, "completed_at": None},
    "completed": {"status": "completed", "conclusion": "success"},
}


_DEFAULT_STEPS = {"completed": completed_steps, "in_progress": in_progress_steps}


def workflow_job_payload(
    action: str = "completed", steps: list[dict[str, Any]] | None = None, **overrides: Any
) -> dict[str, Any]:
    """Return a `workflow_job` delivery for `action`; overrides set keys of `workflow_job`.

    `steps=None` gives the steps GitHub would send for the action (none while queued).
    """
    job_url = f"{API}/repos/{REPO_FULL_NAME}/actions/jobs/{JOB_ID}"
    job: dict[str, Any] = {
        "id": JOB_ID,
        "run_id": RUN_ID,
        "workflow_name": WORKFLOW_NAME,
        "head_branch": HEAD_BRANCH,
        "run_url": f"{API}/repos/{REPO_FULL_NAME}/actions/runs/{RUN_ID}",
        "run_attempt": 1,
        "node_id": "CR_kwDOCyNdis8AAAAFNQIlqQ",
        "head_sha": HEAD_SHA,
        "url": job_url,
        "html_url": f"{WEB}/{REPO_FULL_NAME}/actions/runs/{RUN_ID}/job/{JOB_ID}",
        "status": "completed",
        "conclusion": "success",
        "created_at": JOB_CREATED_AT,
        "started_at": JOB_STARTED_AT,
        "completed_at": JOB_COMPLETED_AT,
        "name": JOB_NAME,
        "steps": [],
        "check_run_url": f"{API}/repos/{REPO_FULL_NAME}/check-runs/{JOB_ID}",
        "labels": list(LABELS),
        "runner_id": RUNNER_ID,
        "runner_name": RUNNER_NAME,
        "runner_group_id": RUNNER_GROUP_ID,
        "runner_group_name": RUNNER_GROUP_NAME,
    }
    job.update(_JOB_STATES.get(action, {}))
    job["steps"] = copy.deepcopy(steps) if steps is not None else _DEFAULT_STEPS.get(action, list)()
    job.update(copy.deepcopy(overrides))
    return {
        "action": action,
        "workflow_job": job,
        "repository": repository(),
        "organization": organization(),
        "sender": account(),
    }


def envelope_for(
    payload: dict[str, Any],
    event: str | None = None,
    delivery_id: str = DELIVERY_ID,
    received_at: datetime = RECEIVED_AT,
) -> Envelope:
    """Wrap a payload in a queue envelope; the event is inferred from the payload's keys."""
    if event is None:
        event = "workflow_job" if "workflow_job" in payload else "workflow_run"
    return Envelope(
        delivery_id=delivery_id,
        event=event,
        action=str(payload.get("action", "")),
        received_at=received_at,
        payload=payload,
        hook_id="470102145",
        installation_target_type="organization",
        installation_target_id=str(ORG_ID),
    )
