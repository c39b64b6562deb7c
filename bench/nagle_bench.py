#!/usr/bin/python3
"""C-STORE from a sender that leaves Nagle's algorithm on: Conduit beside DCMTK storescp and
Orthanc, one association, the same studies and sender (DCMTK storescu), with the sender's
TCP_NODELAY unset (DCMTK 3.6.7's default, and what many modality stacks do) and set; in the
clear, and over DICOM TLS into Conduit's TLS listener and storescp +tls (certificates as in
tls_bench.py). Prints a markdown report on stdout.

Run by hand (never part of the test suite): bench/run_nagle.sh [--repeat N] [--quick].
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, HERE)
import ingest_bench as ib  # noqa: E402
import tls_bench as tb  # noqa: E402
from benchlib import log  # noqa: E402

SENDERS = {
    "nagle": ("Nagle on (TCP_NODELAY unset)",
              {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}),
    "nodelay": ("Nagle off (TCP_NODELAY=1)", dict(os.environ, TCP_NODELAY="1")),
}
RECEIVERS = {}  # key -> (label, make); filled in main(), once the certificates exist


def receivers(pki):
    return {
        "storescp": ("storescp (no fsync)", lambda: ib.Storescp(ignore=False, fork=False)),
        "orthanc": ("Orthanc", lambda: ib.Orthanc(1)),
        "conduit": ("**Conduit**", lambda: ib.Conduit()),
        "storescp_tls": ("storescp, TLS (no fsync)", lambda: tb.TlsStorescp(pki, fork=False)),
        "conduit_tls": ("**Conduit, TLS listener**", lambda: tb.TlsConduit(pki)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small studies (smoke test)")
    parser.add_argument("--tmp", default=tempfile.gettempdir(),
                        help="where studies and receivers' data live (default: system temp)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds per study, sender and receiver; the table shows the median")
    args = parser.parse_args()
    started = time.monotonic()
    tmp, info = ib.prepare_run("conduit-bench-nagle-", args.tmp)
    RECEIVERS.update(receivers(tb.make_pki(os.path.join(tmp, "pki"))))
    results = {}  # (study key, sender, receiver) -> [seconds per round]
    try:
        studies = ib.generate(ib.CT_MR_QUICK if args.quick else ib.CT_MR_FULL,
                              os.path.join(tmp, "gen"))
        order = list(RECEIVERS)
        for study in studies:
            for sender, (_, env) in SENDERS.items():
                for rep in range(args.repeat):
                    for key in order[rep % len(order):] + order[:rep % len(order)]:
                        r = ib.measure_receiver(RECEIVERS[key][1], study, 1, tmp, sender_env=env)
                        results.setdefault((study["key"], sender, key), []).append(r["seconds"])
                        log(f"{study['label']} / {sender} / {key} #{rep + 1}: {r['seconds']:.2f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(render(info, studies, results, args, time.monotonic() - started))


def render(info, studies, results, args, total):
    out = [f"Run {info['date']}, {info['nproc']} CPUs ({info['cpu']}), kernel {info['kernel']}, "
           f"temp dir on {info['fs']}; Conduit {info['conduit']}; "
           f"{info['versions']['storescp/storescu']}; {info['versions']['Orthanc']}. "
           f"Whole run {total:.0f} s.", "",
           f"One association (one storescu process). Each figure is the median of {args.repeat} "
           "rounds (a fresh receiver process per round, rounds interleaved); the range shows the "
           "slowest and fastest round.", "",
           "| study | sender | receiver | instances/s | range, instances/s | ms per instance |",
           "|---|---|---|---:|---:|---:|"]
    for s in studies:
        count = len(s["files"])
        for sender, (sender_label, _) in SENDERS.items():
            for key, (name, _) in RECEIVERS.items():
                secs = results[(s["key"], sender, key)]
                med = statistics.median(secs)
                out.append(f"| {s['label']} ({count} files) | {sender_label} | {name} | "
                           f"{count / med:.1f} | {count / max(secs):.0f}–{count / min(secs):.0f} | "
                           f"{med * 1000 / count:.2f} |")
    out += ["", "Ratios (Conduit's instances/s over the other's, same study and sender):", "",
            "| study | sender | Conduit / storescp | Conduit / Orthanc | "
            "Conduit, Nagle on / Nagle off | Conduit TLS / storescp TLS | "
            "Conduit TLS, Nagle on / Nagle off |", "|---|---|---:|---:|---:|---:|---:|"]
    for s in studies:
        def rate(sender, key):
            return len(s["files"]) / statistics.median(results[(s["key"], sender, key)])
        for sender, (sender_label, _) in SENDERS.items():
            own = rate(sender, "conduit") / rate("nodelay", "conduit")
            own_tls = rate(sender, "conduit_tls") / rate("nodelay", "conduit_tls")
            out.append(f"| {s['label']} | {sender_label} | "
                       f"{rate(sender, 'conduit') / rate(sender, 'storescp'):.2f} | "
                       f"{rate(sender, 'conduit') / rate(sender, 'orthanc'):.2f} | {own:.2f} | "
                       f"{rate(sender, 'conduit_tls') / rate(sender, 'storescp_tls'):.2f} | "
                       f"{own_tls:.2f} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
