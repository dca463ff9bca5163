"""Render values the way EMQX's Erlang code prints them on the CLI.

- atom():   Erlang atom syntax ('emqx@127.0.0.1' is quoted, emqx@localhost is not)
- pp_cluster_status(): io_lib:format("Cluster status: ~p~n", [#{running_nodes => [...],
  stopped_nodes => [...]}]) with io_lib_pretty's line breaking (80 columns)
- jiffy_pretty(): emqx_utils_json:encode(Term, [pretty, force_utf8]) (jiffy), as used by
  `cluster status --json` (jiffy lists map keys in reverse order)
"""

import json
import re

_RESERVED = {
    "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case", "catch",
    "cond", "div", "end", "fun", "if", "let", "not", "of", "or", "orelse", "receive", "rem", "try",
    "when", "xor", "maybe", "else",
}


def atom(name):
    name = str(name)
    if re.fullmatch(r"[a-z][A-Za-z0-9_@]*", name) and name not in _RESERVED:
        return name
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def term_list(items):
    return "[" + ",".join(atom(i) for i in items) + "]"


# ---------------------------------------------------------------------------------------------
# io_lib_pretty, reduced to what a map of atom lists needs.
# Terms: ("atom", text) | ("list", [terms]) | ("map", [(key_text, term)])

LINE = 80


def _flat(t):
    kind, v = t
    if kind == "atom":
        return v
    if kind == "list":
        return "[" + ",".join(_flat(x) for x in v) + "]"
    return "#{" + ",".join("%s => %s" % (k, _flat(x)) for k, x in v) + "}"


def _is_atomic(t):
    return t[0] == "atom" or (t[0] == "list" and not t[1])


def _pp(t, col, ind, ld, w, m):
    """io_lib_pretty:pp/8 (col is 1-based; returns the text)."""
    flat = _flat(t)
    n = len(flat)
    if n < LINE - col - ld and n + w + ld <= m:
        return flat
    kind, v = t
    if kind == "atom" or (kind == "list" and not v):
        return flat
    if kind == "list":
        return "[" + _pp_list(v, col + 1, ind + 1, ld, w + 1, m) + "]"
    return "#{" + _pp_map(v, col + 2, ind + 2, ld, w + 1, m) + "}"


def _last_depth(rest, ld):
    return ld + 1 if not rest else 0


def _pp_element(e, col, ind, ld, w, m):
    flat = _flat(e)
    n = len(flat)
    if n < LINE - col - ld and n + w + ld <= m and _is_atomic(e):
        return flat, n
    return _pp(e, col, ind, ld, w, m), LINE


def _pp_list(items, col0, ind, ld, w, m):
    es, we = _pp_element(items[0], col0, ind, _last_depth(items[1:], ld), w, m)
    return es + _pp_tail(items[1:], col0, col0 + we, ind, ld, w + we, m)


def _pp_tail(items, col0, col, ind, ld, w, m):
    if not items:
        return ""
    e, rest = items[0], items[1:]
    ld1 = _last_depth(rest, ld)
    elen = 1 + len(_flat(e))
    fits = (ld1 == 0 and elen + 1 < LINE - col and w + elen + 1 <= m) or \
           (ld1 > 0 and elen < LINE - col - ld1 and w + elen + ld1 <= m)
    if fits and _is_atomic(e):
        return "," + _flat(e) + _pp_tail(rest, col0, col + elen, ind, ld, w + elen, m)
    es, we = _pp_element(e, col0, ind, ld1, 0, m)
    return ",\n" + " " * (ind - 1) + es + _pp_tail(rest, col0, col0 + we, ind, ld, we, m)


def _pair_flat(p):
    return "%s => %s" % (p[0], _flat(p[1]))


def _pp_pair(p, col, ind, ld, w, m):
    flat = _pair_flat(p)
    n = len(flat)
    if n < LINE - col - ld and n + w + ld <= m:
        return flat, (n if _is_atomic(p[1]) else LINE)
    vind = ind + 4
    return p[0] + " =>\n" + " " * (vind - 1) + _pp(p[1], col + 4, vind, ld, 0, m), LINE


def _pp_map(pairs, col, ind, ld, w, m):
    ps, pw = _pp_pair(pairs[0], col, ind, _last_depth(pairs[1:], ld), w, m)
    return ps + _pp_pairs_tail(pairs[1:], col, col + pw, ind, ld, pw, m)


def _pp_pairs_tail(pairs, col0, col, ind, ld, w, m):
    if not pairs:
        return ""
    p, rest = pairs[0], pairs[1:]
    ld1 = _last_depth(rest, ld)
    elen = 1 + len(_pair_flat(p))
    fits = (ld1 == 0 and elen + 1 < LINE - col and w + elen + 1 <= m) or \
           (ld1 > 0 and elen < LINE - col - ld1 and w + elen + ld1 <= m)
    if fits and _is_atomic(p[1]):
        return "," + _pair_flat(p) + _pp_pairs_tail(rest, col0, col + elen, ind, ld, w + elen, m)
    ps, pw = _pp_pair(p, col0, ind, ld1, 0, m)
    return ",\n" + " " * (ind - 1) + ps + _pp_pairs_tail(rest, col0, col0 + pw, ind, ld, pw, m)


def pp(term, col):
    """Print `term` starting at 1-based column `col` (io_lib_pretty:print/4 with M = -1)."""
    m = len(_flat(term))
    if m < LINE - col:
        return _flat(term)
    return _pp(term, col, col, 0, 0, m)


def cluster_status_text(running, stopped):
    term = ("map", [
        ("running_nodes", ("list", [("atom", atom(n)) for n in running])),
        ("stopped_nodes", ("list", [("atom", atom(n)) for n in stopped])),
    ])
    prefix = "Cluster status: "
    return prefix + pp(term, len(prefix) + 1) + "\n"


# ---------------------------------------------------------------------------------------------
# jiffy pretty printer

def jiffy_pretty(value, indent=0):
    pad = "  " * (indent + 1)
    end = "  " * indent
    if isinstance(value, dict):
        items = list(value.items())[::-1]  # jiffy walks maps from the last key
        if not items:
            return "{\n" + pad + "\n" + end + "}"
        body = ",\n".join(pad + json.dumps(str(k)) + " : " + jiffy_pretty(v, indent + 1) for k, v in items)
        return "{\n" + body + "\n" + end + "}"
    if isinstance(value, list):
        if not value:
            return "[\n" + pad + "\n" + end + "]"
        body = ",\n".join(pad + jiffy_pretty(v, indent + 1) for v in value)
        return "[\n" + body + "\n" + end + "]"
    return json.dumps(value, ensure_ascii=False)


def cluster_status_json(running, stopped):
    # sort_map_list_fields/1 sorts each list; keys in Erlang map order (running, stopped)
    info = {"running_nodes": sorted(running), "stopped_nodes": sorted(stopped)}
    return jiffy_pretty(info) + "\n"
