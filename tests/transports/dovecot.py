"""A real Dovecot IMAP server on loopback for tests: config, users, mail delivery, start and stop."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from processes import free_port

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
INSTALL_HINT = "apt-get install dovecot-imapd"

# The mail store must belong to the static userdb's uid (nobody), see DESIGN.md §10.
_MAIL_USER = "nobody"

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth_mechanisms}
mail_location = maildir:{root}/mail/%u/Maildir
# Tests deliver into Maildir directories owned by nobody; speed over durability here.
mail_fsync = never
mail_max_userip_connections = 50
first_valid_uid = 1
# Failed logins are part of the tests: no growing penalty delay for 127.0.0.1.
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
{oauth_passdb}userdb {{
  driver = static
  # allow_all_users: doveadm delivery must not ask the passdbs (the oauth2 one cannot look users up).
  args = uid={mail_user} gid=nogroup home={root}/mail/%u allow_all_users=yes
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
  # Unreachable on purpose: without it the auth process cannot add its growing penalty delay
  # (2, 4, 8 … s) to every repeated failed login from 127.0.0.1.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


# Access tokens are checked by POSTing them to the identity provider's introspection endpoint (RFC 7662).
_OAUTH_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf
}}
"""
_OAUTH_CONFIG = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
username_format = %u
active_attribute = active
active_value = true
"""


class DovecotMissing(RuntimeError):
    """Dovecot is not installed: the IMAP tests must not pass by skipping."""


class Dovecot:
    """One private Dovecot instance: `start()`, `add_user()`, `deliver()`, `stop()`.

    Its root lives under /tmp with mode 0755 because Dovecot drops to `nobody` for mail access and
    every parent directory must be traversable (pytest's own temp base is 0700).
    """

    host = "127.0.0.1"

    def __init__(self) -> None:
        for binary in (DOVECOT, DOVEADM):
            if not Path(binary).exists():
                raise DovecotMissing(f"{binary} not found: install Dovecot with `{INSTALL_HINT}`")
        self.root = Path(tempfile.mkdtemp(prefix="pd-dovecot-", dir="/tmp"))
        self.root.chmod(0o755)
        self.config = self.root / "dovecot.conf"
        self.passwd = self.root / "passwd"
        self.port = 0
        # Set before start() to accept XOAUTH2 logins whose tokens this URL vouches for.
        self.oauth_introspection_url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._users: dict[str, str] = {}
        nobody = pwd.getpwnam(_MAIL_USER)
        self._uid, self._gid = nobody.pw_uid, nobody.pw_gid
        for name in ("run", "state"):
            (self.root / name).mkdir(mode=0o755)
        mail = self.root / "mail"
        mail.mkdir(mode=0o755)
        os.chown(mail, self._uid, self._gid)
        self.passwd.write_text("")

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, port: int | None = None) -> None:
        """Start `dovecot -F` and wait until it answers on its port (a restart keeps the port)."""
        if self.process is not None:
            raise RuntimeError("dovecot is already running")
        self.port = port or self.port or free_port()
        oauth = bool(self.oauth_introspection_url)
        if oauth:
            (self.root / "oauth2.conf").write_text(_OAUTH_CONFIG.format(url=self.oauth_introspection_url))
        self.config.write_text(
            _CONFIG.format(
                root=self.root,
                port=self.port,
                mail_user=_MAIL_USER,
                oauth_mechanisms=" xoauth2 oauthbearer" if oauth else "",
                oauth_passdb=_OAUTH_PASSDB.format(root=self.root) if oauth else "",
            )
        )
        log = (self.root / "master.out").open("ab")
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"dovecot exited at start:\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not answer on port {self.port}:\n{self.log_tail()}")

    def kill(self) -> None:
        """Kill the master and its children at once, as a crash would (no goodbye to clients)."""
        if self.process is None:
            return
        self._signal_all("-KILL")
        self.process.wait(timeout=10)
        self.process = None
        self._wait_port_free()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal_all("-KILL")
            self.process.wait(timeout=10)
        self.process = None
        self._wait_port_free()

    def restart(self) -> None:
        self.stop()
        self.start(self.port)

    def cleanup(self) -> None:
        # Killing is safe here (everything is deleted next) and skips the master's second of shutdown.
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def _signal_all(self, signal_name: str) -> None:
        # Children (imap, imap-login, auth) share the master's process group only when started from
        # a shell, so find them by parent instead: they must not outlive a killed master.
        assert self.process is not None
        master = self.process.pid
        children = subprocess.run(
            ["pgrep", "-P", str(master)], capture_output=True, text=True, check=False
        ).stdout.split()
        subprocess.run(["kill", signal_name, str(master), *children], capture_output=True, check=False)

    def _wait_port_free(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
            except OSError:
                return
            time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for name in ("master.out", "dovecot.log"):
            path = self.root / name
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # -- users and mail ---------------------------------------------------------------------------

    def add_user(self, user: str, password: str) -> None:
        self._users[user] = password
        self.passwd.write_text(
            "".join(f"{name}:{{PLAIN}}{secret}::::::nodelay=yes\n" for name, secret in self._users.items())
        )

    def doveadm(self, *args: str, stdin: bytes | None = None) -> str:
        done = subprocess.run([DOVEADM, "-c", str(self.config), *args], input=stdin, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode(errors="replace")

    def deliver(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver one message the way an MDA would (`doveadm save`), no MTA needed."""
        self.doveadm("save", "-u", user, "-m", folder, stdin=raw)

    def deliver_many(self, user: str, messages: list[bytes]) -> None:
        """Drop many messages straight into the INBOX Maildir's new/ directory (thousands per second).

        Dovecot assigns their UIDs when a client next looks at the folder, in file-name order.
        """
        self.status(user, "INBOX")  # creates the Maildir with the right layout and owner
        maildir = self.root / "mail" / user / "Maildir"
        tmp, new = maildir / "tmp", maildir / "new"
        stamp = int(time.time())
        for index, raw in enumerate(messages):
            name = f"{stamp}.M{index:06d}P{os.getpid()}.pdtest"
            path = tmp / name
            path.write_bytes(raw)
            os.chown(path, self._uid, self._gid)
            path.rename(new / name)

    def create_folder(self, user: str, folder: str) -> None:
        self.doveadm("mailbox", "create", "-u", user, folder)

    def delete_folder(self, user: str, folder: str) -> None:
        self.doveadm("mailbox", "delete", "-u", user, "-r", folder)

    def status(self, user: str, folder: str = "INBOX") -> dict[str, int]:
        """messages, unseen, uidnext, uidvalidity of a folder, read by doveadm (not through IMAP)."""
        out = self.doveadm("-f", "flow", "mailbox", "status", "-u", user, "messages unseen uidnext uidvalidity", folder)
        pairs = (word.split("=", 1) for word in out.split() if "=" in word)
        return {key: int(value) for key, value in pairs}

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, set[str]]:
        """Each message's UID and flags in a folder."""
        out = self.doveadm("-f", "tab", "fetch", "-u", user, "uid flags", "mailbox", folder, "all")
        found: dict[int, set[str]] = {}
        for line in out.splitlines()[1:]:
            if not line.strip():
                continue
            uid, _, flags = line.partition("\t")
            found[int(uid)] = set(flags.split())
        return found
