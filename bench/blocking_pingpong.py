"""Ping-pong through blocking pops: one client BLPOPs `{p}ping` and pushes
what it gets onto `{p}pong`; another pushes onto `{p}ping` and BLPOPs
`{p}pong`. A round trip is two pushes and two blocked pops, each woken by
the other's push. Prints the round trips' p50 and p99.

Usage: blocking_pingpong.py HOST PORT_A PORT_B ROUNDS
"""
import sys
import threading
import time

import redis

host, port_a, port_b, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
a = redis.Redis(host=host, port=port_a)
b = redis.Redis(host=host, port=port_b)
a.delete("{p}ping", "{p}pong")


def echo():
    for _ in range(rounds):
        _, v = a.blpop(["{p}ping"], 0)
        a.rpush("{p}pong", v)


t = threading.Thread(target=echo)
t.start()
took = []
for i in range(rounds):
    began = time.perf_counter()
    b.rpush("{p}ping", i)
    b.blpop(["{p}pong"], 0)
    took.append(time.perf_counter() - began)
t.join()
took.sort()
print(f"{rounds} round trips: p50 {took[rounds // 2] * 1000:.2f} ms, p99 {took[int(rounds * 0.99)] * 1000:.2f} ms")
