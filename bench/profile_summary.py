"""Summarise a py-spy raw (collapsed stacks) profile: time per thread, inclusive and leaf.

py-spy record -p PID -d 20 -r 200 -f raw -o profile.txt --threads
python bench/profile_summary.py profile.txt
"""

from __future__ import annotations

import sys
from collections import Counter


def _name(frame: str) -> str:
    function, _, where = frame.partition(" (")
    return f"{function} ({where.rsplit('/', 1)[-1]}" if where else function


def main(path: str, top: int = 30) -> None:
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count_text = line.rstrip().rpartition(" ")
            count = int(count_text)
            total += count
            frames = stack.split(";")
            threads[frames[0].split(" (")[0] + " " + frames[0].rsplit(":", 1)[-1].strip()] += count
            for name in {_name(fr) for fr in frames[1:]}:
                inclusive[name] += count
            leaf[_name(frames[-1])] += count
    print(f"{total} samples\n\nby thread:")
    for name, count in threads.most_common():
        print(f"  {100 * count / total:5.1f}%  {name}")
    print("\ninclusive (a frame anywhere on the stack):")
    for name, count in inclusive.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {name}")
    print("\nleaf (where the sample was taken):")
    for name, count in leaf.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main(sys.argv[1])
