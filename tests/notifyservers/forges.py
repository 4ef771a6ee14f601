"""Forges: commit statuses on GitHub, GitLab, Gitea, Bitbucket Cloud and Server and Azure DevOps,
and GitHub's repository_dispatch. Each checks the SHA is a commit of a real repository."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from tests.notifyservers.base import (
    BITBUCKET_PASSWORD,
    BITBUCKET_USER,
    FORGE_TOKEN,
    Received,
    Reply,
    basic,
    json_body,
    need,
    route,
)

if TYPE_CHECKING:
    from tests.notifyservers.server import ServiceServer


# --- forges: commit statuses and repository_dispatch --------------------------------------------

_SHA = r"(?P<sha>[0-9a-f]{40})"


def _commit(srv: ServiceServer, repo: str, sha: str, status: int, body: object) -> None:
    need(srv.has_commit(repo, sha), status, body)


@route("POST", r"/api/v3/repos/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)/statuses/" + _SHA)
def github_status(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    need(
        req.headers.get("authorization") in (f"Bearer {FORGE_TOKEN}", f"token {FORGE_TOKEN}"),
        401,
        {"message": "Bad credentials"},
    )
    repo = f"{m['owner']}/{m['repo']}"
    _commit(srv, repo, m["sha"], 422, {"message": f"No commit found for SHA: {m['sha']}"})
    body = json_body(req)
    need(
        body.get("state") in ("error", "failure", "pending", "success"), 422, {"message": "Validation Failed"}
    )
    srv.set_status(repo, m["sha"], body.get("context") or "default", body)
    return Reply(201, {"id": 1, **body})


@route("POST", r"/api/v3/repos/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)/dispatches")
def github_dispatch(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    need(req.headers.get("authorization") == f"Bearer {FORGE_TOKEN}", 401, {"message": "Bad credentials"})
    need(srv.has_repo(f"{m['owner']}/{m['repo']}"), 404, {"message": "Not Found"})
    body = json_body(req)
    need(0 < len(body.get("event_type", "")) <= 100, 422, {"message": "event_type"})
    payload = body.get("client_payload", {})
    need(isinstance(payload, dict) and len(payload) <= 10, 422, {"message": "client_payload"})
    return Reply(204)


@route("POST", r"/api/v4/projects/(?P<project>[^/]+)/statuses/" + _SHA)
def gitlab_status(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    need(req.headers.get("private-token") == FORGE_TOKEN, 401, {"message": "401 Unauthorized"})
    project = unquote(m["project"])
    need("/" in project and srv.has_repo(project), 404, {"message": "404 Project Not Found"})
    _commit(srv, project, m["sha"], 404, {"message": "404 Commit Not Found"})
    body = json_body(req)
    need(
        body.get("state") in ("pending", "running", "success", "failed", "canceled", "skipped"),
        400,
        {"error": "state does not have a valid value"},
    )
    srv.set_status(project, m["sha"], body.get("name") or "default", body)
    return Reply(201, {"id": 1, "sha": m["sha"], "status": body["state"], "name": body.get("name")})


@route("POST", r"/api/v1/repos/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)/statuses/" + _SHA)
def gitea_status(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    need(req.headers.get("authorization") == f"token {FORGE_TOKEN}", 401, {"message": "token is required"})
    repo = f"{m['owner']}/{m['repo']}"
    _commit(srv, repo, m["sha"], 404, {"message": "commit not found"})
    body = json_body(req)
    need(
        body.get("state") in ("pending", "success", "error", "failure", "warning"), 422, {"message": "state"}
    )
    srv.set_status(repo, m["sha"], body.get("context") or "default", body)
    return Reply(201, {"id": 1, "status": body["state"], "context": body.get("context")})


@route("POST", r"/2\.0/repositories/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)/commit/" + _SHA + r"/statuses/build")
def bitbucket_status(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    basic(req, BITBUCKET_USER, BITBUCKET_PASSWORD)
    repo = f"{m['owner']}/{m['repo']}"
    _commit(srv, repo, m["sha"], 404, {"type": "error", "error": {"message": "Commit not found"}})
    body = json_body(req)
    need(body.get("state") in ("SUCCESSFUL", "FAILED", "INPROGRESS", "STOPPED"), 400, {"type": "error"})
    need(
        0 < len(body.get("key", "")) <= 40 and body.get("url"),
        400,
        {"type": "error", "error": {"message": "key and url are required"}},
    )
    srv.set_status(repo, m["sha"], body["key"], body)
    return Reply(201, {"type": "commitstatus", **body})


@route(
    "POST", r"/rest/api/latest/projects/(?P<key>[\w-]+)/repos/(?P<slug>[\w.-]+)/commits/" + _SHA + r"/builds"
)
def bitbucketserver_build(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    need(
        req.headers.get("authorization") == f"Bearer {FORGE_TOKEN}",
        401,
        {"errors": [{"message": "Authentication failed"}]},
    )
    need(
        req.headers.get("x-atlassian-token") == "no-check",
        403,
        {"errors": [{"message": "XSRF check failed"}]},
    )
    repo = f"{m['key']}/{m['slug']}"
    _commit(srv, repo, m["sha"], 404, {"errors": [{"message": "commit does not exist"}]})
    body = json_body(req)
    need(body.get("key") and body.get("url"), 400, {"errors": [{"message": "key and url are required"}]})
    need(
        body.get("state") in ("SUCCESSFUL", "FAILED", "INPROGRESS", "CANCELLED", "UNKNOWN"),
        400,
        {"errors": [{"message": "state"}]},
    )
    srv.set_status(repo, m["sha"], body["key"], body)
    return Reply(204)


@route(
    "POST",
    r"/(?P<org>[\w.-]+)/(?P<project>[\w.-]+)/_apis/git/repositories/(?P<repo>[\w.-]+)/commits/"
    + _SHA
    + r"/statuses",
)
def azuredevops_status(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    basic(req, "", FORGE_TOKEN)
    need(req.query.get("api-version"), 400, {"message": "No api-version was supplied"})
    repo = f"{m['org']}/{m['project']}/{m['repo']}"
    _commit(srv, repo, m["sha"], 404, {"message": "TF401175: The commit was not found"})
    body = json_body(req)
    states = ("notSet", "pending", "succeeded", "failed", "error", "notApplicable")
    need(body.get("state") in states, 400, {"message": "state"})
    context = body.get("context") or {}
    need(context.get("name"), 400, {"message": "context.name is required"})
    srv.set_status(repo, m["sha"], f"{context.get('genre', '')}/{context['name']}", body)
    return Reply(201, {"id": 1, **body})
