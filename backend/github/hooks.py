"""One webhook's delivery endpoints: a repository's, an organization's, or the GitHub App's.

https://docs.github.com/en/rest/repos/webhooks (repository), /orgs/webhooks (organization),
/apps/webhooks (the App's own hook, called with the App's JWT).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from githubkit import Response

from backend.github.client import GitHubApi, Target


class Hook(Protocol):
    """The three calls `recover` makes on one hook."""

    name: str

    def deliveries(self) -> Iterator[Mapping[str, Any]]:
        """The hook's delivery attempts, newest first, every page."""

    def delivery(self, delivery_id: int) -> Mapping[str, Any]:
        """One attempt with its stored request (headers and payload)."""

    def redeliver(self, delivery_id: int) -> None:
        """Ask GitHub to deliver the attempt again (it answers 202 and delivers later)."""


class RestHook:
    """`Hook` over GitHub's REST API."""

    def __init__(self, api: GitHubApi, target: Target, hook_id: int | None) -> None:
        self._api = api
        self._target = target
        rest = api.rest
        # Three endpoint families with different leading arguments (`where`).
        self._list: Callable[..., Response[Any, Any]]
        self._get: Callable[..., Response[Any, Any]]
        self._post: Callable[..., Response[Any, Any]]
        if target.kind == "repo":
            self.name = f"repo:{target.owner}/{target.name}:hook:{hook_id}"
            where: tuple[Any, ...] = (target.owner, target.name, hook_id)
            self._list = rest.repos.list_webhook_deliveries
            self._get = rest.repos.get_webhook_delivery
            self._post = rest.repos.redeliver_webhook_delivery
        elif target.kind == "org":
            self.name = f"org:{target.owner}:hook:{hook_id}"
            where = (target.owner, hook_id)
            self._list = rest.orgs.list_webhook_deliveries
            self._get = rest.orgs.get_webhook_delivery
            self._post = rest.orgs.redeliver_webhook_delivery
        else:
            self.name = "app"
            where = ()
            self._list = rest.apps.list_webhook_deliveries
            self._get = rest.apps.get_webhook_delivery
            self._post = rest.apps.redeliver_webhook_delivery
        self._where = where

    def deliveries(self) -> Iterator[Mapping[str, Any]]:
        for item in self._api.items(self._list, None, *self._where):
            if isinstance(item, Mapping):
                yield item

    def delivery(self, delivery_id: int) -> Mapping[str, Any]:
        body = self._api.json(self._get, *self._where, delivery_id)
        return body if isinstance(body, Mapping) else {}

    def redeliver(self, delivery_id: int) -> None:
        self._api.send(self._post, *self._where, delivery_id)
