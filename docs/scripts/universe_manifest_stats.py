"""Summaries of generated corpora for docs/training.md: candidates and kept systems by family, the reasons for
rejection, the candidates dropped by the distance rule and the near misses (kept, but within 1.5 times the
threshold of a held-out system).

Usage: ``python docs/scripts/universe_manifest_stats.py docs/training-runs/universe/train3-manifest.json ...``
"""

from __future__ import annotations

import argparse
import collections
import json


def summary(path: str) -> str:
    manifest = json.loads(open(path).read())
    candidates, threshold = manifest["candidates"], manifest["reference"]["threshold"]
    drawn, kept = collections.Counter(), collections.Counter()
    reasons = collections.Counter()
    for entry in candidates.values():
        family = entry["spec"]["family"]
        drawn[family] += 1
        if "rejected" in entry:
            reasons[entry["rejected"].split(" (")[0].replace(" 90 s", " the limit").replace(" 30 s", " the limit")] += 1
        else:
            kept[family] += 1
    lines = [f"**{path}** (settings {manifest['settings']}, threshold {threshold:.3f}):", ""]
    lines += ["| family | drawn | kept |", "|---|---|---|"]
    lines += [f"| {f} | {drawn[f]} | {kept[f]} |" for f in sorted(drawn)]
    lines += [f"| all | {sum(drawn.values())} | {sum(kept.values())} |", ""]
    lines += ["Rejected: " + "; ".join(f"{r}: {n}" for r, n in reasons.most_common()) + ".", ""]
    dropped = [
        f"{k} ({'+'.join(v['spec'].get('systems') or ['quadratic'])}, {v['spec']['family']}): {v['rejected']}"
        for k, v in sorted(candidates.items())
        if "near the held-out" in v.get("rejected", "")
    ]
    lines += ["Dropped by the distance rule: " + ("; ".join(dropped) if dropped else "none") + ".", ""]
    near = sorted(
        (
            v["distance"],
            k,
            v["spec"]["family"],
            "+".join(v["spec"].get("systems") or ["quadratic"]),
            v["nearest_held_out"],
        )
        for k, v in candidates.items()
        if "rejected" not in v and v["distance"] < 1.5 * threshold
    )
    lines += [
        f"Near misses (kept, distance below {1.5 * threshold:.3f}): "
        + ("; ".join(f"{k} {f} {s} -> {h} {d:.2f}" for d, k, f, s, h in near) if near else "none")
        + "."
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifests", nargs="+")
    args = parser.parse_args()
    print("\n\n".join(summary(p) for p in args.manifests))


if __name__ == "__main__":
    main()
