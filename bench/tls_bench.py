#!/usr/bin/python3
"""What DICOM over TLS costs: C-STORE into Conduit's plain and TLS listeners, beside DCMTK
storescp plain and with TLS (the same BCP 195 non-downgrading profile, DCMTK's default), the
same studies and sender (DCMTK storescu, presenting a client certificate over TLS), one
association and four. Certificates: EC P-256 from a throw-away CA made with the openssl
command (TLS 1.3 is negotiated). Prints a markdown report on stdout.

Run by hand (never part of the test suite): bench/run_tls.sh [--repeat N] [--quick] [--tmp DIR].
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, HERE)
import ingest_bench as ib  # noqa: E402
from benchlib import free_port, log, wait_until  # noqa: E402

SENDERS = (1, 4)


def make_pki(folder):
    """A CA, a server certificate for 127.0.0.1 and a client certificate (openssl command)."""
    os.makedirs(folder)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    path = {k: os.path.join(folder, k + ".pem") for k in
            ("ca", "ca_key", "server_cert", "server_key", "client_cert", "client_key")}
    quiet = dict(check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-x509", *ec, "-keyout", path["ca_key"], "-out", path["ca"],
                    "-days", "2", "-subj", "/CN=bench CA", "-addext",
                    "basicConstraints=critical,CA:TRUE"], **quiet)
    for serial, (leaf, usage) in enumerate((("server", "serverAuth"), ("client", "clientAuth")), 2):
        ext = os.path.join(folder, leaf + ".ext")
        with open(ext, "w") as f:
            f.write(f"extendedKeyUsage={usage}\nsubjectAltName=IP:127.0.0.1\n")
        csr = os.path.join(folder, leaf + ".csr")
        subprocess.run(["openssl", "req", *ec, "-keyout", path[leaf + "_key"], "-out", csr,
                        "-subj", f"/CN=bench {leaf}"], **quiet)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", path["ca"], "-CAkey",
                        path["ca_key"], "-set_serial", str(serial), "-days", "2", "-extfile", ext,
                        "-out", path[leaf + "_cert"]], **quiet)
    return path


class TlsStorescp(ib.Storescp):
    """storescp speaking only TLS, wanting the sender's client certificate."""

    def __init__(self, pki, fork):
        super().__init__(ignore=False, fork=fork)
        self.pki = pki
        self.name = "storescp, TLS"
        self.sender_args = ["+tls", pki["client_key"], pki["client_cert"], "+cf", pki["ca"]]

    def start(self, work):
        self.out = os.path.join(work, "storescp")
        os.makedirs(self.out)
        self.port = free_port()
        cmd = ["storescp", "-aet", "STORESCP", "-pdu", str(ib.PDU), "-od", self.out, "+tls",
               self.pki["server_key"], self.pki["server_cert"], "+cf", self.pki["ca"]]
        if self.fork:
            cmd.append("--fork")
        cmd.append(str(self.port))
        self.cmd = cmd
        self.log = open(os.path.join(work, "storescp.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=ib.ENV)
        wait_until("storescp (TLS)", lambda: ib.echo_ok(self.port, "STORESCP", self.sender_args))
        return "STORESCP"


class TlsConduit(ib.Conduit):
    """Conduit (routed, as in the ingest bench) with its TLS listener; the senders use it."""

    def __init__(self, pki):
        self.tls_port = free_port()
        super().__init__(routed=True, dicom_extra={"tls": {
            "port": self.tls_port, "certificate_file": pki["server_cert"],
            "key_file": pki["server_key"], "ca_file": pki["ca"]}})
        self.name = "Conduit, TLS"
        self.sender_args = ["+tls", pki["client_key"], pki["client_cert"], "+cf", pki["ca"]]

    def start(self, work):
        aet = super().start(work)
        wait_until("Conduit's TLS listener",
                   lambda: ib.echo_ok(self.tls_port, "CONDUIT", self.sender_args))
        self.port = self.tls_port  # the senders' port
        return aet


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small studies (smoke test)")
    parser.add_argument("--tmp", default=tempfile.gettempdir(),
                        help="where studies and receivers' data live (default: system temp)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="rounds per study, senders and receiver; the table shows the median")
    args = parser.parse_args()
    started = time.monotonic()
    tmp, info = ib.prepare_run("conduit-bench-tls-", args.tmp)
    pki = make_pki(os.path.join(tmp, "pki"))
    receivers = {
        "storescp": lambda n: ib.Storescp(ignore=False, fork=n > 1),
        "storescp_tls": lambda n: TlsStorescp(pki, fork=n > 1),
        "conduit": lambda n: ib.Conduit(),
        "conduit_tls": lambda n: TlsConduit(pki),
    }
    results = {}  # (study key, senders, receiver) -> [seconds per round]
    try:
        studies = ib.generate(ib.CT_MR_QUICK if args.quick else ib.CT_MR_FULL,
                              os.path.join(tmp, "gen"))
        order = list(receivers)
        for study in studies:
            for n in SENDERS:
                for rep in range(args.repeat):
                    for key in order[rep % len(order):] + order[:rep % len(order)]:
                        r = ib.measure_receiver(lambda k=key, m=n: receivers[k](m), study, n, tmp)
                        results.setdefault((study["key"], n, key), []).append(r["seconds"])
                        log(f"{study['label']} / {n} sender(s) / {key} #{rep + 1}: "
                            f"{r['seconds']:.2f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(render(info, studies, results, args, time.monotonic() - started))


NAMES = {"storescp": "storescp (no fsync)", "storescp_tls": "storescp, TLS (no fsync)",
         "conduit": "**Conduit**", "conduit_tls": "**Conduit, TLS listener**"}


def render(info, studies, results, args, total):
    out = [f"Run {info['date']}, {info['nproc']} CPUs ({info['cpu']}), kernel {info['kernel']}, "
           f"temp dir on {info['fs']}; Conduit {info['conduit']}; "
           f"{info['versions']['storescp/storescu']}. Whole run {total:.0f} s.", "",
           f"Each figure is the median of {args.repeat} rounds (a fresh receiver process per "
           "round, rounds interleaved); the range shows the slowest and fastest round. With four "
           "senders storescp runs with `--fork`.", "",
           "| study | senders | receiver | instances/s | MB/s | range, instances/s |",
           "|---|---:|---|---:|---:|---:|"]
    for s in studies:
        count, mb = len(s["files"]), s["bytes"] / 1e6
        for n in SENDERS:
            for key, name in NAMES.items():
                secs = results[(s["key"], n, key)]
                med = statistics.median(secs)
                out.append(f"| {s['label']} ({count} files, {mb:.0f} MB) | {n} | {name} | "
                           f"{count / med:.1f} | {mb / med:.1f} | "
                           f"{count / max(secs):.0f}–{count / min(secs):.0f} |")
    out += ["", "Ratios of medians (instances/s):", "",
            "| study | senders | Conduit TLS / Conduit plain | storescp TLS / storescp plain | "
            "Conduit TLS / storescp TLS |", "|---|---:|---:|---:|---:|"]
    for s in studies:
        for n in SENDERS:
            def rate(key):
                return len(s["files"]) / statistics.median(results[(s["key"], n, key)])
            out.append(f"| {s['label']} | {n} | {rate('conduit_tls') / rate('conduit'):.2f} | "
                       f"{rate('storescp_tls') / rate('storescp'):.2f} | "
                       f"{rate('conduit_tls') / rate('storescp_tls'):.2f} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
