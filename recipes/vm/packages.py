"""Package work planned up front: every package group a run's steps need, installed in as few apt transactions
as the sources allow, each step still reporting its own group.

A group whose packages come from the box's own sources joins the first transaction; one whose packages
come from a source the run writes (the Agent's) joins the first transaction after that source is in place.
On a box that already has gpg (Ubuntu's), that is a single transaction for the whole run.
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass, field

from recipes.vm.hostrun import HostRun, Step
from recipes.vm.reads import Answer, Read
from recipes.vm.session import FAILURE_PREFIX, NOTE_PREFIX

APT_LOCK_WAIT = 300  # seconds apt waits for another package run to end
APT_UPDATE_STAMP = "/var/lib/dd-runbook/apt-update-stamp"
# Lists fetched and verified stay valid when a keyring changes (a package such as datadog-signing-keys
# updates its own): only a new or changed source needs them fetched again.
APT_SOURCES = "/etc/apt/sources.list /etc/apt/sources.list.d"


@dataclass(frozen=True)
class PackageGroup:
    """The packages of one step. ``source``: the apt source file the run writes for them ('' = the box's own).
    ``unless``: (package, read) pairs; a package is not needed when its read succeeds (a server already there)."""

    packages: tuple[str, ...]
    source: str = ""
    unless: tuple[tuple[str, Read], ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "packages", tuple(self.packages))


def installed(answer: Answer) -> set[str]:
    return {line.split()[0] for line in answer.output.splitlines() if line.endswith(" installed")}


def dpkg_read(packages: list[str]) -> Read[set[str]]:
    """Which of the packages dpkg has installed."""
    return Read("dpkg-query -W -f='${Package} ${db:Status-Status}\\n' " + " ".join(sorted(set(packages))), installed)


@dataclass
class PackageWork:
    """What the run's steps will install, what is already installed, and what this run installed (or, in a dry
    run, would install) and in which step."""

    groups: list[PackageGroup] = field(default_factory=list)
    sources_ready: set[str] = field(default_factory=set)
    done: dict[str, str] = field(default_factory=dict)  # package -> the step whose transaction installed it

    def declare(self, groups) -> None:
        for group in groups:
            if group not in self.groups:
                self.groups.append(group)

    def reads(self) -> list[Read]:
        """The reads every package decision needs, for the run's first session."""
        every = [p for group in self.groups for p in group.packages]
        return ([dpkg_read(every)] if every else []) + [read for g in self.groups for _, read in g.unless]

    def missing(self, run: HostRun, group: PackageGroup) -> list[str]:
        """The group's packages that are neither installed, nor installed by this run, nor made unneeded."""
        there, *unless = run.read_all([dpkg_read([p for g in self.groups for p in g.packages]),
                                       *(read for _, read in group.unless)])
        unneeded = {package for (package, _), answer in zip(group.unless, unless) if answer.ok}
        return [p for p in group.packages if p not in there and p not in self.done and p not in unneeded]

    def ready(self, group: PackageGroup) -> bool:
        return not group.source or group.source in self.sources_ready


def work_of(run: HostRun) -> PackageWork:
    """The run's package work (its plan declares the groups in it)."""
    if run.packages is None:
        run.packages = PackageWork()
    return run.packages


def ensure_packages(run: HostRun, step: Step, group: PackageGroup) -> bool:
    """Install what the group lacks, in one transaction with what every other ready group of the run lacks;
    True if the group's packages were (or would be) installed by this run."""
    work = work_of(run)
    work.declare([group])
    verb = "would install" if run.dry_run else "installed"
    earlier = [p for p in group.packages if p in work.done]
    if earlier:
        step.changed(f"{verb} {' '.join(earlier)} in the apt transaction of '{work.done[earlier[0]]}'")
    missing = work.missing(run, group)
    if not missing:
        return bool(earlier)
    joining = [g for g in work.groups if g != group and work.ready(g)]
    others = [p for p in dict.fromkeys(p for g in joining for p in work.missing(run, g)) if p not in missing]
    batch = missing + others
    from_new_source = bool(group.source) or any(g.source and work.missing(run, g) for g in joining)
    step.changed(f"{verb} {' '.join(missing)}" + (f", with {' '.join(others)} for later steps (one apt transaction)"
                                                  if others else ""))
    if not run.dry_run:
        outcome = run.root(apt_install_script(batch, update=from_new_source),
                           what=f"the apt transaction installing {' '.join(batch)}")
        for line in outcome.stdout.splitlines():
            if line.startswith(NOTE_PREFIX):
                step.note(line.removeprefix(NOTE_PREFIX))
    work.done.update({package: step.name for package in batch})
    return True


def apt_install_script(packages: list[str], update: bool) -> str:
    """apt-get install, refreshing the package lists only when they are missing or older than an apt source
    (one the run just wrote, say), or when the install fails on lists gone stale. When the one newer source is
    a file of sources.list.d, only its lists are fetched. ``update``: a failed refresh is an error (the run
    needs a repository it just added) rather than a reason to try the lists it has.

    Recovery is keyed on dpkg's own view, before the install and after a failed one: its journal
    (/var/lib/dpkg/updates) and every package whose state is not "installed" (half-installed, unpacked,
    half-configured, triggers-awaited, triggers-pending: what a cut package run leaves, with or without a
    journal). Such a run is finished (a package cut during its unpack installed again from apt's cache by dpkg,
    then `dpkg --configure -a`, then `apt-get -f install`) once, after waiting for a
    package run still going (a cut run's, or unattended-upgrades'), and the install is tried once more. If that
    fails too, the script ends with one line naming the package, its dpkg state, dpkg's own error and what to
    run by hand. It never loops.
    """
    names = " ".join(shlex.quote(p) for p in packages)
    return (
        "export DEBIAN_FRONTEND=noninteractive\n"
        # apt's and dpkg's whole output goes to a log in /run, read back only to name a failure (a killed run's
        # log is removed by the next: runs on a host take turns).
        "rm -f /run/dd-runbook-apt.*\n"
        "log=$(mktemp /run/dd-runbook-apt.XXXXXX) && trap 'rm -f \"$log\"' EXIT\n"
        f"apt_get() {{ apt-get -q -o DPkg::Lock::Timeout={APT_LOCK_WAIT} -o Dpkg::Options::=--force-confold "
        "\"$@\" >>\"$log\" 2>&1; }\n"
        f"note() {{ echo \"{NOTE_PREFIX}$*\"; }}\n"
        # The reference is the newest of our stamp, the lists folder and the lists. A list file carries the
        # repository's date, not the fetch's (it can be older than a source written before the fetch); the
        # folder's own date is the last fetch that changed a list. An update that only "Hit"s changes neither.
        "newer_sources() {\n"
        "  ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || { echo all; return; }\n"
        f"  ref=$(ls -td {APT_UPDATE_STAMP} /var/lib/apt/lists /var/lib/apt/lists/*_Packages* 2>/dev/null | head -n 1)\n"
        f"  find {APT_SOURCES} -newer \"$ref\" -type f 2>/dev/null\n"
        "}\n"
        "stamp() {\n"
        f"  mkdir -p {posixpath.dirname(APT_UPDATE_STAMP)} && touch {APT_UPDATE_STAMP}\n"
        "}\n"
        "refresh() { apt_get update && stamp; }\n"
        "refresh_one() {\n"
        "  apt_get update -o Dir::Etc::sourcelist=\"$1\" -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 "
        "&& stamp\n"
        "}\n"
        # dpkg's view: its journal, and each package in a state between "not installed" and "installed".
        "unfinished() {\n"
        "  dpkg-query -W -f='${Package} ${db:Status-Status}\\n' 2>/dev/null | awk '$2 != \"installed\" && "
        "$2 != \"not-installed\" && $2 != \"config-files\" { printf \"%s%s (%s)\", sep, $1, $2; sep = \", \" }'\n"
        "  [ -z \"$(ls -A /var/lib/dpkg/updates 2>/dev/null)\" ] || echo \" (dpkg's journal not merged)\"\n"
        "}\n"
        # A package cut during its unpack is flagged reinst-required (or left half-installed): neither
        # `dpkg --configure -a` nor `apt-get -f install` mends it (apt only tries to configure it, and its own
        # hooks need perl, which may be that package). dpkg itself installs its .deb again, from apt's cache.
        "reinstall_cut() {\n"
        "  dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\\n' 2>/dev/null |\n"
        "  awk '$1 ~ /^.H/ || $1 ~ /^..R/ { print $2, $3, $4 }' | while read -r p v a; do\n"
        "    f=/var/cache/apt/archives/${p}_$(printf %s \"$v\" | sed 's/:/%3a/')_${a}.deb\n"
        "    [ -e \"$f\" ] || (cd /var/cache/apt/archives && apt-get -q download \"$p=$v\" >>\"$log\" 2>&1)\n"
        "    dpkg --force-confold -i \"$f\" >>\"$log\" 2>&1\n"
        "  done\n"
        "}\n"
        # `apt-get check` takes the package lock (waiting for a package run still going) and releases it.
        "finish_cut_run() {\n"
        "  note \"dpkg had a package run left unfinished ($1): finished it with dpkg --configure -a\"\n"
        "  apt_get check || true\n"
        "  reinstall_cut\n"
        "  dpkg --force-confold --configure -a >>\"$log\" 2>&1\n"
        "  apt_get -f install -y\n"
        "}\n"
        "give_up() {\n"
        "  state=$(unfinished)\n"
        # dpkg's error: the last one that is a cause (a failed script), not "dependency problems" that follow it.
        # apt runs dpkg on a terminal of its own: its lines end in \r\n.
        "  why=$(tr -d '\\r' < \"$log\" | awk '/^dpkg: error processing/ { head = $0; getline; line = head \" \" $0; "
        "gsub(/  +/, \" \", line); last = line; if ($0 !~ /dependency problems/) cause = line } "
        "END { print (cause != \"\" ? cause : last) }')\n"
        "  [ -n \"$why\" ] || why=$(tr -d '\\r' < \"$log\" | grep '^E: ' | tail -n 2 | tr '\\n' ' ')\n"
        f"  echo \"{FAILURE_PREFIX}${{state:-no package left unfinished}}; ${{why:-apt-get failed}}; by hand on the "
        "host: sudo dpkg --configure -a && sudo apt-get -f install, then run the task again\"\n"
        "  exit 1\n"
        "}\n"
        "refreshed=no\n"
        "newer=$(newer_sources)\n"
        "if [ -n \"$newer\" ]; then\n"
        "  case \"$newer\" in\n"
        "    /etc/apt/sources.list.d/*) one=yes ;;\n"
        "    *) one=no ;;\n"
        "  esac\n"
        "  if [ $one = yes ] && [ \"$(printf '%s\\n' \"$newer\" | wc -l)\" = 1 ]; then\n"
        + ("    refresh_one \"$newer\" || give_up\n" if update else "    refresh_one \"$newer\" || true\n")
        + "    refreshed=one\n"
        "  else\n"
        + ("    refresh || give_up\n" if update else "    refresh || true\n")
        + "    refreshed=all\n"
        "  fi\n"
        "fi\n"
        f"install_missing() {{ apt_get install -y {names}; }}\n"
        "left=$(unfinished)\n"
        "[ -z \"$left\" ] || finish_cut_run \"$left\"\n"
        "install_missing && exit 0\n"
        "left=$(unfinished)\n"
        "if [ -n \"$left\" ]; then\n"
        "  finish_cut_run \"$left\"\n"
        "elif [ $refreshed != all ]; then\n"
        "  note 'the install failed on the package lists it had: fetched them again'\n"
        "  refresh || give_up\n"
        "else\n"
        "  give_up\n"
        "fi\n"
        "install_missing || give_up\n"
    )
