"""The same cheapest-offer query as bench/pricing.ts, answered the way SkyPilot's optimizer filters its catalog:
a pandas DataFrame filtered by vCPUs/memory/GPU/region, then the row with the lowest price.

usage: python3 bench/pricing_pandas.py <vms.csv> <iterations> <vcpus> <memory_gib> <region_prefix>
prints one JSON line: rows, load_ms, p50_ms, p99_ms, and the chosen row.
"""
import json
import sys
import time

import pandas as pd


def main() -> None:
    path, iterations, vcpus, memory, region_prefix = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    t0 = time.perf_counter()
    df = pd.read_csv(path)
    load_ms = (time.perf_counter() - t0) * 1000

    def query():
        sel = df[(df["vCPUs"] >= vcpus) & (df["MemoryGiB"] >= memory) & df["AcceleratorName"].isna()]
        if region_prefix:
            sel = sel[sel["Region"].str.startswith(region_prefix)]
        sel = sel[sel["Price"].notna() & (sel["Price"] > 0)]
        return sel.loc[sel["Price"].idxmin()]

    query()
    times = []
    best = None
    for _ in range(iterations):
        t = time.perf_counter()
        best = query()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(json.dumps({
        "rows": len(df),
        "load_ms": round(load_ms, 1),
        "p50_ms": round(times[len(times) // 2], 3),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3),
        "best": {"InstanceType": best["InstanceType"], "Region": best["Region"], "AvailabilityZone": best["AvailabilityZone"], "Price": float(best["Price"])},
    }))


if __name__ == "__main__":
    main()
