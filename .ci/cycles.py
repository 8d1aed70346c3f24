"""Find import cycles in a cargo-modules DOT graph on stdin (see check-cycles.sh)."""
import re, sys
crate = sys.argv[1]
edges = {}
for line in sys.stdin:
    m = re.match(r'\s*"([^"]+)" -> "([^"]+)" \[label="uses"', line)
    if m and m.group(1) != m.group(2):
        edges.setdefault(m.group(1), set()).add(m.group(2))
# Tarjan's strongly connected components: any component of two or more modules is a cycle.
index, low, on, stack, sccs, n = {}, {}, set(), [], [], [0]
def visit(v):
    index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in list(edges):
    if v not in index: visit(v)
nodes = set(edges) | {w for ws in edges.values() for w in ws}
# A graph with no "uses" edge means cargo-modules printed something this script cannot read
# (a new output format, an error page): that must fail, not pass as "no cycle".
if not edges:
    print(f"{crate}: no 'uses' edge read from cargo-modules' output; cannot check", file=sys.stderr)
    sys.exit(1)
if sccs:
    for comp in sccs:
        print(f"{crate}: import cycle among {len(comp)} modules:")
        for v in comp:
            print(f"   {v} -> " + ", ".join(sorted(w for w in edges.get(v, ()) if w in comp)))
    sys.exit(1)
print(f"{crate}: {len(nodes)} modules, {sum(len(w) for w in edges.values())} use edges, no cycle")
