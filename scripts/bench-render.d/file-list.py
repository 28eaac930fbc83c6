"""The floor's input: every directory and file below REF (one render's output), as a list
LIST ("d DIR", "f PATH SIZE OFFSET") and the files' bytes in one blob LIST.data."""
import os
import sys

ref, lst = sys.argv[1], sys.argv[2]
dirs, files = [], []
for root, _, names in os.walk(ref):
    rel = os.path.relpath(root, ref)
    if rel != ".":
        dirs.append(rel)
    files += [n if rel == "." else os.path.join(rel, n) for n in sorted(names)]
offset = 0
with open(lst, "w") as out, open(lst + ".data", "wb") as data:
    for d in sorted(dirs, key=lambda d: d.count("/")):
        out.write(f"d {d}\n")
    for f in files:
        with open(os.path.join(ref, f), "rb") as src:
            b = src.read()
        data.write(b)
        out.write(f"f {f} {len(b)} {offset}\n")
        offset += len(b)
