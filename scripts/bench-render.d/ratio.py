"""Backstage's time as a multiple of the floor's, from hyperfine's --export-json."""
import json
import sys

with open(sys.argv[1]) as f:
    r = {x["command"]: x for x in json.load(f)["results"]}
b, f = r["backstage"], r["floor"]
print(
    f"backstage render: median {b['median'] * 1000:.1f} ms (mean {b['mean'] * 1000:.1f}); "
    f"floor: median {f['median'] * 1000:.1f} ms (mean {f['mean'] * 1000:.1f}); "
    f"backstage = {b['median'] / f['median']:.2f} x the floor"
)
