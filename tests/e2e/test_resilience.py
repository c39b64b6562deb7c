"""Nothing lost, nothing sent twice: crashes, a PACS that is down, a tool that hangs, a full disk,
malformed input."""

import glob
import hashlib
import json
import os
import socket
import random
import shutil
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import (E2ETest, Conduit, Orthanc, make_study, read_uids, storescu, wait_until,  # noqa: E402
                     CONDUIT, ENV, REFERENCE_TOOL, expected_durability, free_port, run)


class ResilienceTest(E2ETest):
    def config(self, pacs_port, tools=None, stable_after="1s", **extra):
        config = {
            "destinations": [{"name": "pacs", "ae_title": "ORTHANC", "host": "127.0.0.1",
                              "port": pacs_port, "timeout": "5s"}],
            "tools": tools or [self.reference_tool()],
            "routes": [{"name": "ct", "when": {"Modality": "CT"}, "tool": "reference",
                        "results_to": ["pacs"], "stable_after": stable_after}],
        }
        config.update(extra)
        return config

    def assert_results_once(self, pacs, study_uid, expected=3):
        instances = pacs.instances_of_study(study_uid)
        sops = [i["MainDicomTags"]["SOPInstanceUID"] for i in instances]
        self.assertEqual(len(sops), expected, f"results in PACS: {len(sops)}")
        self.assertEqual(len(set(sops)), len(sops))

    def test_kill9_mid_study_loses_nothing_and_the_job_completes_after_restart(self):
        pacs = self.started(Orthanc(self.tmp))
        conduit = self.started(Conduit(self.tmp, self.config(pacs.dicom_port, stable_after="3s")))
        files = make_study(self.dir("study"), "CT", slices=10, rows=64, cols=64)
        study_uid = read_uids(files[0])[0]
        storescu(conduit.dicom_port, files[:5])
        conduit.kill9()
        conduit.start()
        storescu(conduit.dicom_port, files[5:])
        self.wait_job_state(conduit, "done")
        self.assertEqual(conduit.api("/api/studies")["studies"][0]["instance_count"], 10)
        self.assertEqual(len(conduit.jobs()["jobs"]), 1)
        self.assert_results_once(pacs, study_uid)

    def stored_counts(self, conduit):
        """(instances the index records, instance files in the spool)."""
        studies = conduit.api("/api/studies")["studies"]
        files = glob.glob(os.path.join(conduit.data_dir, "spool", "instances", "*", "*.dcm"))
        return sum(s["instance_count"] for s in studies), len(files)

    def test_kill9_while_instances_arrive_leaves_no_file_the_index_does_not_record(self):
        # Each instance is named in the spool, synced, then recorded in the index: a kill between
        # the two leaves a file no sender was told about, which the next start removes. About half
        # of the kills land there (the syncs are most of an instance's time), so three rounds.
        conduit = self.started(Conduit(self.tmp, self.config(free_port(), stable_after="1h")))
        files = make_study(self.dir("study"), "CT", slices=600, rows=64, cols=64)
        rng = random.Random()
        for round_files in (files[:200], files[200:400], files[400:]):
            before = self.stored_counts(conduit)[0]
            sender = subprocess.Popen(["storescu", "-aet", "MODALITY", "-aec", "CONDUIT", "-nh",
                                       "127.0.0.1", str(conduit.dicom_port)] + round_files,
                                      env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_until("some instances stored",
                           lambda: self.stored_counts(conduit)[0] >= before + 30,
                           timeout=60, interval=0.01)
                time.sleep(rng.uniform(0, 0.03))
                conduit.kill9()
            finally:
                sender.wait(timeout=60)
            self.assertNotEqual(sender.returncode, 0, "the sender must have seen the gateway die")
            conduit.start()
            stored, on_disk = self.stored_counts(conduit)
            self.assertGreaterEqual(stored, before + 30)
            self.assertEqual(on_disk, stored, "every file in the spool is one the index records")
        self.assertIn("named by an earlier process against the index", conduit.logs())

        # A second gateway on the same data dir is refused while the first one runs.
        second = dict(conduit.config, dicom=dict(conduit.config["dicom"], port=free_port()),
                      http={"port": free_port()})
        second_path = os.path.join(self.dir("second"), "conduit.yaml")
        with open(second_path, "w") as f:
            json.dump(second, f)
        refused = run([CONDUIT, "serve", "--config", second_path], check=False, timeout=60)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("in use by another process", refused.stdout + refused.stderr)

        storescu(conduit.dicom_port, files)
        self.assertEqual(self.stored_counts(conduit), (600, 600))

    def test_spool_check_finds_what_a_power_failure_left_and_removes_only_unrecorded_files(self):
        # A power failure, unlike a crash, can lose the name log's last lines, and with them the
        # next start's removal of a file synced just before its index commit. Simulated here: the
        # gateway killed, its name logs gone, a synced file under its key that no row names, and
        # one recorded instance whose file is gone.
        conduit = self.started(Conduit(self.tmp, self.config(free_port(), stable_after="1h")))
        files = make_study(self.dir("study"), "CT", slices=6, rows=64, cols=64)
        study_uid, _, _ = read_uids(files[0])
        storescu(conduit.dicom_port, files[:5])
        busy = conduit.cli("spool", "check", check=False)
        self.assertEqual(busy.returncode, 1)
        self.assertIn("stop the gateway first", busy.stderr)
        conduit.kill9()

        spool = os.path.join(conduit.data_dir, "spool")
        for log in glob.glob(os.path.join(spool, "names", "*.log")):
            os.remove(log)
        recorded = sorted(glob.glob(os.path.join(spool, "instances", "*", "*.dcm")))
        self.assertEqual(len(recorded), 5)
        os.remove(recorded[0])
        sixth_sop = read_uids(files[5])[2]
        key = hashlib.sha256(sixth_sop.encode()).hexdigest()
        orphan = os.path.join(spool, "instances", key[:2], key + ".dcm")
        shutil.copyfile(files[5], orphan)

        found = conduit.cli("spool", "check", "--json", check=False)
        self.assertEqual(found.returncode, 1, found.stderr)
        report = json.loads(found.stdout)
        self.assertFalse(report["consistent"])
        self.assertTrue(report["index"]["sound"], report["index"])
        self.assertEqual(report["counts"]["files"], 5)
        self.assertEqual(report["counts"]["records"], 5)
        self.assertEqual(report["counts"]["unrecorded"], 1)
        self.assertEqual(report["counts"]["missing"], 1)
        self.assertEqual(report["counts"]["removed"], 0)
        kinds = {p["kind"]: p for p in report["problems"]}
        self.assertEqual(kinds["unrecorded"]["path"], orphan)
        self.assertEqual(kinds["missing"]["path"], recorded[0])
        self.assertTrue(os.path.exists(orphan), "nothing is removed unless asked")
        for uid in (study_uid, sixth_sop):
            self.assertNotIn(uid, found.stdout + found.stderr, "no identifier in the report")

        removed = conduit.cli("spool", "check", "--remove-unrecorded", check=False)
        self.assertEqual(removed.returncode, 1, "the missing instance is still missing")
        self.assertFalse(os.path.exists(orphan))
        self.assertIn("removed 1", removed.stdout)
        self.assertIn("sent again from their source", removed.stdout)

        # Sending the study again from its source restores the missing file.
        conduit.start()
        storescu(conduit.dicom_port, files[:5])
        events = [e for e in conduit.api("/api/audit?limit=1000")["events"]
                  if e["action"] == "spool_check"]
        conduit.stop()
        self.assertEqual([e["outcome"] for e in events], ["failure", "failure"])
        self.assertEqual([e["detail"]["removed"] for e in events], [1, 0])  # newest first
        clean = conduit.cli("spool", "check", check=False)
        self.assertEqual(clean.returncode, 0, clean.stdout + clean.stderr)
        self.assertIn("consistent", clean.stdout)

    def test_health_says_how_the_previous_run_ended_and_a_host_restart_asks_for_a_spool_check(self):
        conduit = self.started(Conduit(self.tmp, self.config(free_port())))
        previous = lambda: conduit.api("/api/health")["previous_stop"]  # noqa: E731
        self.assertEqual(previous(), "unknown", "a first start")
        conduit.stop()
        conduit.start()
        self.assertEqual(previous(), "clean")
        conduit.kill9()
        conduit.start()
        self.assertEqual(previous(), "crashed")
        conduit.kill9()
        # What a power failure leaves: the lock file names a process of an earlier boot.
        lock = os.path.join(conduit.data_dir, "spool", "lock")
        with open(lock) as f:
            pid, boot = f.read().split()
        self.assertEqual(len(boot), 36, "the kernel's boot id, a UUID")
        with open(lock, "w") as f:
            f.write(f"{pid} 00000000-0000-4000-8000-000000000000\n")
        conduit.start()
        self.assertEqual(previous(), "host-restarted")
        self.assertIn("conduit spool check --remove-unrecorded", conduit.logs())
        metrics = urllib.request.urlopen(conduit.url + "/metrics", timeout=10).read().decode()
        self.assertIn('conduit_previous_stop_info{kind="host-restarted"} 1', metrics)

    def test_pacs_down_then_up_then_kill9_mid_delivery_delivers_each_result_once(self):
        pacs = Orthanc(self.tmp)  # not started: the PACS is down
        self._stoppables.append(pacs)
        cfg = self.config(pacs.dicom_port, retry={"max_attempts": 100, "initial_backoff": "200ms",
                                                 "max_backoff": "500ms"})
        conduit = self.started(Conduit(self.tmp, cfg))
        files = make_study(self.dir("study"), "CT", slices=8, rows=64, cols=64)
        study_uid = read_uids(files[0])[0]
        storescu(conduit.dicom_port, files)
        job = wait_until("job retrying delivery",
                         lambda: [j for j in conduit.jobs("delivering")["jobs"] if j["attempts"] >= 1],
                         timeout=120)[0]
        self.assertIn("pacs", job["last_error"])
        conduit.kill9()
        pacs.start()
        conduit.start()
        self.wait_job_state(conduit, "done")
        self.assert_results_once(pacs, study_uid)
        # Re-running delivery (a replayed job) re-sends the same SOP Instance UIDs: no duplicates.
        audit = conduit.api("/api/audit?limit=1000")["events"]
        self.assertTrue(any(e["action"] == "deliver" and e["outcome"] == "success" for e in audit))

    def test_a_tool_that_hangs_times_out_dead_letters_and_can_be_replayed(self):
        pacs = self.started(Orthanc(self.tmp))
        hang = os.path.join(self.tmp, "hanging-tool.sh")
        flag = os.path.join(self.tmp, "healthy")
        with open(hang, "w") as f:
            f.write(f"#!/bin/sh\nif [ -e {flag} ]; then exec {REFERENCE_TOOL} \"$@\"; fi\nsleep 600\n")
        os.chmod(hang, 0o755)
        tools = [self.reference_tool(command=[hang], timeout="1s")]
        cfg = self.config(pacs.dicom_port, tools=tools,
                          retry={"max_attempts": 2, "initial_backoff": "100ms", "max_backoff": "200ms"})
        conduit = self.started(Conduit(self.tmp, cfg))
        files = make_study(self.dir("study"), "CT", slices=4, rows=64, cols=64)
        storescu(conduit.dicom_port, files)
        job = self.wait_job_state(conduit, "dead_letter", timeout=120)[0]
        self.assertIn("timed out", job["last_error"])
        listed = conduit.cli("jobs", "list", "--state", "dead_letter").stdout
        self.assertIn("dead_letter", listed)
        open(flag, "w").close()  # the vendor fixed the tool
        conduit.cli("jobs", "retry", str(job["id"]))
        self.wait_job_state(conduit, "done")
        self.assert_results_once(pacs, read_uids(files[0])[0])

    def test_a_full_disk_refuses_with_a_status_and_keeps_every_acknowledged_instance(self):
        if shutil.which("unshare") is None or os.geteuid() != 0:
            self.skipTest("needs root and unshare for a private tmpfs")
        pacs = self.started(Orthanc(self.tmp))
        data = self.dir("small-disk")
        # Refuse below 6 MiB free: the disk fills before a write can fail half-way.
        cfg = self.config(pacs.dicom_port, dicom={"min_free_bytes": 6 << 20})
        conduit = Conduit(self.tmp, cfg)
        conduit.config["node"]["data_dir"] = data
        import json
        with open(conduit.config_path, "w") as f:
            json.dump(conduit.config, f)
        # A 24 MiB disk private to the gateway's mount namespace.
        conduit.wrap = ["unshare", "-m", "sh", "-c",
                        f"mount -t tmpfs -o size=24m tmpfs {data} && exec \"$@\"", "sh"]
        self.started(conduit)
        files = make_study(self.dir("study"), "CT", slices=200, rows=128, cols=128)  # ~6.6 MB
        big = make_study(self.dir("big"), "CT", slices=120, rows=256, cols=256)  # ~15.7 MB
        result = run(["storescu", "-v", "-nh", "-aec", "CONDUIT", "127.0.0.1", str(conduit.dicom_port)]
                     + files + big, check=False)
        output = result.stdout + result.stderr
        self.assertIn("OutOfResources", output.replace(" ", ""), "the disk must fill and refuse")
        # The gateway still answers, and exactly the instances it acknowledged are known to it.
        run(["echoscu", "-aec", "CONDUIT", "127.0.0.1", str(conduit.dicom_port)])
        stored = sum(s["instance_count"] for s in conduit.api("/api/studies?limit=10")["studies"])
        acknowledged = output.count("Received Store Response (Success)")
        self.assertGreater(acknowledged, 0)
        self.assertEqual(stored, acknowledged)
        audit = conduit.api("/api/audit?limit=1000")["events"]
        self.assertTrue(any(e["outcome"] == "failure" for e in audit))
        # And it said at start that this disk would not outlive a reboot.
        self.assertEqual(conduit.api("/api/health")["storage"], "volatile")
        self.assertIn("durability=volatile", conduit.logs())
        self.assertIn('conduit_storage_info{durability="volatile",file_system="tmpfs"} 1',
                      run(["curl", "-sf", conduit.url + "/metrics"]).stdout)

    def test_health_names_what_the_data_dirs_file_system_promises(self):
        conduit = Conduit(self.tmp)
        expected = expected_durability(self.tmp)
        # `config check` says it before the data directory exists, from the folder it goes in.
        self.assertFalse(os.path.exists(conduit.data_dir))
        self.assertIn(f"data_dir {conduit.data_dir}: ", conduit.cli("config", "check").stdout)
        self.assertIn(f", {expected}\n", conduit.cli("config", "check").stdout)
        self.started(conduit)
        self.assertEqual(conduit.api("/api/health")["storage"], expected)
        self.assertEqual(conduit.api("/api/health")["dicom_tls_listener"], "off", "no dicom.tls")
        line = next(entry for entry in conduit.logs().splitlines() if "event=storage" in entry)
        self.assertIn(f"durability={expected}", line)
        self.assertIn("level=info" if expected == "journaling" else "level=warning", line)


    def test_malformed_and_truncated_files_are_refused_and_others_unaffected(self):
        pacs = self.started(Orthanc(self.tmp))
        conduit = self.started(Conduit(self.tmp, self.config(pacs.dicom_port)))
        good = make_study(self.dir("study"), "CT", slices=3, rows=64, cols=64)
        bad_dir = self.dir("bad")
        truncated = os.path.join(bad_dir, "truncated.dcm")
        with open(good[0], "rb") as f:
            data = f.read()
        with open(truncated, "wb") as f:
            f.write(data[: len(data) // 2])
        # storescu refuses to send what it cannot parse; the listener's own tests send raw
        # malformed datasets. Here: the association carrying a broken file does not disturb the
        # gateway, and good instances before and after it are stored.
        storescu(conduit.dicom_port, [good[0]])
        storescu(conduit.dicom_port, [truncated], check=False)
        storescu(conduit.dicom_port, good[1:])
        self.assertEqual(conduit.api("/api/studies")["studies"][0]["instance_count"], 3)

    def test_peers_that_connect_and_say_nothing_hold_up_no_sender_and_are_audited(self):
        """A stuck modality, a half-open connection through a firewall, a health check that
        holds its connection: each waits on its own, and is cut off after dicom.acse_timeout."""
        pacs = self.started(Orthanc(self.tmp))
        config = self.config(pacs.dicom_port)
        config["dicom"] = {"acse_timeout": "12s"}
        conduit = self.started(Conduit(self.tmp, config))
        silent = [socket.create_connection(("127.0.0.1", conduit.dicom_port), timeout=60)
                  for _ in range(3)]
        try:
            study = make_study(self.dir("study"), "CT", slices=3, rows=64, cols=64)
            # Served while the three wait: storescu gives up after 5 s without an answer to its
            # association request, well before the first silent peer's 12 s are up.
            run(["storescu", "-ta", "5", "-aet", "MODALITY", "-aec", "CONDUIT", "127.0.0.1",
                 str(conduit.dicom_port), *study])
            self.assertEqual(conduit.api("/api/studies")["studies"][0]["instance_count"], 3)
            for peer in silent:
                self.assertEqual(peer.recv(1), b"", "closed by Conduit after the ACSE timeout")
        finally:
            for peer in silent:
                peer.close()
        # One audit entry for the peer (the throttle counts the rest), naming the reason; DCMTK
        # may close the connection just before the entry is written.
        def rejects():
            return [e for e in conduit.api("/api/audit?limit=200")["events"] if e["action"] == "reject"]
        wait_until("the refusal in the audit", rejects, timeout=20)
        rejects = rejects()
        self.assertEqual(len(rejects), 1, rejects)
        self.assertIn("no A-ASSOCIATE-RQ within 12 s", rejects[0]["detail"]["reason"])
        self.assertEqual(rejects[0]["detail"]["peer"], "127.0.0.1")

    def test_peers_that_drip_their_request_are_cut_off_at_the_deadline_on_every_port(self):
        """A byte every half second keeps each read within its timeout; only a deadline on the
        whole association request (DICOM) or request head (HTTP) ends it. With one HTTP worker,
        such a client would otherwise keep the admin API from everyone."""
        pacs = self.started(Orthanc(self.tmp))
        config = self.config(pacs.dicom_port)
        config["dicom"] = {"acse_timeout": "4s"}
        config["http"] = {"threads": 1, "request_header_timeout": "3s"}
        conduit = self.started(Conduit(self.tmp, config))
        # An A-ASSOCIATE-RQ header announcing 1000 bytes; the start of an HTTP request.
        openings = {conduit.dicom_port: b"\x01\x00\x00\x00\x03\xe8",
                    conduit.http_port: b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: "}
        lasted = {}

        def drip(port, opening):
            began = time.monotonic()
            with socket.create_connection(("127.0.0.1", port), timeout=60) as peer:
                peer.sendall(opening)
                try:
                    while time.monotonic() - began < 60:
                        time.sleep(0.5)
                        peer.sendall(b"a")
                except OSError:
                    pass  # closed by Conduit
            lasted[port] = time.monotonic() - began

        threads = [threading.Thread(target=drip, args=item) for item in openings.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        self.assertLess(lasted[conduit.dicom_port], 30, "DICOM peer cut off near acse_timeout")
        self.assertLess(lasted[conduit.http_port], 30, "HTTP peer cut off near the header deadline")
        events = wait_until("both refusals in the audit", lambda: (lambda e: e if any(
            x["action"] == "reject" for x in e) and any(
            x["action"] == "http_client_error" for x in e) else None)(
            conduit.api("/api/audit?limit=200")["events"]), timeout=20)
        reject = [e for e in events if e["action"] == "reject"][0]
        self.assertIn("no A-ASSOCIATE-RQ within 4 s", reject["detail"]["reason"])
        http = [e for e in events if e["action"] == "http_client_error"][0]
        self.assertEqual(http["detail"]["status"], 408)
        self.assertEqual(http["detail"]["peer"], "127.0.0.1")
        metrics = urllib.request.urlopen(conduit.url + "/metrics", timeout=10).read().decode()
        self.assertIn('conduit_http_requests_total{code="408",method="other",route="unparsed"} 1',
                      metrics)


if __name__ == "__main__":
    unittest.main(verbosity=2)
