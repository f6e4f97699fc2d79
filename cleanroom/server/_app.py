"""The HTTP interface of the clean room (Starlette). Every /v1 request is signed (RFC 9421).

    GET  /health                          unsigned: {"ok": true}
    GET  /v1/hello                        who you are, the collaboration, the operator's key
    POST /v1/overlap   {"as", "by", "metrics"}      the overlap, as `cleanroom overlap --json`
    POST /v1/query     {"as", "sql"}                analyst SQL, as `cleanroom query --json`
    POST /v1/report    {"as", "by", "metric"}       the report's figures (rendered by the client)
    GET  /v1/policy                       the rules in force, as `cleanroom policy check --json`
    GET  /v1/audit                        {"entries": [...], "operator": "<public identity>"}
    GET  /v1/budget                       the privacy budget, as `cleanroom budget --json`
    PUT  /v1/tables/TABLE/tokens          a token file, streamed (owner only)
    PUT  /v1/tables/TABLE/policy          a policy, TOML (owner only)
    POST /v1/console-link {"next"}        a one-time link to the web console
    /console/...                          the web console (session cookie; see _console)

Members query only as themselves; auditors read the policy, the audit log and the budget and
never query; owners alone change their tables. Every answer to a signed request carries the
signed audit head in `Cleanroom-Audit-Head: v1 <count> <head> <signature>`. Reads (policy,
audit, budget) are not audited; they change nothing. Errors are one line of JSON:

    401 {"error": "not_authenticated", "reason"}           (exit status 4)
    403 {"error": "not_allowed", "rule", "message"}        (exit status 4)
    422 {"error": "refused", "rule", "rules", "message"}   (a policy refusal: exit status 3)
    400 {"error": "failed", "kind", "message"}             (any other error, as locally)
    400 {"error": "bad_request", "reason"}    404 {"error": "not_found", "reason"}
    413 {"error": "too_large"}    503 {"error": "not_ready", "message"}    500 {"error": "internal"}

No answer ever holds a token, a token file, an entity id, another party's row or a traceback.
"""

from __future__ import annotations

import hashlib
import json
import sys
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from cleanroom.analyst import run_query
from cleanroom.config import valid_name
from cleanroom.engine import Dimension, Metric, budget_report, policy_report
from cleanroom.report import build_report
from protocols import (
    CleanroomError,
    NotAllowed,
    NotAuthenticated,
    PolicyRefusal,
    ServerError,
)

from ._asgi import SignedRequestMiddleware, request_keyid, request_signed
from ._auth import RequestVerifier
from ._console import Console
from ._state import Principal, ServerState
from ._storage import DEFAULT_MAX_UPLOAD, TooLarge, Upload, check_policy, check_tokens, put_policy

HEAD_HEADER = "cleanroom-audit-head"
MAX_SQL = 100_000
MAX_NAME = 200
_SECURITY_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


class BadRequest(Exception):
    """A request the server cannot read (400); `reason` never repeats what was sent."""

    def __init__(self, reason: str, status: int = 400, error: str = "bad_request") -> None:
        super().__init__(reason)
        self.reason, self.status, self.error = reason, status, error


def dumps(doc: Any) -> bytes:
    """Compact one-line JSON (dates and other values as text, as the CLI prints them)."""
    return json.dumps(doc, default=str, separators=(",", ":"), ensure_ascii=False).encode()


def _clean(text: str) -> bool:
    return not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in text)


def _text(doc: dict[str, Any], key: str, *, limit: int = MAX_NAME) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or not _clean(value):
        raise BadRequest(f"{key}: must be printable text of at most {limit} characters")
    return value


def _texts(doc: dict[str, Any], key: str, *, most: int) -> list[str]:
    value = doc.get(key, [])
    if not isinstance(value, list) or len(value) > most:
        raise BadRequest(f"{key}: must be a list of at most {most} texts")
    out = []
    for item in value:
        if not isinstance(item, str) or len(item) > MAX_NAME or not _clean(item):
            raise BadRequest(f"{key}: every item must be printable text of at most "
                             f"{MAX_NAME} characters")
        out.append(item)
    return out


async def _json_body(request: Request, allowed: set[str]) -> dict[str, Any]:
    raw = await request.body()
    try:
        doc = json.loads(raw) if raw else {}
    except (ValueError, RecursionError):
        raise BadRequest("the body is not JSON") from None
    if not isinstance(doc, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = set(doc) - allowed
    if unknown:
        raise BadRequest(f"unknown field (allowed: {', '.join(sorted(allowed))})")
    return doc


def _dims(values: list[str]) -> list[str]:
    try:
        return [str(Dimension.parse(v)) for v in values]
    except PolicyRefusal:
        raise BadRequest("by: every item must be TABLE.COLUMN") from None


def _metrics(values: list[str]) -> list[str]:
    try:
        return [Metric.parse(v).text for v in values]
    except PolicyRefusal:
        raise BadRequest("metrics: every item must be FUNC(TABLE.COLUMN)") from None


class App:
    """The routes of one served collaboration, around a `ServerState`."""

    def __init__(self, state: ServerState, *, max_upload: int = DEFAULT_MAX_UPLOAD,
                 secure_cookies: bool = False) -> None:
        self.state, self.max_upload = state, max_upload
        self.console = Console(state, secure=secure_cookies)

    # -- plumbing --------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        head = self.state.signed_head()
        return {**_SECURITY_HEADERS,
                HEAD_HEADER: f"v1 {head.count} {head.head} {head.signature or '-'}"}

    def answer(self, doc: Any, status: int = 200) -> Response:
        """A JSON answer carrying the signed audit head."""
        return Response(dumps(doc), status_code=status, media_type="application/json",
                        headers=self._headers())

    def error(self, exc: BaseException, where: str) -> Response:
        """The one mapping from an exception to the one-line JSON error."""
        if isinstance(exc, NotAuthenticated):
            return self.answer({"error": "not_authenticated", "reason": exc.reason}, 401)
        if isinstance(exc, NotAllowed):
            return self.answer({"error": "not_allowed", "rule": exc.rule,
                                "message": exc.detail}, 403)
        if isinstance(exc, PolicyRefusal):
            return self.answer({"error": "refused", "rule": exc.rule, "rules": exc.rules,
                                "message": exc.detail}, 422)
        if isinstance(exc, BadRequest):
            return self.answer({"error": exc.error, "reason": exc.reason}, exc.status)
        if isinstance(exc, ServerError):
            return self.answer({"error": "not_ready", "message": self._relative(str(exc))}, 503)
        if isinstance(exc, CleanroomError):
            return self.answer({"error": "failed", "kind": type(exc).__name__,
                                "message": self._relative(str(exc))}, 400)
        # a bug: the operator sees its kind on stderr; the member sees nothing of it
        print(f"cleanroom serve: internal error ({type(exc).__name__}) in {where}",
              file=sys.stderr, flush=True)
        return self.answer({"error": "internal"}, 500)

    def _relative(self, message: str) -> str:
        """A message without the operator's folder (file names stay, relative to it)."""
        folder = str(self.state.path.parent.resolve())
        for prefix in (folder + "/", str(self.state.path.parent) + "/"):
            if prefix != "/":
                message = message.replace(prefix, "")
        return message

    def _who(self, request: Request) -> Principal:
        return self.state.principal(request_keyid(request))

    def _audit_refusal(self, who: Principal, what: str, exc: NotAllowed,
                       extra: dict[str, Any] | None = None) -> None:
        self.state.audit.record(member=who.name, request={"analysis": what, "role": who.role,
                                                          **(extra or {})},
                                decision="refused", rule=exc.rule)

    def _table(self, request: Request) -> str:
        table = request.path_params.get("table", "")
        if not valid_name(table) or table not in self.state.roster.tables:
            raise BadRequest("no such table", 404, "not_found")
        return table

    def route(self, fn: Callable[[Request], Awaitable[Any]]) -> Callable[[Request],
                                                                           Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                result = await fn(request)
            except Exception as exc:  # the one boundary to the wire
                return self.error(exc, request.url.path)
            return result if isinstance(result, Response) else self.answer(result)
        return endpoint

    # -- endpoints -------------------------------------------------------------------------
    async def hello(self, request: Request) -> dict[str, Any]:
        who = self._who(request)
        roster = self.state.roster
        return {"protocol": "cleanroom-server-v1",
                "collaboration": {"id": roster.id, "name": roster.name},
                "operator": self.state.operator_line,
                "you": {"role": who.role, "name": who.name,
                        "owns": list(roster.owned_by(who.name)) if who.role == "member" else []},
                "tables": {n: {"owner": t.owner} for n, t in roster.tables.items()},
                "missing": self.state.missing()}

    async def _member(self, request: Request, what: str, as_member: str | None) -> str:
        who = self._who(request)
        try:
            return self.state.member_for(who, as_member)
        except NotAllowed as exc:
            await run_in_threadpool(self._audit_refusal, who, what, exc)
            raise

    async def overlap(self, request: Request) -> dict[str, Any]:
        doc = await _json_body(request, {"as", "by", "metrics"})
        as_member = _text(doc, "as")
        by, metrics = _dims(_texts(doc, "by", most=8)), _metrics(_texts(doc, "metrics", most=8))
        member = await self._member(request, "overlap", as_member)

        def run() -> dict[str, Any]:
            with self.state.room(light=not by and not metrics) as room:
                return room.overlap(member, by=by, metrics=metrics).to_dict()
        return await run_in_threadpool(run)

    async def query(self, request: Request) -> dict[str, Any]:
        doc = await _json_body(request, {"as", "sql"})
        as_member = _text(doc, "as")
        sql = doc.get("sql")
        if not isinstance(sql, str) or not sql.strip() or len(sql) > MAX_SQL:
            raise BadRequest(f"sql: must be a SELECT statement of at most {MAX_SQL} characters")
        member = await self._member(request, "query", as_member)

        def run() -> dict[str, Any]:
            with self.state.room() as room:
                return run_query(room, member, sql).to_dict()
        return await run_in_threadpool(run)

    async def report(self, request: Request) -> dict[str, Any]:
        doc = await _json_body(request, {"as", "by", "metric"})
        as_member = _text(doc, "as")
        by = _dims(_texts(doc, "by", most=2))
        metric = _text(doc, "metric")
        if metric is not None:
            metric = _metrics([metric])[0]
        member = await self._member(request, "report", as_member)

        def run() -> dict[str, Any]:
            with self.state.room() as room:
                return build_report(room, member, by=by, metric=metric)
        return await run_in_threadpool(run)

    async def policy(self, request: Request) -> dict[str, Any]:
        self._who(request)

        def run() -> dict[str, Any]:
            with self.state.room() as room:
                return {"valid": True, **policy_report(room)}
        return await run_in_threadpool(run)

    async def audit(self, request: Request) -> dict[str, Any]:
        self._who(request)
        entries = await run_in_threadpool(self.state.audit.entries)
        return {"entries": entries, "operator": self.state.operator_line}

    async def budget(self, request: Request) -> dict[str, Any]:
        self._who(request)
        return await run_in_threadpool(budget_report, self.state.roster)

    async def _owner(self, request: Request, what: str, table: str) -> Principal:
        who = self._who(request)
        try:
            self.state.owner_of(who, table)
        except NotAllowed as exc:
            await run_in_threadpool(self._audit_refusal, who, what, exc, {"table": table})
            raise
        return who

    async def upload(self, request: Request) -> dict[str, Any]:
        table = self._table(request)
        signed = request_signed(request)
        who = await self._owner(request, "upload", table)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_upload):
            raise BadRequest("too_large", 413, "too_large")
        target = self.state.roster.tables[table].tokens
        upload = await run_in_threadpool(Upload, target, table=table, max_bytes=self.max_upload)
        try:
            try:
                async for chunk in request.stream():
                    upload.write(chunk)
            except TooLarge:
                raise BadRequest("too_large", 413, "too_large") from None
            except ClientDisconnect:
                raise BadRequest("the upload was cut off before its end") from None
            digest = await run_in_threadpool(upload.finish)
            signed.verify_sha256(digest)
            info = {"analysis": "upload", "table": table, "sha256": digest.hex(),
                    "bytes": upload.size}
            try:
                manifest = await run_in_threadpool(check_tokens, self.state.roster, table,
                                                   upload.path)
            except CleanroomError:
                await run_in_threadpool(
                    lambda: self.state.audit.record(member=who.name, request=info,
                                                    decision="refused", rule="manifest"))
                raise
            info["rows"] = manifest.row_count

            def commit() -> None:
                with self.state.changing():
                    upload.commit()
                    self.state.audit.record(member=who.name, request=info,
                                            decision="accepted", rule="owner")
            await run_in_threadpool(commit)
        finally:
            await run_in_threadpool(upload.discard)
        return {"table": table, "sha256": info["sha256"], "bytes": info["bytes"],
                "rows": info["rows"]}

    async def put_policy(self, request: Request) -> dict[str, Any]:
        table = self._table(request)
        who = await self._owner(request, "policy_put", table)
        text = await request.body()

        def run() -> dict[str, Any]:
            info: dict[str, Any] = {"analysis": "policy_put", "table": table,
                                    "sha256": hashlib.sha256(text).hexdigest()}
            try:
                check_policy(self.state.roster, table, text)
            except CleanroomError:
                self.state.audit.record(member=who.name, request=info, decision="refused",
                                        rule="policy")
                raise
            with self.state.changing():
                version = put_policy(self.state.roster, table, text)
                info["version"] = version.version
                self.state.audit.record(member=who.name, request=info, decision="accepted",
                                        rule="owner")
            return {"table": table, "version": version.version, "sha256": version.sha256}
        return await run_in_threadpool(run)

    async def console_link(self, request: Request) -> dict[str, Any]:
        who = self._who(request)
        doc = await _json_body(request, {"next"})
        page = _text(doc, "next") or ""
        return {"url": self.console.new_link(who, str(request.base_url), page)}

    async def health(self, request: Request) -> Response:
        return Response(b'{"ok":true}', media_type="application/json",
                        headers=_SECURITY_HEADERS)


def _streamed(method: str, path: str) -> bool:
    return method == "PUT" and path.startswith("/v1/tables/") and path.endswith("/tokens")


def build_app(state: ServerState, *, max_upload: int = DEFAULT_MAX_UPLOAD,
              secure_cookies: bool = False) -> Starlette:
    """The ASGI application serving `state`: signed /v1 routes, the console, /health."""
    app = App(state, max_upload=max_upload, secure_cookies=secure_cookies)
    r = app.route
    routes = [
        Route("/health", app.health, methods=["GET"]),
        Route("/v1/hello", r(app.hello), methods=["GET"]),
        Route("/v1/overlap", r(app.overlap), methods=["POST"]),
        Route("/v1/query", r(app.query), methods=["POST"]),
        Route("/v1/report", r(app.report), methods=["POST"]),
        Route("/v1/policy", r(app.policy), methods=["GET"]),
        Route("/v1/audit", r(app.audit), methods=["GET"]),
        Route("/v1/budget", r(app.budget), methods=["GET"]),
        Route("/v1/tables/{table}/tokens", r(app.upload), methods=["PUT"]),
        Route("/v1/tables/{table}/policy", r(app.put_policy), methods=["PUT"]),
        Route("/v1/console-link", r(app.console_link), methods=["POST"]),
        *app.console.routes(),
    ]
    verifier = RequestVerifier(state.keys, not_before=state.started_at - 1)

    async def no_route(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        reason = "no such method here" if status == 405 else "no such path"
        return Response(dumps({"error": "not_found", "reason": reason}), status_code=status,
                        media_type="application/json", headers=_SECURITY_HEADERS)

    return Starlette(routes=routes, exception_handlers={404: no_route, 405: no_route},
                     middleware=[
        Middleware(SignedRequestMiddleware, verifier=verifier, public_paths={"/health"},
                   public_prefixes=("/console",), streamed=_streamed)])
