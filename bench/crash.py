"""Crash test: kill -9 the server during a signup / password-change / login load, ROUNDS times,
and check after every restart that each answer the server gave still holds.

An acknowledged signup must exist and log in with its password; an acknowledged password
change must be the password in force; a change with no answer (cut by the kill) may have
happened or not, but nothing else. The database must pass its integrity check and hold no
half-created account.

python3 bench/crash.py sqlite|postgres [ROUNDS]     (run by bench/crash)
"""
import concurrent.futures
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import hashlib

BIN = "target/release/tessera"
backend = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
work = tempfile.mkdtemp(prefix="tessera-crash.")
env = dict(os.environ, TESSERA_DATA_DIR=work, TESSERA_LISTEN="127.0.0.1:0",
           TESSERA_RATE_LIMIT_PER_MIN="0", TESSERA_PUBLIC_RATE_LIMIT_PER_MIN="0",
           TESSERA_LOGIN_MAX_ATTEMPTS="0", TESSERA_ARGON2_MEMORY_KIB="1024",
           TESSERA_ARGON2_ITERATIONS="1", TESSERA_MAIL_SEND_LIMIT="100000",
           TESSERA_LOG="info")
pg_db = None
if backend == "postgres":
    pg_db = f"crash_{random.randrange(1 << 30)}"
    admin = os.environ.get("PG_ADMIN", "postgres://postgres@127.0.0.1:5432/test")
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {pg_db}"], check=True)
    env["TESSERA_DATABASE_URL"] = admin.rsplit("/", 1)[0] + "/" + pg_db


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def start():
    log = open(os.path.join(work, "serve.log"), "a")
    p = subprocess.Popen([BIN, "serve"], env=env, stdout=log, stderr=log)
    for _ in range(400):
        text = open(os.path.join(work, "serve.log")).read()
        lines = [l for l in text.splitlines() if "listening" in l]
        if len(lines) > start.count:
            start.count = len(lines)
            addr = lines[-1].split("address=")[1].split()[0]
            return p, "http://" + addr
        time.sleep(0.05)
    raise SystemExit("server did not start")


start.count = 0


def call(base, path, fields, headers):
    data = urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(base + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


app = json.loads(subprocess.run([BIN, "app", "create", "--name", "Crash", "--signup-flow", "none"],
                                env=env, check=True, capture_output=True, text=True).stdout)
H = {"app-token": app["appToken"]}
# handle -> set of passwords it may have (one when every change was answered)
state = {}
lock = threading.Lock()
acknowledged = 0


def worker(base, stop, wid, rnd):
    global acknowledged
    n = 0
    while not stop.is_set():
        n += 1
        handle = f"c{rnd}-{wid}-{n}@crash.test"
        p1, p2 = md5(f"{handle}-1"), md5(f"{handle}-2")
        try:
            status, body = call(base, "/api/appuser/signup", {"handle": handle, "password": p1}, H)
        except Exception:
            return  # the server is gone: an unanswered signup proves nothing either way
        if status != 200:
            continue
        token = json.loads(body)["access-token"]
        with lock:
            state[handle] = {p1}
            acknowledged += 1
        with lock:
            state[handle] = {p1, p2}  # in flight: either may hold
        try:
            status, _ = call(base, "/api/appuser/changePassword",
                             {"password": p1, "newPassword": p2}, {"access-token": token})
        except Exception:
            return
        with lock:
            if status == 200:
                state[handle] = {p2}
                acknowledged += 1
            else:
                state[handle] = {p1}
        try:
            call(base, "/api/appuser/login", {"handle": handle, "password": p2 if status == 200 else p1}, H)
        except Exception:
            return


def check(base):
    def holds(item):
        handle, passwords = item
        return any(call(base, "/api/appuser/login", {"handle": handle, "password": p}, H)[0] == 200
                   for p in passwords)

    items = list(state.items())
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return [h for (h, _), ok in zip(items, pool.map(holds, items)) if not ok]


# The load creates password accounts only: one without a password hash was cut half-way.
HALF_CREATED = "SELECT count(*) FROM users WHERE password_hash IS NULL"


def integrity():
    """The database's own checks: SQLite's integrity and foreign-key checks; on PostgreSQL,
    amcheck over every B-tree index. Returns ("ok" or what failed, half-created accounts)."""
    if backend == "sqlite":
        db = sqlite3.connect(os.path.join(work, "tessera.db"))
        ok = db.execute("PRAGMA integrity_check").fetchone()[0]
        if db.execute("PRAGMA foreign_key_check").fetchall():
            ok = "foreign keys broken"
        half = db.execute(HALF_CREATED).fetchone()[0]
        db.close()
        return ok, half

    def psql(sql):
        return subprocess.run(["psql", env["TESSERA_DATABASE_URL"], "-v", "ON_ERROR_STOP=1", "-tAc", sql],
                              capture_output=True, text=True, check=True).stdout.strip()

    psql("CREATE EXTENSION IF NOT EXISTS amcheck")
    checked = psql("SELECT count(bt_index_check(c.oid, true)) FROM pg_index i "
                   "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
                   "JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "WHERE a.amname = 'btree' AND n.nspname = 'public'")
    return ("ok" if int(checked) > 0 else "no index checked"), int(psql(HALF_CREATED))


def run_rounds():
    """Returns (rounds run, writes lost, whether every check passed)."""
    global proc
    total_lost, proc, base = 0, *start()
    for rnd in range(1, rounds + 1):
        stop = threading.Event()
        threads = [threading.Thread(target=worker, args=(base, stop, w, rnd)) for w in range(8)]
        for t in threads:
            t.start()
        time.sleep(random.uniform(1.0, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stop.set()
        for t in threads:
            t.join()
        proc, base = start()
        lost = check(base)
        ok, half = integrity()
        total_lost += len(lost)
        print(f"round {rnd:2}: acknowledged so far {acknowledged:6}, accounts {len(state):6}, "
              f"lost {len(lost)}, integrity {ok}, half-created {half}", flush=True)
        if lost or ok != "ok" or half:
            print("FAILED:", lost[:5])
            return rnd, total_lost, False
    return rounds, total_lost, True


proc = None
try:
    done, total_lost, passed = run_rounds()
finally:
    if proc is not None:
        proc.kill()
        proc.wait()
    if pg_db:
        subprocess.run(["psql", os.environ.get("PG_ADMIN", "postgres://postgres@127.0.0.1:5432/test"),
                        "-qc", f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)"])
    shutil.rmtree(work, ignore_errors=True)
print(f"{backend}: {done} rounds of kill -9, {acknowledged} acknowledged writes, {total_lost} lost"
      + ("" if passed else ", FAILED"))
sys.exit(0 if passed else 1)
