"""Lists the vector selectors of a PromQL expression (`metric{matchers}`, `metric`, `{matchers}`),
so the live check can ask, for each one, whether it matches any series. Why: an expression such
as `(sum(rate(misspelt_total[5m])) or vector(0))` returns a sample whatever the selector's
spelling, so "the expression returned data" proves nothing; at least one of its selectors must.

A small scanner rather than a full parser (no PromQL parser for Python is on the registries
here): it skips strings, comments, range and subquery brackets, numbers and durations, the
label lists of by/without/on/ignoring/group_left/group_right, function calls and aggregation
operators, and keeps what is left: the selectors.

usage: promql_selectors.py EXPR         # one selector per line
       promql_selectors.py --self-test
"""
import sys

LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
WORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}


def _skip_string(s, i):
    quote, i = s[i], i + 1
    while i < len(s) and s[i] != quote:
        i += 2 if s[i] == "\\" and quote != "`" else 1
    return i + 1


def _matching(s, i, open_, close):
    """Index just past the bracket that closes the one at s[i]."""
    depth = 0
    while i < len(s):
        c = s[i]
        if c in "\"'`":
            i = _skip_string(s, i)
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {open_!r} in {s!r}")


def _skip_space(s, i):
    while i < len(s) and s[i].isspace():
        i += 1
    return i


def selectors(expr):
    out, i, n = [], 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            i = _skip_string(expr, i)
        elif c == "#":
            while i < n and expr[i] != "\n":
                i += 1
        elif c == "[":
            i = _matching(expr, i, "[", "]")
        elif c == "{":
            j = _matching(expr, i, "{", "}")
            out.append(expr[i:j])
            i = j
        elif c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            while i < n and (expr[i].isalnum() or expr[i] in "._"):
                i += 1
        elif c.isalpha() or c in "_:":
            j = i
            while j < n and (expr[j].isalnum() or expr[j] in "_:"):
                j += 1
            word, k = expr[i:j], _skip_space(expr, j)
            nxt = expr[k] if k < n else ""
            if word in LABEL_LIST_KEYWORDS:
                i = _matching(expr, k, "(", ")") if nxt == "(" else k
            elif word.lower() in WORDS or word in AGGREGATIONS or nxt == "(":
                i = j  # an operator, a function or an aggregation: its arguments are scanned on
            elif nxt == "{":
                end = _matching(expr, k, "{", "}")
                out.append(word + expr[k:end])
                i = end
            else:
                out.append(word)
                i = j
        else:
            i += 1
    return out


CASES = [
    ("rate(tp2devops_http_requests_total[5m])", ["tp2devops_http_requests_total"]),
    ('(sum(rate(a_total{status_code=~"5.."}[5m])) or vector(0)) / sum(rate(a_total[5m]))',
     ['a_total{status_code=~"5.."}', "a_total"]),
    ('histogram_quantile(0.95, sum by (le, route) (rate(h_bucket{job="x", route="/a{b}"}[1m])))',
     ['h_bucket{job="x", route="/a{b}"}']),
    ('(sum(up{job="todo-api"}) or vector(0)) == 0', ['up{job="todo-api"}']),
    ("sum without (instance) (m1) > bool on (job) group_left (x) m2 offset 5m", ["m1", "m2"]),
    ('{__name__=~"trafficgen_.+"} unless ignoring (op) max_over_time(m3[10m:1m])',
     ['{__name__=~"trafficgen_.+"}', "m3"]),
    ("vector(1) + 2.5e3 * time()", []),
    ("count by (scenario) (trafficgen_target_rate)  # a comment with fake_metric", ["trafficgen_target_rate"]),
    ("topk(3, sum by (op) (rate(x:rec:rate1m[5m])))", ["x:rec:rate1m"]),
]


def self_test():
    bad = 0
    for expr, want in CASES:
        got = selectors(expr)
        if got != want:
            bad += 1
            print(f"FAIL {expr!r}: got {got}, want {want}")
    print(f"promql_selectors self-test: {len(CASES) - bad}/{len(CASES)} ok")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print("\n".join(selectors(sys.argv[1])))
