#!/usr/bin/env python3
"""conduit-ris-sim against itself on 127.0.0.1: each ACK mode, the JSON log, the exit codes.

Usage: ris_sim_test.py PATH/TO/conduit-ris-sim
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

SIM = None


class RisSim:
    """A listening simulator in MODE, stopped (SIGTERM) on exit."""

    def __init__(self, folder, mode, *extra):
        self.log = os.path.join(folder, mode + ".jsonl")
        port_file = os.path.join(folder, mode + ".port")
        self.process = subprocess.Popen(
            [SIM, "--listen", "0", "--mode", mode, "--log", self.log, "--port-file", port_file,
             *extra], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("ris sim did not start")
            time.sleep(0.05)
        with open(port_file) as f:
            self.port = int(f.read())

    def lines(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def close(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def send(port, *args):
    done = subprocess.run([SIM, "--to", "127.0.0.1:%d" % port, *args], capture_output=True,
                          text=True, timeout=60)
    return done.returncode, done.stdout


class RisSimTest(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.mkdtemp(prefix="ris-sim-test-")
        self.sims = []

    def tearDown(self):
        for sim in self.sims:
            sim.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def start(self, mode, *extra):
        sim = RisSim(self.folder, mode, *extra)
        self.sims.append(sim)
        return sim

    def test_ae_first_n_then_aa_and_every_message_is_logged(self):
        sim = self.start("ae-first-1")
        args = ["--send", "oru-report", "--accession", "ACC1", "--control-id", "C1",
                "--code", "SCT:52101004"]
        self.assertEqual(send(sim.port, *args)[0], 1, "first reception: AE")
        code, out = send(sim.port, *args)
        self.assertEqual(code, 0, "second reception of the same control id: AA")
        self.assertTrue(out.startswith("AA C1"), out)
        self.assertEqual(send(sim.port, "--send", "orm-complete", "--accession", "ACC2",
                              "--control-id", "C2")[0], 1, "another control id: AE first")
        lines = sim.lines()
        self.assertEqual([l["ack"] for l in lines], ["AE", "AA", "AE"])
        self.assertEqual(lines[0]["type"], "ORU^R01")
        self.assertEqual(lines[0]["accession"], "ACC1")
        self.assertEqual(lines[0]["patient_id"], "SIM0001")
        self.assertEqual([o["type"] for o in lines[0]["obx"]], ["TX", "CWE"])
        self.assertEqual(lines[2]["type"], "ORM^O01")
        self.assertEqual(lines[2]["order_control"], "SC")

    def test_ar_mode_refuses(self):
        sim = self.start("ar")
        self.assertEqual(send(sim.port, "--send", "orm-complete", "--accession", "A")[0], 2)
        self.assertEqual(sim.lines()[0]["ack"], "AR")

    def test_silent_mode_never_answers(self):
        sim = self.start("silent")
        self.assertEqual(send(sim.port, "--send", "orm-complete", "--accession", "A",
                              "--ack-timeout-ms", "500")[0], 3)
        self.assertEqual(sim.lines()[0]["ack"], "none")

    def test_slow_mode_answers_after_its_delay(self):
        sim = self.start("slow", "--slow-ms", "1500")
        self.assertEqual(send(sim.port, "--send", "orm-complete", "--accession", "A",
                              "--ack-timeout-ms", "300")[0], 3, "slower than the sender waits")
        self.assertEqual(send(sim.port, "--send", "orm-complete", "--accession", "A",
                              "--ack-timeout-ms", "30000")[0], 0)

    def test_a_message_file_is_sent_as_is_and_bad_usage_is_code_4(self):
        sim = self.start("aa")
        path = os.path.join(self.folder, "m.hl7")
        with open(path, "w") as f:
            f.write("MSH|^~\\&|X|Y|Z|W|20240101000000||OMI^O23^OMI_O23|F1|P|2.5.1\r"
                    "ORC|XO|PL1|FI1\rTQ1|1||||||||S\rOBR|1|PL1|FI1|P\rIPC|ACC9\r")
        self.assertEqual(send(sim.port, "--send", "@" + path)[0], 0)
        self.assertEqual(sim.lines()[0]["priority"], "S")
        self.assertEqual(sim.lines()[0]["accession"], "ACC9")
        self.assertEqual(send(sim.port, "--send", "oru-report")[0], 4, "no accession")
        self.assertEqual(send(sim.port, "--send", "adt")[0], 4)


if __name__ == "__main__":
    SIM = sys.argv.pop(1)
    unittest.main(verbosity=2)
