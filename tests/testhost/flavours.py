"""Test host flavours: what differs between the images is data here; one build, boot and stop code path."""

from dataclasses import dataclass

# Installed in every image: what a fresh Vagrant box has.
BASE_PACKAGES = ("openssh-server", "sudo", "procps", "ca-certificates", "curl", "init-system-helpers", "logrotate")
SYSTEMD_PACKAGES = ("systemd", "systemd-sysv", "dbus", "libpam-systemd")
# Downloaded only (into /var/cache/apt/archives): what the recipes install, so their apt-get install is
# real but needs no network transfer.
RECIPE_PACKAGES = ("acl", "gnupg", "python3-venv", "python3-pip")
MARIADB_PACKAGES = ("mariadb-server", "default-mysql-server")


@dataclass(frozen=True)
class Flavour:
    name: str
    suite: str
    systemd: bool  # systemd as PID 1 (systemd-nspawn --boot), else /sbin/rb-init with sshd
    install: tuple[str, ...] = ()  # installed on top of the base: the box had it before the recipes ran
    prefetch: tuple[str, ...] = RECIPE_PACKAGES
    # A rolling suite (sid) has no -updates/-security, its Release may be past Valid-Until on the mirror,
    # and it changes daily, so its image is keyed on the Release date too.
    rolling: bool = False
    # Built on another flavour's image of the same suite (a copy of its tree, then only what this one adds
    # installed from the same release): one mmdebstrap run fewer on a machine that builds both.
    base: str | None = None

    @property
    def packages(self) -> tuple[str, ...]:
        """What the image's build installs: everything, or on a base image what this flavour adds."""
        added = SYSTEMD_PACKAGES if self.systemd else ()
        return added if self.base else BASE_PACKAGES + added

    @property
    def tools(self) -> tuple[str, ...]:
        """Commands this machine needs to boot the flavour (beyond the common ones)."""
        return ("systemd-nspawn",) if self.systemd else ()

    def apt_sources(self, mirror: str, security: str) -> str:
        if self.rolling:
            return f"deb [check-valid-until=no] {mirror} {self.suite} main\n"
        return (f"deb {mirror} {self.suite} main\n"
                f"deb {mirror} {self.suite}-updates main\n"
                f"deb {security} {self.suite}-security main\n")


FLAVOURS = {f.name: f for f in (
    Flavour("bookworm", "bookworm", systemd=False, prefetch=MARIADB_PACKAGES + RECIPE_PACKAGES),
    Flavour("systemd", "bookworm", systemd=True, prefetch=MARIADB_PACKAGES + RECIPE_PACKAGES, base="bookworm"),
    # Oracle MySQL (Debian's default-mysql-server is MariaDB in every suite; only sid packages MySQL),
    # standing in for Ubuntu's MySQL on the user's Vagrant box.
    Flavour("mysql", "sid", systemd=True, install=("mysql-server",), rolling=True),
)}
DEFAULT = "bookworm"


def flavour_named(name: str) -> Flavour:
    try:
        return FLAVOURS[name]
    except KeyError:
        raise ValueError(f"unknown test host flavour {name!r}; known: {', '.join(FLAVOURS)}") from None
