"""Workshops from the command line, for operators who script them (and the bench).

    manage.py workshop create --lab pss-baseline --capacity 30
    manage.py workshop create --lab pss-privileged --lab pss-baseline --capacity 100 \\
        --starts 2026-12-04T09:00 --ends +3h --title "Friday PSS" --instructor alice
    manage.py workshop list [--all] [--json]
    manage.py workshop close CODE

Times are ISO 8601 (UTC unless they name a zone), `now`, or a step ahead such as
`+30m`, `+2h`, `+1d`: --starts from now (default: now), --ends from the start
(default: +3h). `create` prints the join code and the join link, made from
LABAPP_PUBLIC_URL (or --base-url). The workshop's warm pool fills from
LABAPP_POOL_LEAD_MINUTES before it starts. `close` ends it now and tears its
unclaimed pooled sandboxes down; learners keep theirs until they expire.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse
from django.utils import timezone

from labapp.catalog.registry import LabInvalid, all_labs
from labapp.instructor.roles import user_is_instructor
from labapp.instructor.services import workshop_close, workshop_create
from labapp.learning.models import Workshop
from labapp.sandboxes.selectors import pool_statuses

STEP_AHEAD = re.compile(r"\+(\d+)([mhd])")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}
WHEN_HELP = "ISO 8601 (UTC unless it names a zone), now, or +30m / +2h / +1d"


def parse_when(text: str, *, option: str, base: dt.datetime, now: dt.datetime) -> dt.datetime:
    """A time given on the command line: ISO 8601, `now`, or `+N{m,h,d}` after `base`."""
    text = text.strip()
    if text == "now":
        return now
    if step := STEP_AHEAD.fullmatch(text):
        return base + dt.timedelta(**{UNITS[step[2]]: int(step[1])})
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option} {text!r} is not a time: use {WHEN_HELP}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def join_link(code: str, base_url: str | None = None) -> str:
    return (base_url or settings.PUBLIC_URL).rstrip("/") + reverse("join-link", args=[code])


def _utc(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


class Command(BaseCommand):
    help = "Create, list or close workshops; create prints the join code and link."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="a new workshop; prints its code and link")
        create.add_argument(
            "--lab", dest="labs", action="append", required=True, help="a lab id (repeatable)"
        )
        create.add_argument("--capacity", type=int, required=True, help="most learners")
        create.add_argument("--starts", default="now", help=f"when it opens: {WHEN_HELP}")
        create.add_argument(
            "--ends", default="+3h", help=f"when it ends: {WHEN_HELP} (+N from the start)"
        )
        create.add_argument("--title", default="", help="default: the first lab's title")
        create.add_argument("--instructor", help="USERNAME of who teaches it (sees /teach/)")
        create.add_argument(
            "--lifetime", type=int, default=240, help="minutes a learner's sandbox lives"
        )
        create.add_argument("--base-url", help="the site's address (default: LABAPP_PUBLIC_URL)")
        create.add_argument("--json", action="store_true", help="print one JSON object")
        listing = actions.add_parser("list", help="workshops not yet ended, soonest first")
        listing.add_argument("--all", action="store_true", help="ended ones too")
        listing.add_argument("--base-url", help="the site's address (default: LABAPP_PUBLIC_URL)")
        listing.add_argument("--json", action="store_true", help="print a JSON list")
        close = actions.add_parser("close", help="end CODE now; tear its unclaimed pool down")
        close.add_argument("code")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            self._create(options)
        elif action == "list":
            self._list(options)
        else:
            self._close(options["code"])

    def _create(self, options: dict[str, Any]) -> None:
        try:
            labs = all_labs()
        except LabInvalid as exc:
            raise CommandError(f"the labs do not validate: {exc}") from None
        unknown = [lab_id for lab_id in options["labs"] if lab_id not in labs]
        if unknown:
            raise CommandError(
                f"no lab is named {', '.join(map(repr, unknown))}; "
                f"the labs are: {', '.join(sorted(labs))}"
            )
        if options["capacity"] <= 0:
            raise CommandError(f"--capacity must be at least 1 (got {options['capacity']})")
        if options["lifetime"] <= 0:
            raise CommandError(f"--lifetime must be at least 1 minute (got {options['lifetime']})")
        now = timezone.now()
        starts = parse_when(options["starts"], option="--starts", base=now, now=now)
        ends = parse_when(options["ends"], option="--ends", base=starts, now=now)
        if ends <= starts:
            raise CommandError(
                f"--ends ({_utc(ends)} UTC) must be after --starts ({_utc(starts)} UTC)"
            )
        if ends <= now:
            raise CommandError(f"--ends ({_utc(ends)} UTC) is in the past")
        instructor = None
        if options["instructor"]:
            instructor = get_user_model().objects.filter(username=options["instructor"]).first()
            if instructor is None:
                raise CommandError(f"no account is named {options['instructor']!r}")
        workshop = workshop_create(
            instructor=instructor,
            title=options["title"].strip() or labs[options["labs"][0]].title,
            lab_ids=list(dict.fromkeys(options["labs"])),
            starts_at=starts,
            ends_at=ends,
            capacity=options["capacity"],
            sandbox_lifetime_minutes=options["lifetime"],
        )
        if instructor is None:
            self.stderr.write(
                "No instructor: nobody sees its dashboard. Add one in the admin, or create "
                "it with --instructor USERNAME."
            )
        elif not user_is_instructor(instructor):
            self.stderr.write(
                f"{instructor.get_username()} does not hold the instructor role yet: "
                f"manage.py instructor grant {instructor.get_username()}"
            )
        summary = self._summary(workshop, options["base_url"], now)
        if options["json"]:
            self.stdout.write(json.dumps(summary))
            return
        say = self.stdout.write
        say(f"Workshop {workshop.title!r} created.")
        say(f"Join code: {workshop.join_code}")
        say(f"Join link: {summary['link']}")
        say(
            f"Labs: {', '.join(workshop.lab_ids)} · capacity {workshop.capacity} · "
            f"{_utc(workshop.starts_at)} to {_utc(workshop.ends_at)} UTC · "
            f"sandboxes live {workshop.sandbox_lifetime_minutes} min"
        )
        pool = summary["pool"]
        if pool["size"]:
            fills = workshop.starts_at - dt.timedelta(minutes=settings.POOL_LEAD_MINUTES)
            when = "now" if fills <= now else f"from {_utc(fills)} UTC"
            say(f"Warm pool: {pool['size']} sandboxes per lab, filling {when}.")
        else:
            say("Warm pool: none (LABAPP_POOL_WORKSHOP_PERCENT is 0).")

    def _summary(
        self, workshop: Workshop, base_url: str | None, now: dt.datetime
    ) -> dict[str, Any]:
        statuses = pool_statuses(pools=workshop.pools.all(), now=now)
        state = (
            "upcoming" if now < workshop.starts_at else "open" if workshop.is_open(now) else "ended"
        )
        return {
            "code": workshop.join_code,
            "link": join_link(workshop.join_code, base_url),
            "title": workshop.title,
            "labs": workshop.lab_ids,
            "state": state,
            "starts_at": workshop.starts_at.isoformat(),
            "ends_at": workshop.ends_at.isoformat(),
            "capacity": workshop.capacity,
            "enrolled": workshop.enrolments.count(),
            "pool": {
                "size": max((s.pool.size for s in statuses), default=0),
                "ready": sum(s.ready for s in statuses),
                "provisioning": sum(s.provisioning for s in statuses),
                "failed": sum(s.failed for s in statuses),
                "claimed": sum(s.claimed for s in statuses),
            },
        }

    def _list(self, options: dict[str, Any]) -> None:
        now = timezone.now()
        workshops = Workshop.objects.order_by("starts_at", "id")
        if not options["all"]:
            workshops = workshops.filter(ends_at__gt=now)
        rows = [self._summary(w, options["base_url"], now) for w in workshops]
        if options["json"]:
            self.stdout.write(json.dumps(rows))
            return
        if not rows:
            self.stdout.write(
                "No workshops." if options["all"] else "No open or upcoming workshops."
            )
            return
        for row in rows:
            pool = row["pool"]
            pool_text = (
                f"pool {pool['ready']} ready, {pool['provisioning']} provisioning, "
                f"{pool['failed']} failed, {pool['claimed']} claimed"
                if pool["size"]
                else "no pool"
            )
            self.stdout.write(
                f"{row['code']}  {row['state']:<8}  "
                f"{_utc(dt.datetime.fromisoformat(row['starts_at']))} to "
                f"{_utc(dt.datetime.fromisoformat(row['ends_at']))} UTC  "
                f"{row['enrolled']}/{row['capacity']} joined  {pool_text}  "
                f"{', '.join(row['labs'])}  {row['title']}"
            )

    def _close(self, code: str) -> None:
        workshop = Workshop.objects.filter(join_code=code.strip().upper()).first()
        if workshop is None:
            raise CommandError(f"no workshop has the code {code!r}")
        already = workshop.ends_at <= timezone.now()
        torn_down = workshop_close(workshop=workshop)
        workshop.refresh_from_db()
        ended = f"ended at {_utc(workshop.ends_at)} UTC" if already else "closed now"
        self.stdout.write(
            f"Workshop {workshop.join_code} {ended}; "
            f"{torn_down} unclaimed pooled sandboxes torn down."
        )
