#!/usr/bin/python3
# The sluiced program itself: command line (--version, --help, --check-config,
# --list-plugins, --data-dir), start-up order, the data-directory lock, the
# listening / ready lines, SIGHUP policy reload that closes revoked sessions,
# and SIGTERM graceful shutdown with exit status 0.
# SPDX-License-Identifier: Apache-2.0
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

tap = st.Tap()
sluiced = st.find_sluiced()
if not sluiced:
    tap.bail_out("sluiced not built (run make)")
env = dict(os.environ, SLUICE_PLUGIN_PATH=st.plugin_path())


def run(*args, **kw):
    return subprocess.run([sluiced, *args], capture_output=True, text=True, env=env,
                          timeout=60, **kw)


# --- command line ---------------------------------------------------------------
r = run("--version")
tap.ok(r.returncode == 0 and r.stdout.startswith("sluiced "), "--version prints the version",
       r.stdout + r.stderr)
r = run("--help")
tap.ok(r.returncode == 0 and "--check-config" in r.stdout and "--data-dir" in r.stdout,
       "--help lists the options")
r = run("--no-such-option")
tap.ok(r.returncode == 2 and "sluiced:" in r.stderr, "an unknown option exits 2 with a message",
       r.stderr)

r = run("--list-plugins")
names = [line.split()[0] for line in r.stdout.splitlines() if line.strip()]
tap.ok(r.returncode == 0 and "storage-file" in names and "auth-key" in names
       and "transport-lines" in names, "--list-plugins lists the plugins on the search path",
       r.stdout + r.stderr)
tap.ok(all(len(line.split()) >= 3 for line in r.stdout.splitlines() if line.strip()),
       "--list-plugins prints `<kind>-<name> <version> <description>`", r.stdout)

key = st.new_key()
work = st.tempdir()
good = st.lines_hub_config(os.path.join(work, "data"),
                           {"sender": {"primary-key": key, "rights": ["Send", "Listen"]}})
good_path = os.path.join(work, "good.conf")
with open(good_path, "w") as f:
    f.write(good)
r = run("--check-config", good_path)
tap.ok(r.returncode == 0 and r.stdout == "" and r.stderr == "",
       "--check-config of a good file exits 0 and prints nothing", r.stdout + r.stderr)
tap.ok(not os.path.exists(os.path.join(work, "data")),
       "--check-config opens no storage")

bad_cases = [
    ("unknown key", good.replace("[storage]\n", "[storage]\nsegment-sise = 1MiB\n"),
     "[storage] segment-sise"),
    ("bad size", good.replace("[storage]\n", "[storage]\nsegment-size = lots\n"),
     "[storage] segment-size"),
    ("unknown section", good + "\n[mystery]\nx = 1\n", "[mystery]"),
    ("bad durability", good.replace("durability = batch", "durability = sometimes"),
     "[stream.events] durability"),
    ("unknown plugin", good.replace("plugin = lines", "plugin = nosuch"), "transport-nosuch"),
    ("plugin's own key", good.replace("stream = events", "stream = events\nfrobnicate = yes"),
     "[transport.lines] frobnicate"),
]
for desc, text, needle in bad_cases:
    path = os.path.join(work, "bad.conf")
    with open(path, "w") as f:
        f.write(text)
    r = run("--check-config", path)
    tap.ok(r.returncode == 1 and needle in r.stderr and path in r.stderr,
           "--check-config refuses %s, naming the file and `%s`" % (desc, needle), r.stderr)

quickstart = os.path.join(st.srcdir(), "examples", "quickstart.conf")
r = run("--check-config", quickstart)
tap.ok(r.returncode == 0 and r.stderr == "", "examples/quickstart.conf is a valid configuration",
       r.stderr)

r = run("--config", os.path.join(work, "missing.conf"))
tap.ok(r.returncode == 1 and "missing.conf" in r.stderr, "a missing config file is named",
       r.stderr)

# --- a running hub ----------------------------------------------------------------
hub = st.Hub(good, workdir=work, data_dir=os.path.join(work, "elsewhere"))
hub.start()
tap.ok(os.path.isdir(os.path.join(work, "elsewhere")), "--data-dir is created and used")
host, port = hub.address("lines")
tap.ok(host == "127.0.0.1" and port > 0, "the listening line names the bound port")
tap.ok(hub.output.index("ready") > 0, "`ready` comes after the listening lines", hub.output)

# A second hub on the same data directory is refused.
second = st.Hub(good, workdir=st.tempdir(), data_dir=hub.data_dir)
try:
    second.start(timeout=20)
    tap.ok(False, "a second sluiced on the same data directory is refused")
    second.stop()
except st.HubError as e:
    tap.ok("in use" in str(e), "a second sluiced on the same data directory is refused", str(e))

# SIGHUP: rotating the policy key closes the live session that used it.
token = st.sas_token("localhost", key, skn="sender", key_is_base64=True)
client = st.LinesClient(hub.address("lines"))
tap.eq(client.auth(token), "ok", "the policy token is accepted")
client.send_json({"body": "before reload"})
tap.ok((client.recv_line() or "").startswith("ok "), "a line is accepted before the reload")
new_key = st.new_key()
with open(hub.config_path, "w") as f:
    f.write(good.replace(key, new_key))
hub.proc.send_signal(1)  # SIGHUP
line = client.recv_line(timeout=5)
tap.ok(line is not None and line.startswith("error revoked"),
       "after SIGHUP with a rotated key the session is closed within a second", repr(line))
tap.ok(client.closed_by_peer(timeout=5), "the connection is closed by the hub")
client.close()
fresh = st.LinesClient(hub.address("lines"))
tap.eq(fresh.auth(st.sas_token("localhost", new_key, skn="sender")), "ok",
       "a token signed with the new key is accepted")
fresh.close()
stale = st.LinesClient(hub.address("lines"))
tap.ok(stale.auth(token) != "ok", "a token signed with the old key is refused")
stale.close()

# A bad file on SIGHUP keeps the running configuration.
with open(hub.config_path, "w") as f:
    f.write("[hub\nbroken")
hub.proc.send_signal(1)
time.sleep(0.3)
tap.ok(hub.running(), "a broken file on SIGHUP does not stop the hub")
again = st.LinesClient(hub.address("lines"))
tap.eq(again.auth(st.sas_token("localhost", new_key, skn="sender")), "ok",
       "the previous policies stay in force")
again.close()

code = hub.stop()
tap.eq(code, 0, "SIGTERM stops sluiced gracefully with exit status 0")
tap.ok("stopped" in hub.log_tail(), "the log says it stopped", hub.log_tail())
tap.done()
