#!/usr/bin/env python3
"""Fuzz the reference server's REST API with schemathesis, then audit its database.

Run by .ci/run (through .ci/fuzz-api, which makes the virtual environment):

1. starts the debug `supergroup-server` on 127.0.0.1 (port 0) with a fresh SQLite file;
2. creates a conversation `general` with participants alice and bob (the ids the
   fuzzer is told to use half the time, .ci/schemathesis.toml);
3. runs `schemathesis run <server>/openapi.json` for a bounded time with the
   bearer secret and every check but `positive_data_acceptance` (no 5xx, status
   codes, content types, headers and bodies as the schema says, schema-invalid
   requests refused, auth enforced, deleted resources gone...), keeping a HAR file
   of every request and response;
4. stops the server and audits the database against the HAR: every user,
   conversation, participant, message and webhook stored must be explained by a
   request the server accepted (2xx). A row only a refused request could have
   written fails the run. The audit then proves it can fail: on a copy of the
   database with one row of each kind added, it must report all five.

`positive_data_acceptance` is left out: SPEC.md refuses schema-valid requests for
reasons a schema cannot state (a sender who is not a participant, an unknown
`startingAfter`, a webhook URL that is not http(s)), each with a documented 4xx.

Environment: FUZZ_SECONDS (time budget, default 90), FUZZ_SEED (default 1; the
same seed replays the same run), FUZZ_OUT (where the HAR and JUnit reports go).
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP, SECRET = "demo", "sk_demo"
# Longest wait for the server to print its address, and for it to stop.
START_WAIT_S, STOP_WAIT_S = 60, 15


def start_server(binary, db):
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--db", db, "--app", f"{APP}:{SECRET}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on " in line:
            return proc, line.split("listening on ", 1)[1].strip()
    proc.kill()
    sys.exit(f"fuzz: the server did not say where it listens within {START_WAIT_S} s")


def call(base, method, path, body):
    req = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return {"method": method, "url": base + path, "status": resp.status, "body": json.dumps(body)}


def seed(base):
    """The data the fuzzer's dictionaries point at; returned as accepted requests for the audit."""
    return [call(base, "PUT", f"/v1/{APP}/conversations/general", {"participants": ["alice", "bob"]})]


def har_requests(har_path):
    with open(har_path) as f:
        entries = json.load(f)["log"]["entries"]
    out = []
    for e in entries:
        req = e["request"]
        out.append(
            {
                "method": req["method"],
                "url": req["url"],
                "status": e["response"]["status"],
                "body": (req.get("postData") or {}).get("text"),
            }
        )
    return out


def segments(url):
    """The path's segments, percent-decoded as the server decodes them (None if not UTF-8)."""
    path = urllib.parse.urlsplit(url).path
    try:
        return [urllib.parse.unquote(s, errors="strict") for s in path.strip("/").split("/")]
    except UnicodeDecodeError:
        return None


def explained(requests):
    """What the accepted write requests could have stored."""
    ok = {"users": set(), "conversations": set(), "participants": set(), "messages": {}, "webhooks": set()}
    for r in requests:
        if not 200 <= r["status"] < 300 or r["method"] not in ("PUT", "POST", "PATCH"):
            continue
        segs = segments(r["url"])
        if not segs or segs[:2] != ["v1", APP]:
            continue
        rest = segs[2:]
        body = json.loads(r["body"]) if r["body"] else None
        if r["method"] == "PUT" and len(rest) == 2 and rest[0] == "users":
            ok["users"].add(rest[1])
        elif r["method"] == "PUT" and len(rest) == 2 and rest[0] == "conversations":
            ok["conversations"].add(rest[1])
            for user in (body or {}).get("participants") or []:
                ok["participants"].add((rest[1], user))
                ok["users"].add(user)
        elif r["method"] == "PUT" and len(rest) == 4 and rest[0] == "conversations" and rest[2] == "participants":
            ok["participants"].add((rest[1], rest[3]))
            ok["users"].add(rest[3])
        elif r["method"] == "POST" and len(rest) == 3 and rest[0] == "conversations" and rest[2] == "messages":
            for item in body or []:
                ok["messages"].setdefault(rest[1], set()).add(item.get("text"))
        elif r["method"] == "PUT" and rest == ["webhooks"]:
            ok["webhooks"].add((body or {}).get("url"))
    return ok


def audit(db, ok):
    """Rows no accepted request explains, as readable strings."""
    c = sqlite3.connect(db)
    bad = []
    for (user,) in c.execute("SELECT id FROM users WHERE app = ?", (APP,)):
        if user not in ok["users"]:
            bad.append(f"user {user!r}")
    for (conv,) in c.execute("SELECT id FROM conversations WHERE app = ?", (APP,)):
        if conv not in ok["conversations"]:
            bad.append(f"conversation {conv!r}")
    for conv, user in c.execute("SELECT conv, user FROM participants WHERE app = ?", (APP,)):
        if (conv, user) not in ok["participants"]:
            bad.append(f"participant {user!r} of {conv!r}")
    for conv, text in c.execute("SELECT conv, text FROM messages WHERE app = ?", (APP,)):
        if text not in ok["messages"].get(conv, set()):
            bad.append(f"message {text!r} in {conv!r}")
    for (url,) in c.execute("SELECT url FROM webhooks WHERE app = ?", (APP,)):
        if url not in ok["webhooks"]:
            bad.append(f"webhook {url!r}")
    counts = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ok}
    c.close()
    return bad, counts


def audit_can_fail(db, ok, workdir):
    """The audit must flag a row of each kind that no accepted request wrote."""
    copy = os.path.join(workdir, "audit-self-test.db")
    shutil.copy(db, copy)
    c = sqlite3.connect(copy)
    rogue = "rogue-\u00e9"
    c.execute("INSERT INTO users (app, id, created_at) VALUES (?, ?, 0)", (APP, rogue))
    c.execute("INSERT INTO conversations (app, id, created_at) VALUES (?, ?, 0)", (APP, rogue))
    c.execute(
        "INSERT INTO participants (app, conv, user, access, notify, joined_seq) VALUES (?, 'general', ?, 'ReadWrite', 'true', 0)",
        (APP, rogue),
    )
    c.execute(
        "INSERT INTO messages (app, conv, id, type, text, custom, created_at, origin) "
        "VALUES (?, 'general', ?, 'SystemMessage', ?, '{}', 0, 'rest')",
        (APP, rogue, rogue),
    )
    c.execute("INSERT OR REPLACE INTO webhooks (app, url) VALUES (?, ?)", (APP, "http://" + rogue))
    c.commit()
    c.close()
    bad, _ = audit(copy, ok)
    if len(bad) != 5:
        sys.exit(f"fuzz: the audit's self-test expected 5 unexplained rows, found {len(bad)}: {bad}")


def main():
    seconds = int(os.environ.get("FUZZ_SECONDS", "90"))
    seed_value = os.environ.get("FUZZ_SEED", "1")
    venv_bin = os.path.join(ROOT, ".venv-ci", "bin")
    binary = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "supergroup-server")
    workdir = tempfile.mkdtemp(prefix="fuzz-api-")
    out = os.environ.get("FUZZ_OUT", os.path.join(workdir, "reports"))
    db = os.path.join(workdir, "fuzz.db")
    server, base = start_server(binary, db)
    try:
        seeded = seed(base)
        st = subprocess.run(
            [
                os.path.join(venv_bin, "schemathesis"),
                "--config-file", os.path.join(ROOT, ".ci", "schemathesis.toml"),
                "run", f"{base}/openapi.json",
                "--header", f"Authorization: Bearer {SECRET}",
                "--checks", "all",
                "--exclude-checks", "positive_data_acceptance",
                "--max-time", str(seconds),
                "--seed", seed_value,
                "--report", "har,junit",
                "--report-dir", out,
                "--report-har-path", os.path.join(out, "requests.har"),
                "--report-junit-path", os.path.join(out, "junit.xml"),
            ],
            timeout=seconds + 300,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            sys.exit(f"fuzz: the server did not stop within {STOP_WAIT_S} s of SIGTERM")
    if server.returncode != 0:
        sys.exit(f"fuzz: the server exited with {server.returncode}")

    requests = seeded + har_requests(os.path.join(out, "requests.har"))
    ok = explained(requests)
    bad, counts = audit(db, ok)
    audit_can_fail(db, ok, workdir)
    refused = sum(1 for r in requests if r["method"] in ("PUT", "POST", "PATCH", "DELETE") and r["status"] >= 400)
    print(
        f"fuzz audit: {len(requests)} requests ({refused} refused writes); stored "
        + ", ".join(f"{n} {t}" for t, n in counts.items())
        + f"; {len(bad)} rows no accepted request explains"
    )
    for row in bad[:20]:
        print(f"  stored by no accepted request: {row}")
    if st.returncode != 0 or bad:
        print(f"fuzz: FAILED (schemathesis exit {st.returncode}; reports in {out})")
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    print("fuzz: no failures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
