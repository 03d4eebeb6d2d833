#!/usr/bin/env python3
"""A room bot for jawas-ws --room-bot (docs/rooms.md): greets members,
answers /who (who is here) and /roll (a die for the room), and echoes
what is said to it alone. One line per event in, one line per answer out,
fields separated by tabs; flush after each answer."""
import random
import sys

members = []


def say(*fields):
    print("\t".join(fields), flush=True)


for line in sys.stdin:
    event = line.rstrip("\n").split("\t")
    kind, who = event[0], event[1] if len(event) > 1 else ""
    text = event[2] if len(event) > 2 else ""
    if kind == "join":
        members.append(who)
        say("to", who, "welcome! %d here. Try /who or /roll" % len(members))
    elif kind == "leave":
        if who in members:
            members.remove(who)
    elif kind == "msg" and text == "/who":
        say("to", who, "here: " + ", ".join(members))
    elif kind == "msg" and text == "/roll":
        say("all", "%s rolled %d" % (who[-4:], random.randint(1, 6)))
    elif kind == "dm":
        say("to", who, "you told me: " + text)
