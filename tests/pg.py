"""A real PostgreSQL server for the tests: Debian's binaries, a throwaway cluster in a temporary folder.

`PgServer.start()` runs `initdb` and `pg_ctl start` (as the `postgres` system user when the tests
run as root, since PostgreSQL refuses to run as root), listening on a free loopback port and a
private socket folder. Each test gets its own database, cloned from a migrated template with
`CREATE DATABASE ... TEMPLATE` (a file copy: tens of milliseconds).

The server is found in `/usr/lib/postgresql/*/bin` or on PATH; `make test` installs Debian's
`postgresql` package when it is missing. Set VOC_TEST_POSTGRES_URL to use a server of your own
(a superuser URL; the tests create and drop databases on it).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def find_bindir() -> Path | None:
    """The folder of PostgreSQL's server binaries (newest version first), if installed."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name),
                            reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster for a test session."""

    def __init__(self, url: str, *, root: Path | None = None, bindir: Path | None = None,
                 run_as: str | None = None) -> None:
        self.url = url  # superuser URL of the maintenance database `postgres`
        self.root = root
        self.bindir = bindir
        self.run_as = run_as

    @classmethod
    def start(cls, *, durable: bool = False) -> PgServer:
        """Start a throwaway cluster (or use VOC_TEST_POSTGRES_URL). Tests trade durability for
        speed (fsync off); `durable` keeps PostgreSQL's defaults, with deploy/compose.yaml's
        shared_buffers, for benchmarks that should measure what production would see."""
        external = os.environ.get("VOC_TEST_POSTGRES_URL")
        if external:
            return cls(external)
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install -y postgresql)")
        run_as = "postgres" if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="voc-pg-"))
        data, sockets = root / "data", root / "sock"
        sockets.mkdir()
        if run_as:
            user = pwd.getpwnam(run_as)
            for path in (root, sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
        port = _free_port()
        server = cls(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", root=root, bindir=bindir,
                     run_as=run_as)
        server._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--locale=C.UTF-8", "--no-sync")
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c max_connections=300 "
        options += ("-c shared_buffers=512MB" if durable else
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=128MB")
        server._run("pg_ctl", "-D", str(data), "-l", str(root / "server.log"), "-o", options, "-w",
                    "-t", "60", "start")
        return server

    def _run(self, program: str, *args: str) -> None:
        assert self.bindir is not None
        command = [str(self.bindir / program), *args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd="/")
        if result.returncode != 0:
            log = ""
            if self.root and (self.root / "server.log").exists():
                log = (self.root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr[-2000:]}{log}")

    def stop(self) -> None:
        if self.root is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def database_url(self, name: str) -> str:
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def admin(self, *statements: str) -> None:
        """Run statements on the maintenance database, outside a transaction (CREATE/DROP DATABASE)."""
        engine = create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=None)
        try:
            with engine.connect() as connection:
                for statement in statements:
                    connection.execute(text(statement))
        finally:
            engine.dispose()

    def create_database(self, *, template: str | None = None, prefix: str = "t") -> str:
        """A new empty database (or a clone of `template`); returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        clause = f' TEMPLATE "{template}"' if template else ""
        for attempt in range(20):
            try:
                self.admin(f'CREATE DATABASE "{name}"{clause}')
                break
            except Exception as exc:  # the template is busy for a moment after its last connection closes
                if "being accessed by other users" not in str(exc) or attempt == 19:
                    raise
                time.sleep(0.1)
        return self.database_url(name)

    def copy_of(self, source_url: str, *, prefix: str = "copy") -> str:
        """A new database, migrated, holding every row of the database at `source_url` (what
        `voc db copy` does); returns its URL."""
        from feedback.db import make_engine
        from feedback.dbcopy import copy_database
        from feedback.migrate import upgrade

        url = self.create_database(prefix=prefix)
        upgrade(url)
        source, target = make_engine(source_url), make_engine(url)
        try:
            copy_database(source, target)
        finally:
            source.dispose()
            target.dispose()
        return url

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def restart(self) -> None:
        """Stop and start the server (a database restart mid-run)."""
        assert self.root is not None
        # -l: the restarted server writes to the log, not to the pipe `_run` reads (which would never close).
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"), "-m", "fast", "-w",
                  "restart")
