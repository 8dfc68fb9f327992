"""A GitHub REST client on githubkit: the credential, the rate-limit budget, and one error type.

githubkit brings the App's JWT and installation tokens, `Link`-header pagination and every
endpoint the commands call; this module only picks the credential for a target, waits when
the hourly budget runs low, and turns every failure into `GitHubError` with a readable message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import httpx
import jwt
from githubkit import AppAuthStrategy, GitHub, Response, TokenAuthStrategy
from githubkit.exception import (
    AuthCredentialError,
    GitHubException,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
)
from githubkit.rest.paginator import Paginator
from githubkit.retry import RetryRateLimit, RetryServerError
from githubkit.typing import RetryOption

from backend.github.settings import GitHubSettings

log = logging.getLogger(__name__)

# A secondary limit (403/429 with `retry-after`) or the primary one (remaining 0) is waited out
# and the call tried again, this many times.
# https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
MAX_RATE_LIMIT_RETRIES = 3
MAX_SERVER_ERROR_RETRIES = 2
TIMEOUT_S = 30.0
# The REST API version both github.com and GitHub Enterprise Server 3.9+ serve.
# https://docs.github.com/en/rest/about-the-rest-api/api-versions
API_VERSION: Final = "2022-11-28"
PAGE_SIZE = 100

Kind = Literal["repo", "org", "app"]


class GitHubError(Exception):
    """A GitHub call failed; the message says which credential, permission or object.

    `status` is GitHub's HTTP status when it answered, else None.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Target:
    """Whose API the command calls: a repository, an organization, or the App itself."""

    kind: Kind
    owner: str = ""
    name: str = ""

    def __str__(self) -> str:
        if self.kind == "repo":
            return f"repository {self.owner}/{self.name}"
        return f"organization {self.owner}" if self.kind == "org" else "the GitHub App"


class RateBudget:
    """Counts calls and, when fewer than `reserve` are left this hour, waits for the reset.

    Fed by every response's `x-ratelimit-remaining` and `x-ratelimit-reset` headers.
    """

    def __init__(
        self,
        reserve: int,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.reserve = reserve
        self.calls = 0
        self.remaining: int | None = None
        self.reset_at: float | None = None
        self._sleep = sleep
        self._clock = clock

    def before(self, _request: httpx.Request) -> None:
        """Wait for the reset if the budget is spent down to the reserve."""
        if self.remaining is None or self.reset_at is None or self.remaining > self.reserve:
            return
        wait_s = self.reset_at - self._clock() + 1
        if wait_s > 0:
            log.warning(
                "%d GitHub API calls left: waiting %.0f s for the reset", self.remaining, wait_s
            )
            self._sleep(wait_s)
        self.remaining = None

    def after(self, response: httpx.Response) -> None:
        """Count the call and note what GitHub says is left."""
        self.calls += 1
        remaining = response.headers.get("x-ratelimit-remaining")
        reset = response.headers.get("x-ratelimit-reset")
        if remaining is not None and remaining.isdigit():
            self.remaining = int(remaining)
        if reset is not None and reset.isdigit():
            self.reset_at = float(reset)


class _Retry:
    """githubkit's retry decisions, with a log line for each wait."""

    def __init__(self) -> None:
        self._rate = RetryRateLimit(MAX_RATE_LIMIT_RETRIES)
        self._server = RetryServerError(MAX_SERVER_ERROR_RETRIES)

    def __call__(self, error: GitHubException, count: int) -> RetryOption:
        option = self._rate(error, count)
        if not option.do_retry:
            option = self._server(error, count)
        if option.do_retry and isinstance(error, RequestFailed):
            wait = option.retry_after or timedelta(seconds=60)
            log.warning(
                "GitHub answered %d to %s %s: retrying in %.0f s",
                error.response.status_code,
                error.request.method,
                error.request.url.path,
                wait.total_seconds(),
            )
        return option


class GitHubApi:
    """The commands' view of GitHub: JSON in, JSON out, `GitHubError` on any failure."""

    def __init__(self, github: GitHub[Any], settings: GitHubSettings, budget: RateBudget) -> None:
        self.github = github
        self.rest = github.rest(API_VERSION)
        self.budget = budget
        self._settings = settings

    def json(self, request: Callable[..., Response[Any, Any]], *args: Any, **kwargs: Any) -> Any:
        """Call one endpoint and return its JSON body."""
        return self._guard(lambda: request(*args, **kwargs).json())

    def send(self, request: Callable[..., Response[Any, Any]], *args: Any) -> None:
        """Call one endpoint for its effect (a 202 whose body says nothing)."""
        self._guard(lambda: request(*args))

    def items(
        self,
        request: Callable[..., Response[Any, Any]],
        key: str | None,
        *args: Any,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """Every item of a paginated list, page by page along the `Link` header.

        `key` names the list in an object body (`workflow_runs`, `jobs`); None for a bare list.
        """

        def page_items(response: Response[Any, Any]) -> list[Any]:
            body = response.json()
            found = body if key is None else body.get(key, [])
            return list(found) if isinstance(found, list) else []

        pages: Paginator[Any] = Paginator(
            self.github.rest, request, page_items, *args, per_page=PAGE_SIZE, **kwargs
        )
        iterator = iter(pages)
        while True:
            try:
                item = self._guard(lambda: next(iterator))
            except StopIteration:
                return
            yield item

    def _guard(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except StopIteration:
            raise
        except GitHubException as error:
            raise explain(error, self._settings) from None
        except (ValueError, TypeError) as error:  # a body that is not the documented JSON
            raise GitHubError(
                f"GitHub sent a body that is not what its API documents: {error}"
            ) from None


def explain(error: GitHubException, settings: GitHubSettings) -> GitHubError:
    """A readable `GitHubError` for a githubkit failure: the status, the call, what to check."""
    credential = (
        "GITHUB_APP_ID and the key in GITHUB_APP_PRIVATE_KEY_FILE"
        if settings.is_app
        else "GITHUB_TOKEN"
    )
    if isinstance(error, RateLimitExceeded):
        return GitHubError(
            f"GitHub's rate limit still refused {error.request.method} {error.request.url.path} "
            f"after {MAX_RATE_LIMIT_RETRIES} waits; run again later"
        )
    if isinstance(error, RequestFailed):
        status = error.response.status_code
        call = f"{error.request.method} {error.request.url.path}"
        message = _message(error.response)
        if status == 401:
            return GitHubError(
                f"GitHub refused the credential (401 {message}): check {credential}", status
            )
        if status == 403:
            return GitHubError(
                f"GitHub answered 403 to {call} ({message}): {credential} lacks a permission "
                "this command needs (see docs/recovery.md)",
                status,
            )
        if status == 404:
            return GitHubError(
                f"GitHub answered 404 to {call}: no such repository, organization or hook, or "
                f"{credential} cannot see it",
                status,
            )
        return GitHubError(f"GitHub answered {status} to {call}: {message}", status)
    if isinstance(error, AuthCredentialError):
        return GitHubError(f"GitHub App credential: {error}")
    if isinstance(error, RequestError):
        return GitHubError(f"cannot reach GitHub at {settings.api_url}: {error.exc}")
    return GitHubError(f"GitHub call failed: {error!r}")


def _message(response: Response[Any, Any]) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.raw_response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:300]
    return response.raw_response.reason_phrase


def _check_private_key(settings: GitHubSettings) -> str:
    """The App's key, once proven to sign a JWT (a bad key fails here, not on the first call)."""
    key = settings.private_key or ""
    now = datetime.now(UTC)
    try:
        jwt.encode({"iss": settings.app_id, "iat": now, "exp": now}, key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as error:
        raise GitHubError(
            f"GITHUB_APP_PRIVATE_KEY_FILE does not hold a usable RSA private key: {error}"
        ) from None
    return key


def connect(settings: GitHubSettings, target: Target, budget: RateBudget) -> GitHubApi:
    """A client for `target`: the token, or the App's JWT (its hook) or installation token.

    Raises:
        GitHubError: the App has no installation on the target, or its key or id are refused.
    """
    options: dict[str, Any] = {
        "base_url": settings.api_url,
        "timeout": TIMEOUT_S,
        "http_cache": False,
        "auto_retry": _Retry(),
        "user_agent": "github-telemetry",
        "event_hooks": {"request": [budget.before], "response": [budget.after]},
    }
    if not settings.is_app:
        if target.kind == "app":
            raise GitHubError(
                "--app reads the GitHub App's own hook, which needs the App's JWT: set "
                "GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY_FILE instead of GITHUB_TOKEN"
            )
        return GitHubApi(
            GitHub(TokenAuthStrategy(settings.token or ""), **options), settings, budget
        )
    app = AppAuthStrategy(settings.app_id, _check_private_key(settings))
    api = GitHubApi(GitHub(app, **options), settings, budget)
    if target.kind == "app":
        return api
    if target.kind == "repo":
        found = api.json(api.rest.apps.get_repo_installation, target.owner, target.name)
    else:
        found = api.json(api.rest.apps.get_org_installation, target.owner)
    installation = app.as_installation(int(found["id"]))
    return GitHubApi(api.github.with_auth(installation), settings, budget)
