"""What the API tasks do, once datadog-api-client is loaded: read the payloads, compare, send, print.

``recipes/api/tasks.py`` imports this module inside each task: the client takes seconds to import, and
`invoke --list` or a VM task should not wait for it.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

from invoke.exceptions import Exit
from rich.console import Console
from rich.json import JSON
from rich.text import Text
from rich.table import Table

from recipes import settings as schema
from recipes.api import client, lock, payloads, sync
from recipes.ddsite import UnknownSite
from recipes.errors import Failed, Refused
from recipes.terminal import task_console

STYLE = {"create": "green", "update": "yellow", "unchanged": "dim", "delete": "red"}
KEPT = "cyan"  # a `kept` change: another run's copy kept, this run's own deleted
DOING = {"create": "creating", "update": "updating", "delete": "deleting", "unchanged": "comparing"}
DONE = {"create": "created", "update": "updated", "delete": "deleted"}


def inputs(c, define=None, at_least_once=False, only=(), as_written=False) -> sync.Inputs:
    """The run's payload set, read and filled once (`as_written`: without the at-least-once overlay, whatever
    api.at_least_once says), and the payloads chosen."""
    settings = schema.of(c)
    folder = Path(settings.api.payload_dir or payloads.PAYLOAD_DIR)
    values = payloads.config_values(settings, payloads.parse_overrides(define, payloads.placeholder_names(folder)))
    overlay = not as_written and (at_least_once or settings.api.at_least_once)
    try:
        app = client.app_url(settings.api)
    except UnknownSite:
        app = ""  # refused with its reason once a request is made (client.configuration)
    return sync.Inputs(payloads.PayloadSet(values, folder, overlay), only=tuple(only), app=app)


def shipped_examples(c, chosen: sync.Inputs, define=None) -> list[str]:
    """The settings still at their shipped example (recipes/settings.py EXAMPLES) that the chosen payloads would
    send; ``--define NAME=...`` counts as set."""
    given = payloads.parse_overrides(define)
    used = set()
    for spec in chosen.chosen():
        used |= payloads.placeholders(chosen.payloads.template(spec.key))
    by_key = {dotted: name for name, dotted in payloads.CONFIG_KEYS.items()}
    return [f"{refusal}, or pass --define {by_key[dotted]}=..." for dotted, refusal in schema.examples_left(c).items()
            if by_key[dotted] in used and by_key[dotted] not in given]


def show(out: Console, change: sync.Change, dry_run: bool, app: str = "") -> None:
    """One line per object: what was (or would be) done, its id, why, and where it opens in the web app."""
    ident = change.live_id or ""
    verb = f"would {change.action}" if dry_run and change.action != "unchanged" else change.action
    reason = f" ({change.reason})" if change.reason else ""
    if change.action == "kept":
        reason += f"; deleted this run's copy {change.deleted_copy}"
    if app and change.live_id and change.action != "delete":
        reason += f" {app}{change.spec.kind.page(change.live)}"
    out.print(f"[{STYLE.get(change.action, KEPT)}]{verb:>16}[/] {change.spec.key} {ident}{reason}".rstrip(),
              highlight=False, soft_wrap=True)
    if dry_run and change.action in ("create", "update"):
        out.print(JSON.from_data(change.body, indent=2), soft_wrap=True)  # no line padded or cut to the width


def diff_text(lines: list[str]) -> Text:
    """A unified diff, coloured by line, each line as long as it is (nothing padded to the terminal's width)."""
    styles = {"+": "green", "-": "red", "@": "cyan"}
    text = Text()
    for line in lines:
        text.append(line + "\n", style=styles.get(line[:1], ""))
    return text


def summary(changes: list[sync.Change]) -> str:
    counts = {a: sum(ch.action == a for ch in changes) for a in STYLE}
    kept = sum(ch.action == "kept" for ch in changes)
    return ", ".join(f"{n} {a}" for a, n in counts.items()) + (f", {kept} kept from another run" if kept else "")


def resume_command(task: str, at_least_once=False, define=None, dry_run=False) -> str:
    """The command line that runs `task` again with the same options (a define is a placeholder's value,
    never a key)."""
    words = ["./run", task] + (["--dry-run"] if dry_run else []) + (["--at-least-once"] if at_least_once else [])
    for item in define or ():
        words += ["--define", item]
    return " ".join(shlex.quote(w) if i > 1 else w for i, w in enumerate(words))


class Progress:
    """What a writing run is doing and has done, for the one message an interrupt prints."""

    def __init__(self, resume: str):
        self.resume = resume
        self.stage = "before any request"
        self.current: sync.Change | None = None
        self.done: list[str] = []

    def start(self, change: sync.Change) -> None:
        self.current = change

    def finish(self, change: sync.Change) -> None:
        self.current = None
        if change.action == "kept":
            self.done.append(f"kept {change.spec.key} {change.live_id} (another run's; this run's copy "
                             f"{change.deleted_copy} deleted)")
        elif change.action in DONE:
            self.done.append(f"{DONE[change.action]} {change.spec.key} {change.live_id or ''}".rstrip())

    def interrupted(self) -> Exit:
        """Exit 130 with what was being done, what is done, and the command that resumes (the boundary's own
        Ctrl-C exit would only say "stopped by the user")."""
        change = self.current
        if change is None:
            lines = [f"interrupted {self.stage}"]
        else:
            ident = f" {change.live_id}" if change.live_id and change.action != "create" else ""
            lines = [f"interrupted while {DOING[change.action]} {change.spec.key}{ident}"]
        lines.append("already done: " + ", ".join(self.done) if self.done else "nothing was changed before it")
        if change is not None and change.action == "create":
            lines.append(f"the next run finds {change.spec.key} by its mark if this create landed, "
                         "and never sends it twice")
        elif change is not None:
            lines.append("the next run compares again and sends only what is still needed")
        lines.append(f"resume with: {self.resume}")
        return Exit("\n".join(lines), code=130)


@contextmanager
def one_run_per_org(api, progress: Progress):
    """The org's lock (recipes/api/lock.py) held for the body; a run that holds it is named once on
    stderr while this one waits for it, up to api.lock_wait seconds."""
    config = client.configuration(api)  # a missing key stops here, before the lock
    path = lock.path_for(config.host, config.api_key["apiKeyAuth"])
    wait = api.lock_wait
    waiting = task_console(stderr=True)

    def told(holder: lock.Holder, wait: float) -> None:
        progress.stage = f"while waiting for the run that holds the lock ({holder})"
        waiting.print(f"another run holds the lock for this Datadog org ({holder}): waiting up to {wait:g} s "
                      "(api.lock_wait), then planning afresh", soft_wrap=True)

    try:
        with lock.held(path, progress.resume, wait, told):
            progress.stage = "before the first write (reading the live objects)"
            yield
    except lock.StillHeld as err:
        raise Failed(f"another run still holds the lock for this Datadog org after {err.waited:g} s "
                     f"({err.holder or 'not known'}): let it finish, then run {progress.resume} "
                     "(api.lock_wait sets how long to wait) (nothing was changed)") from None


def apply(c, dry_run=False, at_least_once=False, define=None, only=(), task="apply") -> list[sync.Change]:
    out = task_console()
    progress = Progress(resume_command(task, at_least_once, define, dry_run))
    api = schema.of(c).api
    try:
        chosen = inputs(c, define, at_least_once, only)
        sync.preflight(chosen)  # before the key check: a bad payload sends nothing at all
        examples = shipped_examples(c, chosen, define)
        if examples and not dry_run:
            raise Refused(*examples)
        for line in examples:
            out.print(f"[yellow]would be refused without --dry-run:[/] {line}", highlight=False, soft_wrap=True)
        if dry_run and not client.keys_present():
            out.print("[yellow]no DD_API_KEY/DD_APP_KEY: showing the bodies without comparing them to live objects[/]")
            changes = sync.offline_changes(chosen)
            for change in changes:
                show(out, change, dry_run)
        elif dry_run:  # reads only: no lock
            with client.connect(api) as apis:
                changes = sync.apply(apis, chosen, on_change=lambda ch: show(out, ch, dry_run, client.app_url(api)),
                                     dry_run=True)
        else:
            with one_run_per_org(api, progress), client.connect(api) as apis:
                app = client.app_url(api)
                changes = sync.apply(apis, chosen, on_change=lambda ch: (progress.finish(ch), show(out, ch, False, app)),
                                     on_start=progress.start)
    except KeyboardInterrupt:
        raise progress.interrupted() from None
    out.print(summary(changes) + (" (dry run: nothing sent)" if dry_run else ""))
    return changes


def validate(c, define=None, offline=False) -> None:
    out = task_console()
    chosen = inputs(c, define, as_written=True)
    overlaid = inputs(c, define, at_least_once=True)  # each overlay merged over its file, checked as sent
    problems = []
    for key, found in chosen.payloads.problems().items():
        problems += found
        out.print(f"[{'red' if found else 'green'}]{'invalid' if found else 'ok':>8}[/] {chosen.payloads.source(key)}")
    for spec in (spec for spec in payloads.SPECS if spec.overlay):
        found = [f"{spec.overlay} over {problem}" for problem in overlaid.payloads.problems().get(spec.key, [])]
        problems += found
        out.print(f"[{'red' if found else 'green'}]{'invalid' if found else 'ok':>8}[/] "
                  f"{payloads.label(overlaid.payloads.payload_dir / spec.overlay)} (over {spec.file})")
    if client.keys_present() and not offline and not problems:
        monitor = sync.monitor_spec()
        with client.connect(schema.of(c).api) as apis:
            monitor.kind.validate_online(apis, chosen.payloads.body(monitor.key))
        out.print(f"[green]      ok[/] {chosen.payloads.source(monitor.key)} (POST /api/v1/monitor/validate)")
    if problems:  # the problems as they are, one a line: the report of this task, not an error line
        print("\n".join(problems), file=sys.stderr)
        raise Failed()


def plan(c, at_least_once=False, define=None) -> list[sync.Change]:
    out = task_console()
    chosen = inputs(c, define, at_least_once)
    sync.preflight(chosen)
    with client.connect(schema.of(c).api) as apis:
        changes = sync.plan(apis, chosen)
    table = Table("object", "kind", "action", "live id", "note")
    for ch in changes:
        table.add_row(ch.spec.key, ch.spec.kind.name, f"[{STYLE[ch.action]}]{ch.action}[/]", str(ch.live_id or ""), ch.reason)
    out.print(table)
    for ch in changes:
        if ch.diff:
            out.print(f"[bold]{ch.spec.key}[/] ({ch.spec.file}): live -> payload")
            out.print(diff_text(ch.diff))
    return changes


def export(c, out_dir=None, define=None) -> list[Path]:
    out = task_console()
    chosen = inputs(c, define, as_written=True)
    target = Path(out_dir) if out_dir else chosen.payloads.payload_dir
    if target.exists() and not target.is_dir():
        raise Refused(f"option --out-dir {target}: is a file, not a folder")
    target.mkdir(parents=True, exist_ok=True)
    with client.connect(schema.of(c).api) as apis:
        written = sync.export(apis, chosen, target)
    for path in written:
        out.print(f"[green]exported[/] {path}")
    out.print(f"{len(written)} file(s) written to {target}; the others already match the live objects")
    return written


def destroy(c, dry_run=False, define=None) -> list[sync.Change]:
    out = task_console()
    progress = Progress(resume_command("destroy", define=define, dry_run=dry_run))
    api = schema.of(c).api
    try:
        chosen = inputs(c, define)
        sync.preflight(chosen)
        with (nullcontext() if dry_run else one_run_per_org(api, progress)), client.connect(api) as apis:
            changes = sync.destroy_plan(apis, chosen)
            for change in changes:
                if not dry_run:
                    progress.start(change)
                    sync.apply_change(apis, change)
                    progress.finish(change)
                show(out, change, dry_run)
    except KeyboardInterrupt:
        raise progress.interrupted() from None
    out.print(f"{len(changes)} " + ("would be deleted (dry run: nothing sent)" if dry_run else "deleted"))
    return changes


def verify_account(c, as_json=False, wait=0, minutes=0, publish=False) -> list:
    """The scorecard, once or polled until every row passes or `wait` seconds are up; Failed unless all pass.
    `publish`: then written into the Notebook's scorecard cell, under the org's lock, unless it already holds
    the same statuses."""
    from recipes.api import account

    api = schema.of(c).api
    wait = schema.option("--wait", wait, schema.WaitSeconds)
    minutes = schema.option("--minutes", minutes, schema.WindowMinutes) if minutes else api.verify_minutes
    out, progress = task_console(), task_console(stderr=True)
    chosen = inputs(c)
    sync.preflight(chosen)
    expected = account.Expected.from_settings(schema.of(c), chosen, minutes)
    with client.connect(api) as apis:
        rows, now = poll(apis, expected, wait, api.poll_interval, progress)
        site = apis.where
    if as_json:
        out.print_json(json.dumps(account.report(rows, expected, site, now)))
    else:
        out.print(scorecard_table(rows, expected, site, now))
    counts = {s: sum(r.status == s for r in rows) for s in (account.PASS, account.FAIL, account.NOT_YET)}
    progress.print(", ".join(f"{n} {s}" for s, n in counts.items() if n))
    if publish:
        published(api, chosen, rows, now, progress)
    if not account.passed(rows):
        raise Failed()  # the scorecard above says what failed
    return rows


def published(api, chosen: sync.Inputs, rows: list, now: float, out: Console) -> None:
    """Write the scorecard into the Notebook (one writing run per org); say where, or that it already said so."""
    from recipes.api import account

    run = Progress(resume_command("verify-account --publish"))
    try:
        with one_run_per_org(api, run), client.connect(api) as apis:
            written, live = account.publish(apis, chosen, rows, now)
    except KeyboardInterrupt:
        raise run.interrupted() from None
    where = f"{chosen.app}{sync.P.spec('notebook').kind.page(live)}"
    out.print(f"[green]published[/] the scorecard to {where}" if written else
              f"[dim]unchanged[/] the notebook's scorecard already holds these statuses: {where}", highlight=False,
              soft_wrap=True)


def poll(apis, expected, wait: int, pause: float, progress: Console):
    """Read the scorecard until every row passes or the time is up; one progress line per look."""
    from recipes.api import account

    deadline = time.monotonic() + wait
    with progress.status(f"reading the account for {expected.host}..."):
        while True:
            now = account.clock()
            rows = account.scorecard(apis, expected, now)
            left = deadline - time.monotonic()
            if account.passed(rows) or left <= 0:
                return rows, now
            waiting = [r.requirement for r in rows if r.status != account.PASS]
            progress.print(f"waiting for {len(waiting)}: {', '.join(waiting)} "
                           f"(next look in {min(pause, left):.0f} s, {left:.0f} s left)")
            time.sleep(min(pause, left))


SCORE_STYLE = {"pass": "green", "fail": "red", "not yet": "yellow"}


def scorecard_table(rows, expected, site: str, now: float) -> Table:
    from recipes.api.account import iso

    table = Table(title=f"{expected.host} in the Datadog account at {site}, {iso(now)}", title_justify="left",
                  expand=True)
    table.add_column("requirement", ratio=2)
    table.add_column("status", no_wrap=True)
    for heading in ("evidence", "what to do"):
        table.add_column(heading, ratio=3, overflow="fold")  # a pitfall's anchor folds, never cut
    for row in rows:
        todo = row.todo + (f" (troubleshooting#{row.pitfall})" if row.pitfall else "")
        table.add_row(row.requirement, f"[{SCORE_STYLE[row.status]}]{row.status}[/]", row.evidence, todo)
    return table


def snapshot(c, widget=None, minutes=5, again=False, dry_run=False) -> dict:
    """Take the snapshot, wait for its image, post the event that @-mentions api.notify; print the links."""
    from recipes.api import snapshot as shots

    minutes = schema.option("--minutes", minutes, schema.WindowMinutes)
    out, progress = task_console(), task_console(stderr=True)
    api = schema.of(c).api
    chosen = inputs(c)
    sync.preflight(chosen)
    title, query = shots.widget_query(chosen, widget)
    notify = shots.notify_of(c)
    end = int(shots.clock())
    shot = shots.Shot(title, query, end - minutes * 60, end, notify)
    if dry_run:
        for request in shots.requests_shown(shot):
            out.print(request, markup=False)
        out.print("(dry run: nothing sent)")
        return {}
    with client.connect(api) as apis:
        sent = {} if again else shots.posted_before(apis, shot)
        if sent:
            out.print(f"[dim]already sent[/] for this window ({title}): {client.app_url(api)}{sent.get('url', '')} "
                      "(--again sends another)")
        else:
            url = shots.take(apis, shot)
            looks = shots.wait_for_image(url, api.snapshot_wait, api.snapshot_poll, progress)
            sent = shots.post(apis, shot, url)
            out.print(f"[green]snapshot[/] {url} (rendered after {looks} look(s))", highlight=False)
            out.print(f"[green]sent[/] to {notify}: {client.app_url(api)}{sent.get('url', '')}")
        board = shots.timeboard_link(apis, chosen, shot, client.app_url(api))
    out.print(f"timeboard on the same live window: {board}" if board else
              "no timeboard yet: ./run timeboard creates it")
    return sent
