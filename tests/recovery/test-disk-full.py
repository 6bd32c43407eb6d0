#!/usr/bin/python3
# Disk full, for both storage backends: sluiced's data directory is on a
# small tmpfs this test mounts (8 MiB) and fills with a filler file. HTTPS
# producers then get errors (never a 2xx for what was not stored), nothing
# acknowledged is lost, and once the filler is deleted the hub takes
# messages again by itself, without a restart. Needs root (mount).
# Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

BODY = 3000
DEVICE = "dev-full"

tap = st.Tap()
key = st.new_key()
token = st.sas_token("localhost", key, skn="owner")


def mount_tmpfs(path):
    os.makedirs(path, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", path],
                         capture_output=True)
    if res.returncode != 0:
        raise st.HubError("mount -t tmpfs failed: %s" % res.stderr.decode(errors="replace"))


def umount(path):
    subprocess.run(["umount", "-l", path], capture_output=True)


def body_of(i):
    return ("m%06d-" % i) + "y" * (BODY - 8)


def post(address, i):
    try:
        status, _, data = st.http_request(address, "POST",
                                          "/devices/%s/messages/events" % DEVICE,
                                          body=body_of(i), headers={"Authorization": token},
                                          timeout=30)
        return status, data[:300]
    except OSError as e:
        return None, str(e)


def read_all(address):
    status, _, data = st.http_request(address, "GET", "/events",
                                      headers={"Authorization": token})
    p = json.loads(data)["partitions"][0]
    bodies = []
    offset = p["first"]
    while offset < p["next"]:
        status, _, data = st.http_request(
            address, "GET", "/events/partitions/0/messages?from=%d&limit=500" % offset,
            headers={"Authorization": token})
        if status != 200:
            raise st.HubError("read at %d: HTTP %d %r" % (offset, status, data[:200]))
        records = json.loads(data)
        if not records:
            break
        bodies.extend(r["body"] for r in records)
        offset = records[-1]["offset"] + 1
    return bodies


def fill(path, leave):
    """A filler file taking all but about `leave` bytes of the file system."""
    st_ = os.statvfs(os.path.dirname(path))
    size = max(0, st_.f_bavail * st_.f_frsize - leave)
    with open(path, "wb") as f:
        chunk = b"\0" * 65536
        while size > 0:
            n = min(size, len(chunk))
            try:
                f.write(chunk[:n])
                f.flush()
            except OSError:
                break
            size -= n


def run(backend):
    work = st.tempdir()
    mnt = os.path.join(work, "mnt")
    mount_tmpfs(mnt)
    try:
        data_dir = os.path.join(mnt, "data")
        config = st.https_hub_config(
            data_dir, {"owner": {"primary-key": key,
                                 "rights": ["ServiceConnect", "DeviceConnect", "Send",
                                            "Listen"]}},
            {"events": {"partitions": 1, "durability": "batch"}}, https={"tls-listen": None})
        if backend == "lmdb":
            config = config.replace("[storage]\nplugin = file",
                                    "[storage]\nplugin = lmdb\nmap-size = 2MiB")
        hub = st.Hub(config, workdir=work, data_dir=data_dir)
        hub.start()
        address = hub.address("https", "plain")
        filler = os.path.join(mnt, "filler")
        fill(filler, 256 * 1024)

        acked, errors, i = [], [], 0
        # Until the disk is full, then a few more: every one must fail.
        while i < 2000 and len(errors) < 10:
            status, info = post(address, i)
            if status is not None and 200 <= status < 300:
                if errors:
                    # A smaller write may still fit after a refused one; it
                    # must then really be stored (checked below).
                    pass
                acked.append(body_of(i))
            else:
                errors.append((i, status, info))
            i += 1
        tap.ok(len(errors) >= 10 and len(acked) > 0,
               "%s: the full disk refuses producers (%d acknowledged, then %d errors: %r)"
               % (backend, len(acked), len(errors), errors[0][1:] if errors else None),
               hub.log_tail(10))
        tap.ok(all(s is None or s >= 500 for _, s, _ in errors),
               "%s: the refusals are server errors, never 2xx" % backend,
               repr(errors[:3]))
        tap.ok(hub.running(), "%s: sluiced keeps running on a full disk" % backend,
               hub.log_tail(10))

        # Space returns: the hub takes messages again by itself.
        os.unlink(filler)
        deadline = time.monotonic() + 30
        recovered = None
        while time.monotonic() < deadline:
            status, info = post(address, i)
            if status is not None and 200 <= status < 300:
                acked.append(body_of(i))
                recovered = i
                i += 1
                break
            i += 1
        tap.ok(recovered is not None, "%s: after the filler is deleted producers are "
               "acknowledged again, without a restart" % backend, hub.log_tail(10))
        for _ in range(20):
            status, info = post(address, i)
            if status is not None and 200 <= status < 300:
                acked.append(body_of(i))
            i += 1

        stored = read_all(address)
        missing = [b[:8] for b in acked if b not in set(stored)]
        tap.ok(not missing, "%s: all %d acknowledged messages read back (%d stored)"
               % (backend, len(acked), len(stored)), "missing %r" % missing[:10])
        code = hub.stop()
        tap.eq(code, 0, "%s: clean stop" % backend)

        # And after a restart.
        hub.start()
        stored = read_all(hub.address("https", "plain"))
        missing = [b[:8] for b in acked if b not in set(stored)]
        tap.ok(not missing, "%s: after a restart all acknowledged messages are there"
               % backend, "missing %r" % missing[:10])
        hub.stop()
    finally:
        umount(mnt)


if os.geteuid() != 0:
    tap.skip("disk full (file, lmdb)", "needs root to mount a tmpfs")
else:
    try:
        run("file")
        run("lmdb")
    except (st.HubError, OSError, ValueError) as e:
        tap.bail_out(str(e))
tap.done()
