#!/usr/bin/env python3
"""Writes a generated jawas-blog site of N posts (default 1,000) for the
blog benchmark: posts of a few hundred words with a fenced code block, a
table now and then, five tags each from a pool of 40, dates one day apart.
Deterministic (seeded), so two runs measure the same site.

Usage: gensite.py DIR [N]
"""
import os
import random
import sys

WORDS = (
    "process connection engine socket kernel server blog post cache page "
    "request reply fork exec listen accept reap signal memory file "
    "markdown template feed tag index build render period stamp lock "
    "rename atomic reader writer client latency throughput measure"
).split()


def paragraph(rng, n):
    words = [rng.choice(WORDS) for _ in range(n)]
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def post(rng, i):
    tags = rng.sample([f"topic-{t}" for t in range(40)], 5)
    day = 1 + i
    year, rest = 2020 + day // 360, day % 360
    month, mday = 1 + rest // 30, 1 + rest % 30
    mday = min(mday, 28)
    body = [paragraph(rng, 60), "", "<!-- more -->", ""]
    for _ in range(4):
        body += [paragraph(rng, 70), ""]
    body += ["```rust", f"fn post_{i}(n: u64) -> u64 {{", "    (0..n).map(|x| x * x).sum()", "}", "```", ""]
    if i % 5 == 0:
        body += ["| a | b |", "|---|---|", f"| {i} | {i * 2} |", ""]
    body += [paragraph(rng, 50), ""]
    front = [
        "+++",
        f'title = "Generated post number {i}"',
        f"date = {year:04}-{month:02}-{mday:02}T12:00:00Z",
        "tags = [" + ", ".join(f'"{t}"' for t in tags) + "]",
        "+++",
        "",
    ]
    return "\n".join(front + body)


def main():
    root = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    rng = random.Random(42)
    os.makedirs(os.path.join(root, "posts"), exist_ok=True)
    os.makedirs(os.path.join(root, "pages"), exist_ok=True)
    os.makedirs(os.path.join(root, "static"), exist_ok=True)
    with open(os.path.join(root, "site.toml"), "w") as f:
        f.write('title = "Bench"\nauthor = "Bench"\nbase_url = "http://127.0.0.1"\n'
                'description = "A generated site"\nposts_per_page = 10\n')
    for i in range(n):
        with open(os.path.join(root, "posts", f"post-{i:04}.md"), "w") as f:
            f.write(post(rng, i))
    with open(os.path.join(root, "pages", "about.md"), "w") as f:
        f.write('+++\ntitle = "About"\n+++\n\n' + paragraph(rng, 80) + "\n")


if __name__ == "__main__":
    main()
