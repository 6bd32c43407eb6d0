#!/usr/bin/python3
# HTTP telemetry benchmark: wrk (keep-alive, 100-byte bodies, 64
# connections) POSTs /devices/{id}/messages/events to sluiced with
# transport-https (durability none and batch, plain and TLS) and, in the same
# run, the same requests to nginx (Debian's nginx-light) answering
# `return 204`. Prints a markdown table of requests/s, p50, p99 and the
# ratio to nginx, and the wrk command that produced each row.
#
#   make bench-https                 (from the build directory)
#   tests/bench/bench-https.py --seconds 20 --connections 64
# SPDX-License-Identifier: Apache-2.0

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

BODY_SIZE = 100


def die(message):
    print("bench-https: " + message, file=sys.stderr)
    sys.exit(1)


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


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return None
    value = float(m.group(1))
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def run_wrk(url, script, args, seconds):
    cmd = ["wrk", "-t%d" % args.threads, "-c%d" % args.connections, "-d%ds" % seconds,
           "--latency", "-s", script, url]
    res = subprocess.run(cmd, capture_output=True, timeout=seconds + 60)
    out = res.stdout.decode(errors="replace")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if res.returncode != 0 or not rps:
        die("wrk failed on %s:\n%s%s" % (url, out, res.stderr.decode(errors="replace")))
    return {
        "rps": float(rps.group(1)),
        "p50": to_ms(p50.group(1)) if p50 else None,
        "p99": to_ms(p99.group(1)) if p99 else None,
        "non2xx": int(bad.group(1)) if bad else 0,
        "errors": errors.group(1) if errors else "",
        "cmd": " ".join(cmd),
    }


def start_nginx(work, cert, key, plain_port, tls_port):
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 2;
daemon off;
pid %(work)s/nginx.pid;
error_log %(work)s/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %(work)s/nginx-body;
  server {
    listen 127.0.0.1:%(plain)d;
    listen 127.0.0.1:%(tls)d ssl;
    ssl_certificate %(cert)s;
    ssl_certificate_key %(key)s;
    location / { return 204; }
  }
}
""" % {"work": work, "plain": plain_port, "tls": tls_port, "cert": cert, "key": key})
    proc = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", conf, "-p", work],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if not wait_port(plain_port) or not wait_port(tls_port):
        proc.kill()
        die("nginx did not start: %s" % proc.stderr.read().decode(errors="replace"))
    return proc


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", 10)))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 3)),
                        help="repeat everything; the table shows medians")
    args = parser.parse_args()

    if not shutil.which("wrk"):
        die("wrk not found: install the Debian package wrk (apt-get install wrk)")
    if not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
        die("nginx not found: install the Debian package nginx-light (apt-get install nginx-light)")

    # `make` runs this with the test environment; its allocator checks would
    # be measured too.
    for name in ("MALLOC_CHECK_", "G_SLICE", "G_DEBUG", "MALLOC_PERTURB_"):
        os.environ.pop(name, None)
    work = st.tempdir("sluice-bench-https-")
    key = st.new_key()
    token = st.sas_token("localhost", key, skn="bench", expiry=int(time.time()) + 86400)
    script = os.path.join(work, "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n'
                'wrk.body = string.rep("x", %d)\n'
                'wrk.headers["Authorization"] = "%s"\n'
                'wrk.headers["Content-Type"] = "application/octet-stream"\n'
                % (BODY_SIZE, token))
    path = "/devices/bench-device/messages/events"
    rows = []

    get_script = os.path.join(work, "get.lua")
    with open(get_script, "w") as f:
        f.write('wrk.method = "GET"\n')

    run_no = [0]

    def measure(name, durability, listener, url, lua=script):
        run_wrk(url, lua, args, args.warmup)
        r = run_wrk(url, lua, args, args.seconds)
        r.update(name=name, durability=durability, listener=listener, run=run_no[0])
        rows.append(r)
        print("# %-16s %-6s %-5s %10.0f req/s  p50 %s ms  p99 %s ms%s" % (
            name, durability, listener, r["rps"], r["p50"], r["p99"],
            "  (%d non-2xx)" % r["non2xx"] if r["non2xx"] else ""), flush=True)

    hubs = []
    for durability in ("none", "batch"):
        data_dir = os.path.join(work, "data-" + durability)
        config = st.https_hub_config(
            data_dir, {"bench": {"primary-key": key, "rights": ["DeviceConnect", "Send"]}},
            {"events": {"partitions": 4, "durability": durability}})
        hub_dir = os.path.join(work, durability)
        os.makedirs(hub_dir)
        hub = st.Hub(config, workdir=hub_dir, data_dir=data_dir)
        hubs.append((durability, hub, data_dir))

    # nginx serves the certificate sluiced generates, so both do the same TLS.
    first = hubs[0][1]
    first.start()
    cert = os.path.join(hubs[0][2], "tls", "dev-cert.pem")
    cert_key = os.path.join(hubs[0][2], "tls", "dev-key.pem")
    first.stop()
    for run in range(args.runs):
        run_no[0] = run
        print("# run %d of %d" % (run + 1, args.runs), flush=True)
        nginx_plain, nginx_tls = free_port(), free_port()
        nginx = start_nginx(work, cert, cert_key, nginx_plain, nginx_tls)
        try:
            measure("nginx", "-", "plain", "http://127.0.0.1:%d%s" % (nginx_plain, path))
            measure("nginx", "-", "tls", "https://127.0.0.1:%d%s" % (nginx_tls, path))
        finally:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(30)

        for durability, hub, _ in hubs:
            hub.start()
            try:
                plain = hub.address("https", "plain")
                tls = hub.address("https", "tls")
                measure("sluiced", durability, "plain", "http://%s:%d%s" % (plain + (path,)))
                measure("sluiced", durability, "tls", "https://%s:%d%s" % (tls + (path,)))
                if durability == "none":
                    # libsoup alone, without the core: the transport's ceiling.
                    measure("sluiced /healthz", "-", "plain", "http://%s:%d/healthz" % plain, get_script)
            finally:
                code = hub.stop()
                if code != 0:
                    die("sluiced (%s) exited with %s:\n%s" % (durability, code, hub.log_tail()))

    # Medians over the runs; the ratio is taken per run (nginx and sluiced
    # moments apart on the same machine), then its median.
    def med(values):
        v = sorted(x for x in values if x is not None)
        return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2

    base = {(r["run"], r["listener"]): r["rps"] for r in rows if r["name"] == "nginx"}
    keys = []
    for r in rows:
        k = (r["name"], r["durability"], r["listener"])
        if k not in keys:
            keys.append(k)
    print()
    print("Medians of %d runs:" % args.runs)
    print()
    print("| server | durability | listener | requests/s | p50 (ms) | p99 (ms) | × nginx |")
    # healthz: sluiced answering GET /healthz (libsoup and the transport
    # only, no append), for what the HTTP stack itself allows.
    print("|---|---|---|---:|---:|---:|---:|")
    for k in keys:
        rs = [r for r in rows if (r["name"], r["durability"], r["listener"]) == k]
        ratios = [r["rps"] / base[(r["run"], r["listener"])] for r in rs
                  if base.get((r["run"], r["listener"]))]
        print("| %s | %s | %s | %.0f | %.2f | %.2f | %.2f |" % (
            k[0], k[1], k[2], med(r["rps"] for r in rs), med(r["p50"] for r in rs) or 0,
            med(r["p99"] for r in rs) or 0, med(ratios) if ratios else 0))
    print()
    print("wrk: `%s` (URL per row; %d s after %d s of warm-up; 100-byte bodies)"
          % (re.sub(r" -s \S+ \S+$", " -s post.lua URL", rows[0]["cmd"]), args.seconds,
             args.warmup))
    print("machine: %d cores, shared by wrk, nginx (2 workers) and sluiced (%s workers)"
          % (os.cpu_count(), "2"))
    bad = [r for r in rows if r["non2xx"] or r["errors"]]
    for r in bad:
        print("warning: %s %s %s: %d non-2xx, socket errors %s"
              % (r["name"], r["durability"], r["listener"], r["non2xx"], r["errors"] or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
