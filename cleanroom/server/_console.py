"""The web console: server-rendered pages for compliance and marketers, in the report's style.

Login: `cleanroom console-link` asks the server (a signed request) for a one-time link,
`/console/login?t=<random>`, valid for a few minutes and usable once. Opening it sets an
`HttpOnly`, `SameSite=Strict` session cookie with an expiry (`Secure` when served over TLS);
without a valid session every page is a sign-in notice that shows nothing of the collaboration.
Only hashes of link and session tokens are kept, in memory: a restart signs everyone out.

Pages: the collaboration and its members (`/console/`), each table's policy in plain words
with its version history (`policies`), the audit trail with its verification status (`audit`),
the privacy budget with its spend history (`budget`) and, for a member who may receive it, the
overlap report (`report`; its analyses are audited like any other). Every value is escaped; no
page runs a script.
"""

from __future__ import annotations

import hashlib
import html
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from string import Template
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from cleanroom.config import Policy
from cleanroom.engine import RoomPrivacy, budget_report, policy_report
from cleanroom.report import build_report, describe_request, render_report, report_css
from protocols import CleanroomError, NotAllowed, identity_fingerprint

from ._state import Principal, ServerState
from ._storage import policy_versions

COOKIE = "cleanroom_session"
LINK_TTL = 300.0
SESSION_TTL = 8 * 3600.0
MAX_PENDING = 1000
PAGES = {"": "Collaboration", "policies": "Policies", "audit": "Audit trail",
         "budget": "Privacy budget", "report": "Overlap report"}
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; "
       "frame-ancestors 'none'; base-uri 'none'")
_HEADERS = {"content-security-policy": CSP, "x-frame-options": "DENY",
            "cache-control": "no-store", "referrer-policy": "no-referrer",
            "x-content-type-options": "nosniff"}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True)
class _Grant:
    who: Principal
    expires: float
    page: str = ""


class Console:
    """Login links, sessions and pages of the web console of one served collaboration."""

    def __init__(self, state: ServerState, *, secure: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.state, self.secure, self.clock = state, secure, clock
        self._lock = threading.Lock()
        self._links: dict[str, _Grant] = {}
        self._sessions: dict[str, _Grant] = {}

    def __repr__(self) -> str:
        return f"Console(sessions={len(self._sessions)})"

    # -- links and sessions ----------------------------------------------------------------
    def _prune(self, now: float) -> None:
        for store in (self._links, self._sessions):
            for key in [k for k, g in store.items() if g.expires <= now]:
                del store[key]

    def new_link(self, who: Principal, base_url: str, page: str = "") -> str:
        """A one-time login link for `who`, valid LINK_TTL seconds."""
        if page not in PAGES:
            page = ""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._prune(now)
            if len(self._links) >= MAX_PENDING:
                raise NotAllowed("console", "too many unused login links; try again later")
            self._links[_digest(token)] = _Grant(who, now + LINK_TTL, page)
        return f"{base_url.rstrip('/')}/console/login?t={token}"

    def _session(self, request: Request) -> Principal | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        with self._lock:
            self._prune(self.clock())
            grant = self._sessions.get(_digest(token))
        return grant.who if grant else None

    def routes(self) -> list[Route]:
        """The console's routes (public paths: the session cookie is checked here)."""
        return [Route("/console/login", self.login, methods=["GET"]),
                Route("/console/logout", self.logout, methods=["GET"]),
                Route("/console/", self.page, methods=["GET"]),
                Route("/console/{page}", self.page, methods=["GET"])]

    async def login(self, request: Request) -> Response:
        token = request.query_params.get("t", "")
        now = self.clock()
        with self._lock:
            self._prune(now)
            grant = self._links.pop(_digest(token), None) if token else None
            session = secrets.token_urlsafe(32)
            if grant is not None:
                self._sessions[_digest(session)] = _Grant(grant.who, now + SESSION_TTL)
        if grant is None:
            return self._signed_out("This link was already used or has expired.")
        target = f"/console/{grant.page}"
        response = RedirectResponse(target, status_code=303, headers=_HEADERS)
        response.set_cookie(COOKIE, session, max_age=int(SESSION_TTL),
                            expires=int(SESSION_TTL), path="/console", secure=self.secure,
                            httponly=True, samesite="strict")
        return response

    async def logout(self, request: Request) -> Response:
        token = request.cookies.get(COOKIE)
        if token:
            with self._lock:
                self._sessions.pop(_digest(token), None)
        response = self._signed_out("You are signed out.")
        response.delete_cookie(COOKIE, path="/console", secure=self.secure, httponly=True,
                               samesite="strict")
        return response

    def _signed_out(self, why: str) -> HTMLResponse:
        body = (f'<section class="card"><h2>Sign in</h2><p>{_e(why)}</p><p>Ask for a link '
                "with <code>cleanroom console-link URL --identity KEYFILE</code>; it opens "
                "this console once and expires after a few minutes.</p></section>")
        return HTMLResponse(self._layout("cleanroom", "", body, None, ""), status_code=401,
                            headers=_HEADERS)

    async def page(self, request: Request) -> Response:
        who = self._session(request)
        if who is None:
            return self._signed_out("You are not signed in.")
        name = request.path_params.get("page", "")
        if name not in PAGES:
            return HTMLResponse(self._layout(self.state.roster.name, "",
                                             "<p>No such page.</p>", who, ""),
                                status_code=404, headers=_HEADERS)
        if name == "report":
            return HTMLResponse(await run_in_threadpool(self._report, who), headers=_HEADERS)
        render = {"": self._overview, "policies": self._policies, "audit": self._audit,
                  "budget": self._budget}[name]
        body = await run_in_threadpool(render, who)
        return HTMLResponse(self._layout(self.state.roster.name, PAGES[name], body, who, name),
                            headers=_HEADERS)

    # -- layout ----------------------------------------------------------------------------
    def _layout(self, title: str, subtitle: str, body: str, who: Principal | None,
                current: str) -> str:
        template = Template(resources.files("cleanroom.server").joinpath(
            "templates/console.html").read_text("utf-8"))
        nav = ""
        meta = ""
        if who is not None:
            links = "".join(f'<a href="/console/{k}"{" class=on" if k == current else ""}>'
                            f"{_e(v)}</a>" for k, v in PAGES.items())
            nav = f'<nav class="tabs">{links}<a href="/console/logout">Sign out</a></nav>'
            meta = (f"<span>Signed in as <strong>{_e(who.name)}</strong> ({_e(who.role)})</span>"
                    f"<span>Collaboration {_e(self.state.roster.id)}</span>"
                    + (f"<span>{_e(subtitle)}</span>" if subtitle else ""))
        try:
            ver = version("cleanroom")
        except PackageNotFoundError:
            ver = ""
        return template.substitute(title=_e(title), css=report_css(), meta=meta, nav=nav,
                                   body=body, version=_e(ver))

    @staticmethod
    def _card(title: str, lede: str, inner: str) -> str:
        return (f'<section class="card"><h2>{_e(title)}</h2><p class="lede">{_e(lede)}</p>'
                f"{inner}</section>")

    @staticmethod
    def _table(head: Sequence[str], rows: Sequence[Sequence[str]], num: Sequence[int] = ()
               ) -> str:
        if not rows:
            return '<p class="empty">Nothing yet.</p>'
        th = "".join(f'<th{" class=num" if i in num else ""}>{_e(h)}</th>'
                     for i, h in enumerate(head))
        body = "".join("<tr>" + "".join(f'<td{" class=num" if i in num else ""}>{c}</td>'
                                        for i, c in enumerate(r)) + "</tr>" for r in rows)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"

    @staticmethod
    def _facts(facts: Sequence[tuple[str, Any, str]]) -> str:
        cards = "".join(f'<div class="kpi"><div class="label">{_e(label)}</div>'
                        f'<div class="value">{_e(value)}</div><div class="sub">{_e(sub)}</div>'
                        "</div>" for label, value, sub in facts)
        return f'<div class="facts">{cards}</div>'

    def _entries(self) -> list[dict[str, Any]]:
        return self.state.audit.entries()

    # -- pages -----------------------------------------------------------------------------
    def _overview(self, who: Principal) -> str:
        roster = self.state.roster
        entries = self._entries()
        uploads: dict[str, Mapping[str, Any]] = {}
        for e in entries:
            req = e.get("request") or {}
            if req.get("analysis") == "upload" and e.get("decision") == "accepted":
                uploads[str(req.get("table"))] = {**req, "time": e.get("time"),
                                                  "member": e.get("member")}
        ready = len(roster.tables) - len(self.state.missing())
        facts = [("Members", len(roster.members), "parties of the collaboration"),
                 ("Tables ready", f"{ready} / {len(roster.tables)}", "token file and policy"),
                 ("Audit entries", len(entries), "signed by the operator"),
                 ("Auditors", len(roster.auditors), "read-only compliance")]
        members = [[_e(n), "yes" if m.can_query else "no",
                    "yes" if m.can_receive_results else "no",
                    _e(", ".join(roster.owned_by(n)) or "—"),
                    f'<span class="mono">{_e(identity_fingerprint(m.identity))}</span>'
                    if m.identity is not None else "no identity (local only)"]
                   for n, m in roster.members.items()]
        members += [[_e(n), "no", "no", "auditor",
                     f'<span class="mono">{_e(identity_fingerprint(a.identity))}</span>']
                    for n, a in roster.auditors.items()]
        tables = []
        for n, t in roster.tables.items():
            up = uploads.get(n)
            got = (f"{_e(up.get('rows'))} rows, {_e(str(up.get('time', '')).replace('T', ' '))}"
                   f' <span class="mono">sha256 {_e(str(up.get("sha256", ""))[:16])}…</span>'
                   if up else ("on disk" if t.tokens.is_file() else "not uploaded yet"))
            versions = policy_versions(roster, n)
            pol = (f"version {versions[-1].version}" if versions
                   else ("as first written" if t.policy_path.is_file() else "not set yet"))
            tables.append([_e(n), _e(t.owner), got, _e(pol)])
        operator = identity_fingerprint(self.state.operator_public)
        return (self._facts(facts)
                + self._card("Members and auditors", "Who takes part, what each may do, and the "
                             "key each is known by (its identity fingerprint).",
                             self._table(["Name", "May query", "Receives results", "Owns",
                                          "Identity"], members))
                + self._card("Tables", "Each owner uploads its own token file and sets its "
                             "own policy; the operator never holds a party's secret.",
                             self._table(["Table", "Owner", "Token file", "Policy"], tables))
                + self._card("Operator", "The audit log is signed with this key.",
                             f'<p class="mono">{_e(operator)}</p>'))

    def _policies(self, who: Principal) -> str:
        roster = self.state.roster
        plain: dict[str, Any] | None = None
        if not self.state.missing():
            try:
                with self.state.room() as room:
                    plain = policy_report(room)
            except CleanroomError:
                plain = None
        history: dict[str, list[Mapping[str, Any]]] = {}
        for e in self._entries():
            req = e.get("request") or {}
            if req.get("analysis") == "policy_put" and e.get("decision") == "accepted":
                history.setdefault(str(req.get("table")), []).append(
                    {"version": req.get("version"), "time": e.get("time"),
                     "member": e.get("member"), "sha256": req.get("sha256")})
        out = []
        for n, t in roster.tables.items():
            if not t.policy_path.is_file():
                out.append(self._card(f"Table {n}", f"owned by {t.owner}",
                                      '<p class="empty">No policy yet.</p>'))
                continue
            try:
                p = Policy.from_path(t.policy_path)
                rules = _rule_lines(p)
            except CleanroomError as exc:
                rules = [f"the policy file is not valid: {exc}"]
            items = "".join(f"<li>{_e(line)}</li>" for line in rules)
            learn = ""
            if plain is not None:
                for m, doc in plain["members"].items():
                    said = doc["tables"].get(n, {})
                    lis = "".join(f'<li class="can">{_e(x)}</li>' for x in said.get(
                        "can_learn", []))
                    lis += "".join(f'<li class="cannot">{_e(x)}</li>' for x in said.get(
                        "cannot_learn", []))
                    learn += (f'<div class="policy"><h3>What {_e(m)} can learn</h3>'
                              f"<ul>{lis}</ul></div>")
            versions = [[_e(v.version), "", "",
                         f'<span class="mono">{_e(v.sha256[:16])}…</span>']
                        for v in policy_versions(roster, n)]
            for row in versions:
                for h in history.get(n, []):
                    if str(h.get("version")) == row[0]:
                        row[1] = _e(str(h.get("time", "")).replace("T", " "))
                        row[2] = _e(h.get("member", ""))
                if not row[2]:
                    row[1], row[2] = "—", "as first written"
            hist = self._table(["Version", "Put at (UTC)", "By", "SHA-256"], versions) \
                if versions else '<p class="empty">Unchanged since the collaboration began.</p>'
            out.append(self._card(
                f"Table {n}", f"owned by {t.owner}",
                f'<div class="policy"><h3>Rules in force</h3><ul>{items}</ul></div>'
                f'<div class="grid2 row2">{learn}</div><h3>Version history</h3>{hist}'))
        return "".join(out)

    def _audit(self, who: Principal) -> str:
        try:
            res = self.state.audit.verify(check=self.state.check_head)
            status = (f'<p class="chain ok">✔ {res.entries} entries, hash chain intact, every '
                      f"entry signed by the operator (head {_e(res.head_sha256[:12])}…)</p>")
            entries = self._entries()
        except CleanroomError as exc:
            return self._card("Audit trail", "Verification failed.",
                              f'<p class="chain bad">✘ {_e(exc)}</p>')
        rows = []
        for e in reversed(entries[-200:]):
            decision = str(e.get("decision", ""))
            cls = "accepted" if decision == "accepted" else "refused"
            rows.append([f"<span class='when'>{_e(str(e.get('time', '')).replace('T', ' '))}"
                         "</span>", _e(e.get("member", "")),
                         _e(describe_request(e.get("request") or {})),
                         f"<span class='pill {cls}'>{_e(decision)}</span>",
                         _e(e.get("rule", "")), _e(e.get("rows_returned", "")),
                         _e(e.get("rows_suppressed", ""))])
        return self._card("Audit trail", "Every analysis, upload and policy change, accepted "
                          "or refused, newest first. Entries are hash-chained and each is "
                          "signed by the operator, so a rewrite or a removal is detected.",
                          status + self._table(["Time (UTC)", "Who", "What", "Decision", "Rule",
                                                "Rows", "Suppressed"], rows, num=(5, 6)))

    def _budget(self, who: Principal) -> str:
        roster = self.state.roster
        try:
            doc = budget_report(roster)
            spends = (RoomPrivacy(roster).ledger.entries() if doc["mode"] == "differential"
                      else ())
        except CleanroomError as exc:
            return self._card("Privacy budget", "The budget cannot be read.",
                              f'<p class="chain bad">✘ {_e(exc)}</p>')
        if doc["mode"] != "differential":
            return self._card(
                "Privacy budget", "Threshold mode: there is no privacy budget.",
                "<p>Every number stands for at least the policies' minimum of people, and "
                "difference checks withhold a row whose people differ from an earlier "
                "answer's by fewer than that minimum. Answers are exact and spend nothing; "
                "in differential mode they would carry noise and spend ε.</p>")
        total, spent, left = doc["epsilon"], doc["spent"], doc["remaining"]
        queries = f"{doc['queries']} quer{'ies' if doc['queries'] != 1 else 'y'}"
        facts = [("Mode", "differential", "noise on every figure"),
                 ("Budget", f"ε {total:g}", "for the collaboration's lifetime"),
                 ("Spent", f"ε {spent:g}", f"by {queries}"),
                 ("Remaining", f"ε {left:g}", f"{doc['queries_remaining']} more at "
                  f"ε = {doc['epsilon_per_query']:g} each")]
        share = min(100.0, 100.0 * spent / total) if total else 100.0
        gauge = (f'<div class="gauge" role="img" aria-label="privacy budget: ε {spent:g} of '
                 f'{total:g} spent"><span style="width:{share:.1f}%"></span></div>')
        rows = [[_e(c.seq), "<span class='when'>"
                 f"{_e(c.at.replace('T', ' ').removesuffix('+00:00'))}</span>",
                 _e(c.member), _e(f"{c.epsilon:g}"), _e(f"{c.spent_after:g}")]
                for c in reversed(spends[-200:])]
        return (self._facts(facts)
                + self._card("Spend history", "Every accepted query or analysis spends ε before "
                             "anything is computed, all members together; once the budget is "
                             "spent, queries are refused (rule privacy_budget). Newest first; "
                             "the audit trail lists each spend with its query.",
                             gauge + self._table(["#", "Time (UTC)", "Who", "Spent",
                                                  "Total after"], rows, num=(3, 4))))

    def _report(self, who: Principal) -> str:
        try:
            member = self.state.member_for(who, None)
            with self.state.room() as room:
                return render_report(build_report(room, member))
        except CleanroomError as exc:
            body = self._card("Overlap report", "Not available to you.",
                              f"<p>{_e(exc)}</p>")
            return self._layout(self.state.roster.name, PAGES["report"], body, who, "report")


def _rule_lines(p: Policy) -> list[str]:
    """A policy's rules in plain words."""
    lines = [f"analysis rule: {p.analysis_rule}",
             f"join columns (they link records and are never output): "
             f"{', '.join(p.join_columns)}"]
    if p.dimension_columns:
        lines.append(f"may be grouped by: {', '.join(p.dimension_columns)}")
    for col in p.aggregated_columns():
        lines.append(f"{col} may be aggregated with {', '.join(p.functions_for(col))}")
    if p.list_columns:
        lines.append(f"may be listed: {', '.join(p.list_columns)}")
    if p.minimum is not None:
        lines.append(f"every number must stand for at least {p.minimum} distinct people")
    if p.join_required:
        lines.append("must be joined to a table of the member asking")
    if p.disallowed_output_columns:
        lines.append(f"never output: {', '.join(p.disallowed_output_columns)}")
    receivers = p.allowed_result_receivers
    lines.append("results may go to: " + (", ".join(receivers) if receivers is not None
                                          else "any member that may receive results"))
    return lines
