#!/usr/bin/python3
# MQTT benchmark: the same load generator (tests/bench/mqtt-load, on
# libmosquitto) against Debian's mosquitto 2.0 and against sluiced's
# transport-mqtt, in the same run, one fresh broker per measurement:
#
#   qos0-4to1    QoS 0, 4 publishers -> 1 subscriber        (received/s)
#   qos1-4to1    QoS 1, same; on sluiced the bench topics are mapped to a
#                stream with durability `batch` (PUBACK after fsync)
#   qos0-fanout  QoS 0, 1 publisher -> 10 subscribers       (deliveries/s)
#   idle         10,000 idle connections                    (RSS per connection)
#
# 100-byte payloads carrying the publish time; the generator reports
# published/s, received/s, lost, p50 / p99 publish -> receive. The broker's
# CPU (utime + stime from /proc/PID/stat) gives messages per CPU-second, and
# VmHWM its peak RSS. Every measurement runs BENCH_RUNS times (3); the table
# shows medians, and the ratio to mosquitto is taken per run, then its median.
#
#   make bench-mqtt                                  (from the build directory)
#   tests/bench/bench-mqtt.py --load tests/bench/mqtt-load --seconds 10 --runs 3
#
# Sluice's access for the plain bench topics, tried in this order (--sluice-auth):
#   anonymous  [auth] allow-anonymous + [mqtt-acl.bench] principal = anonymous
#   policy     Username = policy name, Password = the policy's SAS token,
#              [mqtt-acl.bench] principal = policy:bench
#   device     no plain topics: publishers are devices sending telemetry
#              (devices/{id}/messages/events/ into a `batch` stream), no
#              subscribers; publish rates only, so no ratio for the pub/sub rows
# SPDX-License-Identifier: Apache-2.0

import argparse
import itertools
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

MOSQUITTO = "/usr/sbin/mosquitto"
HOST = "localhost"
PAYLOAD = 100
IDLE = 10000
WINDOW = 100

# name, qos, publishers, subscribers, headline metric, target ratio
SCENARIOS = [
    ("qos0-4to1", 0, 4, 1, "received/s", 1.3),
    ("qos1-4to1", 1, 4, 1, "received/s", 1.0),
    ("qos0-fanout", 0, 1, 10, "deliveries/s", 1.5),
]
TARGET_IDLE_BYTES = 2048
_hub_numbers = itertools.count(1)


def die(message):
    print("bench-mqtt: " + message, file=sys.stderr)
    sys.exit(1)


def note(message):
    print("# " + message, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def cpu_seconds(pid):
    """utime + stime of a process, in seconds; None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


# --- brokers -------------------------------------------------------------------


class Mosquitto:
    name = "mosquitto"

    def __init__(self, work):
        self.work = work
        self.proc = None
        self.port = None

    def start(self, durable=False):
        self.port = free_port()
        conf = os.path.join(self.work, "mosquitto.conf")
        # max_queued_messages 0: no limit, so that a slow subscriber loses
        # nothing (mosquitto's default of 1000 drops QoS 1 messages).
        # max_inflight_messages: the same window the generator keeps.
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\n"
                    "allow_anonymous true\n"
                    "max_queued_messages 0\n"
                    "max_inflight_messages %d\n"
                    "persistence false\n"
                    "log_dest stderr\n"
                    "log_type error\n"
                    "log_type warning\n" % (self.port, WINDOW))
        self.log = open(os.path.join(self.work, "mosquitto.log"), "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if not wait_port(self.port):
            self.stop()
            die("mosquitto did not start; see %s/mosquitto.log" % self.work)

    @property
    def pid(self):
        return self.proc.pid

    def client_args(self, scenario, durable):
        return ["--port", str(self.port), "--topic", "bench/load"], {}

    def idle_args(self):
        return ["--port", str(self.port)], {}

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.log.close()
        return 0


class Sluiced:
    name = "sluiced"

    def __init__(self, work, mode):
        self.work = work
        self.mode = mode          # anonymous | policy | device
        self.key = st.new_key()
        self.hub = None
        self.stream_bytes = 0
        self.starts = 0
        self.devices = {}

    def config(self, durable):
        data_dir = os.path.join(self.work, "data-%d" % self.starts)
        sections = [
            ("hub", {"hostname": HOST, "data-dir": data_dir, "workers": 2}),
            ("storage", {"plugin": "file"}),
            ("auth", {"chain": "key", "allow-anonymous": self.mode == "anonymous"}),
            ("auth.key", {"plugin": "key"}),
            ("policy.bench", {"primary-key": self.key,
                              "rights": ["RegistryRead", "RegistryWrite", "ServiceConnect",
                                         "DeviceConnect", "Send", "Listen"]}),
            ("stream.events", {"partitions": 4, "durability": "batch"}),
        ]
        mqtt = {"plugin": "mqtt", "listen": "127.0.0.1:0", "max-connections": IDLE + 100}
        sections.append(("transport.mqtt", mqtt))
        if self.mode == "device":
            # Devices are created over the HTTPS registry.
            sections.append(("transport.https", {"plugin": "https", "listen": "127.0.0.1:0"}))
        else:
            sections.append(("mqtt-acl.bench", {
                "principal": "anonymous" if self.mode == "anonymous" else "policy:bench",
                "publish": "bench/#", "subscribe": "bench/#"}))
        if durable:
            sections.append(("stream.bench", {"partitions": 4, "durability": "batch"}))
            if self.mode != "device":
                sections.append(("mqtt-map.bench", {"filter": "bench/#", "stream": "bench",
                                                    "key": "topic", "direction": "in"}))
        return data_dir, st.config_text(sections)

    def start(self, durable=False):
        self.starts = next(_hub_numbers)
        hub_dir = os.path.join(self.work, "hub-%d" % self.starts)
        os.makedirs(hub_dir)
        data_dir, text = self.config(durable)
        self.hub = st.Hub(text, workdir=hub_dir, data_dir=data_dir)
        self.hub.start()
        if self.mode == "device":
            self.create_devices()

    def create_devices(self):
        https = self.hub.address("https", "plain")
        owner = st.sas_token(HOST, self.key, skn="bench")
        self.devices = {}
        for i in range(4):
            device = "bench-pub-%d" % i
            status, _, data = st.http_request(
                https, "PUT", "/devices/" + device, body=json.dumps({"deviceId": device}),
                headers={"Authorization": owner, "Content-Type": "application/json"})
            if status != 200:
                raise st.HubError("PUT /devices/%s: %d %r" % (device, status, data))
            key = json.loads(data)["authentication"]["symmetricKey"]["primaryKey"]
            self.devices[device] = st.sas_token("%s/devices/%s" % (HOST, device), key)

    @property
    def pid(self):
        return self.hub.pid

    def auth_file(self, lines):
        path = os.path.join(self.work, "auth-%d.tsv" % self.starts)
        with open(path, "w") as f:
            for line in lines:
                f.write("\t".join(line) + "\n")
        return path

    def client_args(self, scenario, durable):
        host, port = self.hub.address("mqtt", "plain")
        args = ["--host", host, "--port", str(port)]
        env = {}
        if self.mode == "device":
            lines = [(d, "%s/%s/?api-version=2021-04-12" % (HOST, d), tok)
                     for d, tok in sorted(self.devices.items())]
            args += ["--auth-file", self.auth_file(lines),
                     "--topic", "devices/{id}/messages/events/"]
        else:
            args += ["--topic", "bench/load"]
            if self.mode == "policy":
                args += ["--username", "bench"]
                env["MQTT_LOAD_PASSWORD"] = st.sas_token(HOST, self.key, skn="bench")
        return args, env

    def idle_args(self):
        host, port = self.hub.address("mqtt", "plain")
        args = ["--host", host, "--port", str(port)]
        env = {}
        if self.mode != "anonymous":
            # A policy login needs no device per connection.
            args += ["--username", "bench"]
            env["MQTT_LOAD_PASSWORD"] = st.sas_token(HOST, self.key, skn="bench")
        return args, env

    def stop(self):
        code = self.hub.stop() if self.hub else 0
        if code != 0:
            note("sluiced exited with %s:\n%s" % (code, self.hub.log_tail()))
        if self.hub is not None:
            # What the bench stream holds (storage-file's layout), as evidence
            # that the mapping appended; then the space goes back.
            logs = os.path.join(self.hub.data_dir, "logs", "bench")
            self.stream_bytes = sum(os.path.getsize(os.path.join(d, f))
                                    for d, _, files in os.walk(logs)
                                    for f in files if f.endswith(".log"))
            if not os.environ.get("SLUICE_KEEP_TMP"):
                shutil.rmtree(self.hub.data_dir, ignore_errors=True)
        self.hub = None
        return code


# --- the generator -----------------------------------------------------------------


class Runner:
    def __init__(self, load, args):
        self.load = load
        self.args = args
        self.commands = {}

    def run(self, broker, extra, env, timeout):
        cmd = [self.load] + extra
        res = subprocess.run(cmd, capture_output=True, timeout=timeout,
                             env=dict(os.environ, **env))
        out = res.stdout.decode(errors="replace").strip().splitlines()
        try:
            result = json.loads(out[-1])
        except (IndexError, ValueError):
            result = {"error": "no JSON from mqtt-load (exit %d): %s"
                      % (res.returncode, res.stderr.decode(errors="replace"))}
        result["exit"] = res.returncode
        result["cmd"] = " ".join(cmd)
        return result

    def load_args(self, scenario, publishers, subscribers, seconds=None, count=None):
        name, qos = scenario[0], scenario[1]
        args = ["--qos", str(qos), "--publishers", str(publishers),
                "--subscribers", str(subscribers), "--size", str(PAYLOAD),
                "--window", str(WINDOW), "--id-prefix", name]
        if count is not None:
            args += ["--count", str(count)]
        else:
            args += ["--seconds", str(seconds)]
        return args

    def measure(self, broker, scenario, durable):
        name, qos, pubs, subs, _, _ = scenario
        if isinstance(broker, Sluiced) and broker.mode == "device":
            subs = 0
        base, env = broker.client_args(scenario, durable)
        if self.args.warmup > 0:
            w = self.run(broker, base + self.load_args(scenario, pubs, subs, self.args.warmup),
                         env, self.args.warmup + 120)
            if w.get("error"):
                note("%s %s warm-up: %s" % (name, broker.name, w["error"]))
        cpu0 = cpu_seconds(broker.pid)
        r = self.run(broker, base + self.load_args(scenario, pubs, subs, self.args.seconds),
                     env, self.args.seconds + 180)
        cpu1 = cpu_seconds(broker.pid)
        if cpu1 is None:
            r["error"] = (r.get("error", "") + " the broker exited during the run").strip()
        r["cpu"] = cpu1 - cpu0 if cpu1 is not None else None
        r["rss_kb"] = memory_kb(broker.pid, "VmHWM")
        r["publish_only"] = subs == 0
        delivered = r.get("published", 0) if subs == 0 else r.get("received", 0)
        r["per_cpu_s"] = delivered / r["cpu"] if r["cpu"] else None
        self.commands.setdefault((broker.name, name), r["cmd"])
        return r

    def measure_idle(self, broker):
        base, env = broker.idle_args()
        cmd = [self.load] + base + ["--idle", str(IDLE), "--keepalive", "600",
                                    "--id-prefix", "idle"]
        self.commands.setdefault((broker.name, "idle"), " ".join(cmd))
        before = memory_kb(broker.pid, "VmRSS")
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=dict(os.environ, **env))
        first = proc.stdout.readline().decode(errors="replace")
        try:
            opened = json.loads(first)
        except ValueError:
            opened = {"error": "no JSON from mqtt-load: %r" % first}
        # Let the broker finish what each CONNECT started (the CONNACK is
        # sent before its bookkeeping is done), then read its RSS: stable
        # over two reads 200 ms apart, or after 5 s.
        rss = memory_kb(broker.pid, "VmRSS")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.2)
            again = memory_kb(broker.pid, "VmRSS")
            if again == rss:
                break
            rss = again
        try:
            out, err = proc.communicate(b"go\n", timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        ended = {}
        for line in out.decode(errors="replace").splitlines():
            try:
                ended = json.loads(line)
            except ValueError:
                pass
        connected = opened.get("connected", 0)
        r = {"connected": connected, "failed": opened.get("failed"),
             "closed": ended.get("closed_by_broker"), "error": opened.get("error"),
             "rss_before_kb": before, "rss_kb": rss,
             "per_conn": (rss - before) * 1024 / connected if connected else None,
             "exit": proc.returncode}
        if r["error"] or err.strip():
            r["error"] = (r["error"] or "") + err.decode(errors="replace").strip()
        return r


# --- sluiced's access mode ------------------------------------------------------


def probe_sluiced(runner, work, wanted):
    """The first access mode in which sluiced starts and carries a QoS 1
    round trip on bench/load (device: a QoS 1 telemetry publish)."""
    modes = ["anonymous", "policy", "device"] if wanted == "auto" else [wanted]
    for mode in modes:
        broker = Sluiced(work, mode)
        try:
            broker.start()
        except st.HubError as e:
            lines = [l for l in str(e).splitlines() if l.strip()]
            note("sluiced (%s) did not start: %s" % (mode, " / ".join(lines[:1] + lines[-2:])))
            continue
        try:
            scenario = ("probe", 1, 1, 1, "", 0)
            base, env = broker.client_args(scenario, False)
            subs = 0 if mode == "device" else 1
            r = runner.run(broker, base + runner.load_args(scenario, 1, subs, count=20)
                           + ["--drain", "3"], env, 60)
        finally:
            broker.stop()
        want = 20 * subs if subs else 0
        if r.get("exit") == 0 and r.get("published") == 20 and r.get("received") == want:
            note("sluiced: bench clients log in with access mode '%s'" % mode)
            return mode
        note("sluiced (%s): probe failed: %s" % (mode, r.get("error") or r))
    return None


# --- main -------------------------------------------------------------------------


def fmt(value, spec="%.0f"):
    return "-" if value is None else spec % value


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", default=os.path.join(st.builddir(), "tests", "bench",
                                                       "mqtt-load"))
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 10)))
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 3)))
    parser.add_argument("--brokers", default="mosquitto,sluiced")
    parser.add_argument("--scenarios", default="qos0-4to1,qos1-4to1,qos0-fanout,idle")
    parser.add_argument("--sluice-auth", default=os.environ.get("BENCH_SLUICE_AUTH", "auto"),
                        choices=["auto", "anonymous", "policy", "device"])
    args = parser.parse_args()

    if not os.access(args.load, os.X_OK):
        die("%s is not built (make tests/bench/mqtt-load)" % args.load)
    brokers = args.brokers.split(",")
    scenarios = args.scenarios.split(",")
    if "mosquitto" in brokers and not os.access(MOSQUITTO, os.X_OK):
        die("%s not found: install the Debian package mosquitto (apt-get install mosquitto)"
            % MOSQUITTO)
    # 10,000 connections on each side; sluiced and mosquitto inherit this.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < IDLE + 1000 and "idle" in scenarios:
        die("RLIMIT_NOFILE is %d: the idle test needs more than %d descriptors" % (hard, IDLE))

    # `make` runs this with the test environment; its allocator checks would
    # be measured too, in both brokers and in the generator.
    for name in ("MALLOC_CHECK_", "G_SLICE", "G_DEBUG", "MALLOC_PERTURB_"):
        os.environ.pop(name, None)
    work = st.tempdir("sluice-bench-mqtt-")
    runner = Runner(args.load, args)
    mode = None
    if "sluiced" in brokers:
        mode = probe_sluiced(runner, work, args.sluice_auth)
        if mode is None:
            die("sluiced carries no bench traffic in any access mode (see above)")

    rows = []      # dicts with run, scenario, broker, result
    for run in range(args.runs):
        note("run %d of %d" % (run + 1, args.runs))
        for scenario in SCENARIOS:
            name = scenario[0]
            if name not in scenarios:
                continue
            for bname in brokers:
                if bname == "sluiced" and mode == "device" and scenario[3] > 1:
                    continue   # fan-out needs subscribers
                broker = Mosquitto(work) if bname == "mosquitto" else Sluiced(work, mode)
                durable = scenario[1] == 1
                broker.start(durable=durable)
                try:
                    r = runner.measure(broker, scenario, durable)
                finally:
                    code = broker.stop()
                r.update(run=run, scenario=name, broker=bname, code=code)
                if bname == "sluiced" and durable and mode != "device":
                    r["stream_bytes"] = broker.stream_bytes
                    note("%s sluiced: stream bench holds %.1f MB for %d acknowledged publishes "
                         "(warm-up included)" % (name, broker.stream_bytes / 1e6,
                                                 r.get("published", 0)))
                rows.append(r)
                note("%-12s %-10s pub %9.0f/s  recv %9.0f/s  lost %d  p50 %s ms  p99 %s ms  "
                     "cpu %.1f s (generator %.1f s)  hwm %d MB%s" % (
                         name, bname, r.get("published_per_s", 0), r.get("received_per_s", 0),
                         r.get("lost", 0), fmt(r.get("p50_ms"), "%.2f"),
                         fmt(r.get("p99_ms"), "%.2f"), r["cpu"] or 0, r.get("load_cpu_seconds", 0),
                         r["rss_kb"] // 1024,
                         "  ERROR " + r["error"] if r.get("error") else ""))
        if "idle" in scenarios:
            for bname in brokers:
                broker = Mosquitto(work) if bname == "mosquitto" else Sluiced(work, mode)
                broker.start()
                try:
                    r = runner.measure_idle(broker)
                finally:
                    code = broker.stop()
                r.update(run=run, scenario="idle", broker=bname, code=code)
                rows.append(r)
                note("idle         %-10s %d connected, %s closed by the broker, RSS %d -> %d kB: "
                     "%s bytes per connection%s" % (
                         bname, r["connected"], r["closed"], r["rss_before_kb"], r["rss_kb"],
                         fmt(r["per_conn"]), "  ERROR " + r["error"] if r.get("error") else ""))

    report(rows, runner, args, brokers, scenarios, mode)
    return 0


def report(rows, runner, args, brokers, scenarios, mode):
    def headline(r):
        if r.get("publish_only"):
            return r.get("published_per_s")
        return r.get("received_per_s")

    print()
    print("Medians of %d runs (%g s each after %g s of warm-up; %d-byte payloads; "
          "machine: %d cores shared by the generator and the broker):"
          % (args.runs, args.seconds, args.warmup, PAYLOAD, os.cpu_count()))
    print()
    print("| scenario | broker | published/s | received/s | lost | p50 (ms) | p99 (ms) "
          "| broker CPU (s) | msgs / CPU-s | peak RSS (MB) | generator CPU (s) | x mosquitto "
          "| runs with errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    verdicts = []
    for scenario in SCENARIOS:
        name, target = scenario[0], scenario[5]
        if name not in scenarios:
            continue
        base = {r["run"]: headline(r) for r in rows
                if r["scenario"] == name and r["broker"] == "mosquitto"}
        for bname in brokers:
            rs = [r for r in rows if r["scenario"] == name and r["broker"] == bname]
            if not rs:
                continue
            ratios = [headline(r) / base[r["run"]] for r in rs
                      if base.get(r["run"]) and headline(r) is not None
                      and not r.get("publish_only")]
            ratio = median(ratios) if bname != "mosquitto" else None
            label = name + (" (publish only)" if rs[0].get("publish_only") else "")
            if bname == "sluiced" and name == "qos1-4to1" and mode != "device":
                label += " (stream, batch)"
            lost = max(r.get("lost", 0) for r in rs)
            errors = [r["error"] for r in rs if r.get("error")]
            print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |" % (
                label, bname, fmt(median(r.get("published_per_s") for r in rs)),
                "-" if rs[0].get("publish_only") else fmt(median(r.get("received_per_s")
                                                                  for r in rs)),
                lost, fmt(median(r.get("p50_ms") for r in rs if r.get("p50_ms", -1) >= 0),
                          "%.2f"),
                fmt(median(r.get("p99_ms") for r in rs if r.get("p99_ms", -1) >= 0), "%.2f"),
                fmt(median(r["cpu"] for r in rs), "%.1f"),
                fmt(median(r.get("per_cpu_s") for r in rs)),
                fmt(median(r["rss_kb"] / 1024 for r in rs), "%.1f"),
                fmt(median(r.get("load_cpu_seconds") for r in rs), "%.1f"),
                fmt(ratio, "%.2f") if bname != "mosquitto" else "1.00", len(errors)))
            if errors:
                verdicts.append("warning: %s %s: %s" % (name, bname, "; ".join(errors)))
            short = [r for r in rs if "stream_bytes" in r
                     and r["stream_bytes"] < r.get("published", 0) * PAYLOAD]
            if short:
                verdicts.append("warning: %s sluiced: the bench stream holds fewer bytes than "
                                "the acknowledged payloads; is [mqtt-map.bench] in effect?" % name)
            if bname == "sluiced":
                if ratio is None:
                    verdicts.append("target %s >= %.1fx mosquitto: not measured (%s)"
                                    % (name, target, "publish only" if rs[0].get("publish_only")
                                       else "no ratio"))
                else:
                    ok = ratio >= target and (name != "qos1-4to1" or lost == 0)
                    # QoS 0 may drop (counted), but the reader should see it.
                    verdicts.append("target %s >= %.1fx mosquitto%s: %.2fx -> %s%s" % (
                        name, target, ", zero lost" if name == "qos1-4to1" else "", ratio,
                        "met" if ok else "NOT met",
                        " (up to %d lost in a run)" % lost if lost and ok else ""))
    if "idle" in scenarios:
        for bname in brokers:
            rs = [r for r in rows if r["scenario"] == "idle" and r["broker"] == bname]
            if not rs:
                continue
            per = median(r["per_conn"] for r in rs)
            bad = [r for r in rs if r["connected"] != IDLE or r.get("closed") or r.get("error")]
            print("| idle %d connections | %s | - | - | - | - | - | - | - | %s | - | %s B/conn "
                  "| %d |" % (IDLE, bname, fmt(median(r["rss_kb"] / 1024 for r in rs), "%.1f"),
                              fmt(per), len(bad)))
            for r in bad:
                verdicts.append("warning: idle %s run %d: %d of %d connected, %s closed, %s" % (
                    bname, r["run"] + 1, r["connected"], IDLE, r.get("closed"), r.get("error")))
            if bname == "sluiced":
                verdicts.append("target idle <= %d B RSS per connection: %s -> %s" % (
                    TARGET_IDLE_BYTES, fmt(per),
                    "met" if per is not None and per <= TARGET_IDLE_BYTES and not bad
                    else "NOT met"))
    print()
    print("received/s counts deliveries (each subscriber's copy); msgs / CPU-s is "
          "deliveries (or, publish only, acknowledged publishes) per broker CPU-second; "
          "lost is the worst run; a run with errors (a client's connection lost) still "
          "counts in the medians, see the warnings.")
    if "sluiced" in brokers:
        print("sluiced access mode: %s" % mode)
    for v in verdicts:
        print(v)
    print()
    print("Commands (one run; the broker's port changes per run):")
    for (bname, name), cmd in runner.commands.items():
        print("  %s / %s: %s" % (bname, name, cmd))


if __name__ == "__main__":
    sys.exit(main())
