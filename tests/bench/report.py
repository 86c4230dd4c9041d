#!/usr/bin/env python3
"""Turn the benchmark's measurements into the table, a JSON copy and a plot.

Usage: report.py --results results.jsonl --machine machine.json --out DIR
                 --total-seconds N --quick 0|1
Every cell is the median over the repetitions. A ratio is nidofs divided by
the comparison. For rates (MiB/s, IOPS) higher is better, for times and sizes
lower is better, and the target column gives the direction. Writes DIR/table.md,
DIR/results.json and DIR/lazy-boot.png (gnuplot), and prints the table.
"""
import argparse
import json
import os
import statistics
import subprocess

MIB = 1048576.0


class Results:
    def __init__(self, path):
        with open(path) as f:
            self.records = [json.loads(line) for line in f if line.strip()]

    def select(self, workload, subject, metric, **match):
        return [r for r in self.records
                if r["workload"] == workload and r["subject"] == subject and r["metric"] == metric
                and all(r.get(k) == v for k, v in match.items())]

    def median(self, workload, subject, metric, **match):
        values = [r["value"] for r in self.select(workload, subject, metric, **match)]
        return statistics.median(values) if values else None

    def rate(self, workload, subject, **match):
        """Median MiB/s over the repetitions of a timed read of `bytes` bytes."""
        recs = self.select(workload, subject, "seconds", **match)
        rates = [float(r["bytes"]) / MIB / r["value"] for r in recs if r["value"] > 0]
        return statistics.median(rates) if rates else None

    def extra_median(self, workload, subject, metric, key, **match):
        values = [float(r[key]) for r in self.select(workload, subject, metric, **match) if key in r]
        return statistics.median(values) if values else None


def fmt(value, unit):
    if value is None:
        return "-"
    if unit == "MiB/s":
        return "%.1f MiB/s" % value if value < 100 else "%.0f MiB/s" % value
    if unit == "IOPS":
        return "%.0f IOPS" % value
    if unit == "s":
        return "%.2f s" % value if value < 10 else "%.1f s" % value
    if unit == "ms":
        return "%.0f ms" % (value * 1000)
    if unit == "MiB":
        return "%.1f MiB" % value
    return "%g %s" % (value, unit)


def row(workload, nidofs, comparison, ratio, target, unit, cmp_label, op=None, limit=None):
    """One table row; op is '>=', '>' or '<=' against limit, None to only report."""
    if ratio is None or (op and limit is None):
        met = "n/a"
    elif op is None:
        met = "-"
    else:
        ok = {">=": ratio >= limit, ">": ratio > limit, "<=": ratio <= limit}[op]
        met = "met" if ok else "NOT MET"
    if ratio is None:
        shown = "-"
    elif op and limit is not None and round(ratio, 2) == limit:
        shown = "%.3fx" % ratio  # two decimals would hide which side of the limit it is
    else:
        shown = "%.2fx" % ratio
    return {
        "workload": workload,
        "nidofs": fmt(nidofs, unit),
        "comparison": "%s: %s" % (cmp_label, fmt(comparison, unit)) if cmp_label else "-",
        "ratio": shown,
        "target": target,
        "met": met,
        "nidofs_value": nidofs, "comparison_value": comparison, "ratio_value": ratio,
    }


def div(a, b):
    return a / b if a is not None and b else None


def seq_rows(res, rows):
    for link in ("loopback", "shaped"):
        n = res.rate("cold_seq", "nidofs", link=link)
        recs = res.select("cold_seq", "nidofs", "seconds", link=link)
        mib = int(float(recs[0]["bytes"]) / MIB) if recs else 0
        extent = "%d MiB" % mib if link == "loopback" else "first %d MiB" % mib
        name = "cold sequential read, %s (%s)" % (link, extent)
        curl = res.rate("cold_seq", "curl", link=link)
        limit = 0.5 if link == "loopback" else 1.0
        rows.append(row(name, n, curl, div(n, curl), ">= %.1fx curl" % limit, "MiB/s", "curl", ">=", limit))
        hd = res.rate("cold_seq", "httpdirfs", link=link)
        rows.append(row(name, n, hd, div(n, hd), "> 1x httpdirfs", "MiB/s", "httpdirfs", ">", 1.0))
    for case, label in (("dropped", "page cache dropped"), ("hot", "page cache warm")):
        name = "warm sequential read, %s" % label
        n = res.rate("warm_seq_" + case, "nidofs")
        local = res.rate("warm_seq_" + case, "local")
        rows.append(row(name, n, local, div(n, local), ">= 0.8x local", "MiB/s", "cache file", ">=", 0.8))
        hd = res.rate("warm_seq_" + case, "httpdirfs")
        rows.append(row(name, n, hd, div(n, hd), "> 1x httpdirfs", "MiB/s", "httpdirfs", ">", 1.0))
    for mode in ("direct", "buffered"):
        name = "warm random 4 KiB reads, %s" % ("O_DIRECT" if mode == "direct" else "buffered")
        n = res.median("rand_4k_" + mode, "nidofs", "iops")
        local = res.median("rand_4k_" + mode, "local", "iops")
        rows.append(row(name, n, local, div(n, local), "report", "IOPS", "cache file"))
        hd = res.median("rand_4k_" + mode, "httpdirfs", "iops")
        rows.append(row(name, n, hd, div(n, hd), "> 1x httpdirfs", "IOPS", "httpdirfs", ">", 1.0))


def boot_rows(res, rows):
    cold = res.median("boot_tiny", "cold", "seconds")
    warm = res.median("boot_tiny", "warm", "seconds")
    ptb = res.median("boot_tiny", "pull_then_boot", "seconds")
    name = "lazy boot, tiny image, shaped link, to console marker"
    rows.append(row(name + " (cold)", cold, warm, div(cold, warm), "<= 1.5x warm", "s", "warm cache", "<=", 1.5))
    rows.append(row(name + " (cold)", cold, ptb, div(cold, ptb), "report", "s", "pull-then-boot"))

    name = "lazy boot, Debian cloud-init image, shaped link, to SSH"
    cold = res.median("boot_debian", "cold", "seconds")
    warm = res.median("boot_debian", "warm", "seconds")
    ptb = res.median("boot_debian", "pull_then_boot", "seconds")
    curl = res.median("boot_debian", "curl", "seconds")
    rows.append(row(name + " (cold)", cold, warm, div(cold, warm), "report", "s", "warm cache"))
    gap = cold - warm if cold is not None and warm is not None else None
    rows.append(row(name + ": cold - warm", gap, curl, div(gap, curl), "<= 0.3x curl of the image",
                    "s", "curl, whole image", "<=", 0.3))
    fetched = res.extra_median("boot_debian", "cold", "seconds", "fetched")
    distinct = res.median("boot_debian", "guest_reads", "distinct_bytes")
    rows.append(row(name + ": bytes fetched", div(fetched, MIB), div(distinct, MIB), div(fetched, distinct),
                    "<= 1.3x distinct bytes read", "MiB", "distinct bytes QEMU read", "<=", 1.3))
    rows.append(row(name + ": pull-then-boot / cold", ptb, cold, div(ptb, cold), "report", "s", "cold"))


def other_rows(res, rows):
    n = res.median("mkdir", "nidofs", "seconds")
    hand = res.median("mkdir", "by_hand", "seconds")
    r = row("mkdir vms/NAME returning (p50)", n, hand, div(n, hand), "p50 <= 100 ms", "ms", "by hand")
    if n is not None:
        r["met"] = "met" if n <= 0.100 else "NOT MET"
    rows.append(r)
    recs = res.select("ls_lR", "nidofs", "seconds")
    entries = recs[0].get("entries", "?") if recs else "?"
    n = res.median("ls_lR", "nidofs", "seconds")
    local = res.median("ls_lR", "local", "seconds")
    rows.append(row("ls -lR catalog, %s entries" % entries, n, local, div(n, local), "<= 3x local",
                    "s", "local copy", "<=", 3.0))
    recs = res.select("rss", "nidofs", "peak_kib")
    mib = int(float(recs[0]["bytes"]) / MIB) if recs else 0
    peak = res.median("rss", "nidofs", "peak_kib")
    peak = peak / 1024 if peak is not None else None
    r = row("daemon peak RSS, %d MiB cold read" % mib, peak, None, div(peak, 32.0), "<= 32 MiB", "MiB", None)
    r["ratio"] = "-"
    if peak is None:
        r["met"] = "n/a"
    elif peak <= 32:
        r["met"] = "met"
    else:
        r["met"] = "NOT MET"
    rows.append(r)


def markdown(rows):
    cols = ("workload", "nidofs", "comparison", "ratio", "target", "met")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def last_time(samples):
    """Return the last time in a sampler file, 0 when it is missing or empty."""
    try:
        with open(samples) as f:
            lines = f.read().split("\n")
        return max(float(line.split()[0]) for line in lines if line.strip())
    except (OSError, ValueError):
        return 0.0


def plot(out_dir, res):
    """Bytes cached against time during the first cold boot and pull-then-boot of each image."""
    samples = os.path.join(out_dir, "samples")
    panels = []
    for name, title in (("tiny", "tiny image"), ("debian", "Debian cloud-init image")):
        cold = os.path.join(samples, "%s-cold-1.txt" % name)
        pull = os.path.join(samples, "%s-pull-1.txt" % name)
        if not os.path.exists(cold):
            continue
        curves = ["'%s' using 1:($2/1048576) with lines lw 2 title 'cold lazy boot (mkdir at 0)'" % cold]
        if os.path.exists(pull):
            curves.append("'%s' using 1:($2/1048576) with lines lw 2 dt 2 title 'nido image pull, then boot'" % pull)
        distinct = res.median("boot_%s" % name, "guest_reads", "distinct_bytes")
        if distinct:
            curves.append("%f with lines lw 2 lc rgb 'gray40' dt 3 title 'distinct bytes QEMU reads (warm boot)'"
                          % (distinct / MIB))
        marks = []
        xmax = max(last_time(cold), last_time(pull))
        for subject, label, color, height in (("cold", "cold boot done", "red", 0.95),
                                              ("pull", "pull done, warm boot starts", "blue", 0.85),
                                              ("pull_then_boot", "warm boot done", "blue", 0.75)):
            t = res.select("boot_%s" % name, subject, "seconds", rep="1")
            if t:
                x = t[0]["value"]
                # Labels near the right edge go to the left of their line.
                side = "right offset -0.5,0" if x > 0.6 * xmax else "left offset 0.5,0"
                marks.append("set arrow from %f, graph 0 to %f, graph 1 nohead lc rgb '%s' dt 4" % (x, x, color))
                marks.append("set label '%s' at %f, graph %.2f %s tc rgb '%s'" % (label, x, height, side, color))
        panels.append("unset arrow; unset label\nset title '%s: bytes in the cache over time, shaped link'\n%s\nplot %s\n"
                      % (title, "\n".join(marks), ", ".join(curves)))
    if not panels:
        return None
    png = os.path.join(out_dir, "lazy-boot.png")
    script = ("set terminal pngcairo size 1000,%d font ',10'\nset output '%s'\n"
              "set multiplot layout %d,1\nset xlabel 'seconds'\nset ylabel 'MiB cached'\n"
              "set key bottom right\nset grid\nset yrange [0:*]\n%sunset multiplot\n"
              % (380 * len(panels), png, len(panels), "".join(panels)))
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    return png


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--machine", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--total-seconds", type=int, required=True)
    parser.add_argument("--quick", default="0")
    args = parser.parse_args()
    res = Results(args.results)
    with open(args.machine) as f:
        machine = json.load(f)

    rows = []
    seq_rows(res, rows)
    boot_rows(res, rows)
    other_rows(res, rows)
    png = plot(args.out, res)

    elapsed = {r["subject"]: r["value"] for r in res.records if r["workload"] == "_elapsed"}
    loads = [r["value"] for r in res.records if r["workload"] == "_load"]
    mode = "quick (BENCH_QUICK=1)" if args.quick == "1" else "full"
    head = ("nidofs benchmark, %s mode, %s; %s cores (%s), %s GiB, kernel %s, KVM: %s; took %d s"
            % (mode, machine["date"], machine["cores"], machine["cpu"], machine["memory_gib"],
               machine["kernel"], machine["kvm"], args.total_seconds))
    if loads:
        head += "; load average before the workloads %.1f to %.1f" % (min(loads), max(loads))
    table = markdown(rows)

    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(head + "\n\n" + table + "\n")
    doc = {"mode": mode, "machine": machine, "total_seconds": args.total_seconds,
           "workload_seconds": elapsed, "rows": rows, "records": res.records}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=2)

    print(head)
    print()
    print(table)
    print()
    print("peers: " + "; ".join("%s %s" % (k, v) for k, v in machine["versions"].items()))
    print("written: %s, %s%s" % (os.path.join(args.out, "table.md"), os.path.join(args.out, "results.json"),
                                 ", " + png if png else ""))


if __name__ == "__main__":
    main()
