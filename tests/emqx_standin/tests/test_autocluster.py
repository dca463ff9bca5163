"""Static discovery as ekka 0.23.2 runs it (src/ekka_autocluster.erl): discovery is retried every
5 s until every seed answers, and each node joins the OLDEST member among the live seeds (smallest
mria membership guid), so clusters that booted apart merge by themselves, with no `cluster join`."""

import os
import signal
import time

from standin import wait_for


def _static(nodes_, all_nodes):
    seeds = ", ".join('"%s"' % n.name for n in all_nodes)
    for n in nodes_:
        with open(os.path.join(n.etc, "emqx.conf")) as fh:
            text = fh.read()
        n.write_conf(text.replace("discovery_strategy = manual", "discovery_strategy = static").replace(
            "static.seeds = []", "static.seeds = [%s]" % seeds))


def _running(n):
    st = n.cluster_status()
    return sorted(st["running_nodes"]), sorted(st["stopped_nodes"])


def _start_all(group):
    for n in group:
        n.start(wait=False)
    for n in group:
        n.wait_up()


def test_clusters_that_booted_apart_merge_into_the_oldest(nodes):
    """2 nodes boot first and cluster; they are then cut off (SIGSTOP) while 3 younger nodes boot
    and form a cluster of their own. Once all seeds answer again, every node of the younger
    3-node cluster leaves it and joins the oldest member: one cluster of 5, nobody ran a join."""
    old = nodes(2, discovery="static")
    young = nodes(3, discovery="static")
    everyone = old + young
    _static(everyone, everyone)
    names = sorted(n.name for n in everyone)

    old[0].start()                       # the oldest member of all
    old[1].start()
    want_old = sorted(n.name for n in old)
    wait_for(lambda: all(_running(n) == (want_old, []) for n in old), timeout=30,
             what="the first two nodes to cluster")

    for n in old:                        # partition: the old cluster stops answering
        os.kill(n.proc.pid, signal.SIGSTOP)
    try:
        _start_all(young)
        want_young = sorted(n.name for n in young)
        wait_for(lambda: all(_running(n) == (want_young, []) for n in young), timeout=40,
                 what="the three younger nodes to form a cluster of their own")
    finally:
        for n in old:
            os.kill(n.proc.pid, signal.SIGCONT)

    t0 = time.monotonic()
    wait_for(lambda: all(_running(n) == (names, []) for n in everyone), timeout=45,
             what="both clusters to merge into one")
    assert time.monotonic() - t0 < 45
    # the younger nodes moved to the old cluster (they joined the oldest member), not the reverse
    for n in young:
        log = n.logtext()
        assert "joining with '%s'" % old[0].name in log, log[-3000:]
    assert "joining with" not in old[0].logtext()
    assert all("joining with '%s'" % y.name not in old[1].logtext() for y in young)
