"""A throwaway PostgreSQL cluster for tests and the two-host trial (never for production).

Postgres refuses to run as root, and tests run as root: the cluster belongs to an unprivileged
system user (``postgres`` when the package created it, else ``agentbridge-pg``, created here),
lives in a fresh directory under /tmp owned by that user, listens on a unix socket in that
directory and on a free loopback port, and trusts local connections. ``fsync=off``: the data
is thrown away, and a crash test kills the runner, not the database.

    python -m bridge.devtools.pgcluster /tmp/somewhere   # start; prints the URL; stop with
    python -m bridge.devtools.pgcluster --stop /tmp/somewhere

:meth:`Cluster.halt` and :meth:`Cluster.resume` stop the server and start it again on the same
data and port, for tests of a database restart under a running fleet.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from bridge.errors import AgentbridgeError

INSTALL_HINT = "install it with: bash deploy/install-postgres.sh (apt-get install postgresql)"


class NoPostgres(AgentbridgeError):
    """The PostgreSQL server binaries are not installed."""


def bin_dir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise NoPostgres(f"PostgreSQL server binaries (initdb) not found; {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _user() -> str:
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    for name in ("postgres", "agentbridge-pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "agentbridge-pg",
        ],
        check=True,
    )
    return "agentbridge-pg"


class Cluster:
    """One running cluster; ``url(db)`` for a database in it, ``create(db)`` makes one."""

    def __init__(self, base: Path | None = None) -> None:
        self.bin = bin_dir()
        self.user = _user()
        self.base = Path(base or tempfile.mkdtemp(prefix="agentbridge-pg-"))
        self.base.mkdir(parents=True, exist_ok=True)
        self.data = self.base / "data"
        self.port = _free_port()
        self._as_user = [] if os.geteuid() != 0 else ["runuser", "-u", self.user, "--"]

    def _run(self, *argv: str) -> None:
        proc = subprocess.run([*self._as_user, *argv], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise AgentbridgeError(f"{argv[0]} failed: {(proc.stderr or proc.stdout).strip()}")

    def start(self) -> Cluster:
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.user)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        os.chmod(self.base, 0o755)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "agentbridge",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._options = options
        self.resume()
        return self

    def halt(self, mode: str = "fast") -> None:
        """Stop the server (``pg_ctl stop -m fast|immediate``), keeping its data: every client
        connection is cut, as in a real restart or crash."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def resume(self) -> None:
        """Start the (halted) server again, on the same data and port."""
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.base / "server.log"),
            "-o",
            self._options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://agentbridge@127.0.0.1:{self.port}/{database}"

    def create(self, database: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(database))
            )
        return self.url(database)

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run(
                [
                    *self._as_user,
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-m",
                    "immediate",
                    "stop",
                ],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(self.base, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--stop"]:
        base = Path(argv[1])
        cluster = Cluster.__new__(Cluster)
        cluster.bin, cluster.base, cluster.data = bin_dir(), base, base / "data"
        cluster.user = _user()
        cluster._as_user = [] if os.geteuid() != 0 else ["runuser", "-u", cluster.user, "--"]
        cluster.stop()
        return 0
    cluster = Cluster(Path(argv[0]) if argv else None).start()
    print(cluster.create("agentbridge"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
