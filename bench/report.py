"""pytest-benchmark JSON -> the README's markdown table (medians, and the ratios the targets name)."""
from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    data = json.load(open(path))
    mi = data["machine_info"]
    med: dict[str, dict[str, float]] = defaultdict(dict)
    for b in data["benchmarks"]:
        size = b["param"].split("-")[-1] if b.get("param") else ""
        size = b["params"].get("size", size)
        name = b["name"].split("[")[0].removeprefix("test_")
        if "stage" in b["params"]:
            name = f"stage {b['params']['stage']}"
        med[size][name] = b["stats"]["median"]
    print(f"Machine: {mi.get('cpu_model')} ({mi.get('cpu_count')} cores), Python {mi.get('python_version')}, "
          f"numpy {mi.get('numpy')}, trimesh {mi.get('trimesh')}; {data['datetime'][:10]}; median of "
          f"{data['benchmarks'][0]['stats']['rounds']} rounds.\n")
    sizes = sorted(med)
    print("| measure | " + " | ".join(sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    names = sorted({n for s in sizes for n in med[s]}, key=lambda n: (not n.startswith("stage"), n))
    for n in names:
        print(f"| {n} | " + " | ".join(f"{med[s].get(n, float('nan')):.3f} s" for s in sizes) + " |")
    for s in sizes:
        m = med[s]
        if {"write_glb", "write_raw_floor"} <= m.keys():
            print(f"\n{s}: GLB write / raw write = {m['write_glb'] / m['write_raw_floor']:.2f}x (target <= 1.5x)", end="")
        if {"write_glb", "write_trimesh"} <= m.keys():
            print(f"; trimesh export / our GLB write = {m['write_trimesh'] / m['write_glb']:.1f}x", end="")
        if {"end_to_end", "peer_numpy_mesh_trimesh_export"} <= m.keys():
            print(f"; numpy+trimesh pipeline / ours = {m['peer_numpy_mesh_trimesh_export'] / m['end_to_end']:.1f}x "
                  f"(target >= 10x)", end="")
    print()


if __name__ == "__main__":
    main(sys.argv[1])
