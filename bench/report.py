"""Turns bench/run's raw rows into the report: medians per route and concurrency, ratios to
the floors and the peer, cost growth. Usage: report.py RAW FLOORS_JSON DURATION RUNS USERS BIG"""
import json
import statistics
import sys

raw, floors_json, duration, runs, users, big = sys.argv[1:7]
floors = json.loads(floors_json)
rows, extra = {}, {}
for line in open(raw):
    f = line.rstrip("\n").split("\t")
    if len(f) == 3:
        extra[(f[0], f[1])] = float(f[2] or 0)
        continue
    label, mode, conc, _run, rps, p50, p99, err, rss, busy, floor = f
    rows.setdefault((label, mode, int(conc)), []).append(
        (float(rps), float(p50), float(p99), int(err), int(rss), float(busy), float(floor or 0)))


def med(key, i):
    v = rows.get(key)
    return statistics.median(r[i] for r in v) if v else None


def paired_ratio(key):
    """Median over runs of req/s divided by the floor measured right after that run."""
    v = [r[0] / r[6] for r in rows.get(key, []) if r[6] > 0]
    return statistics.median(v) if v else None


def paired_floors(mode):
    return sorted(r[6] for (label, m, _), v in rows.items() for r in v
                  if label.startswith("tessera") and m == mode and r[6] > 0)


def total_err(key):
    return sum(r[3] for r in rows.get(key, []))


def fmt(x, d=1):
    return "–" if x is None else f"{x:,.{d}f}"


hash_floor = floors["hash_verify_per_sec"]
sign_floor = floors["rs256_sign_per_sec"]
peer_floor = extra.get(("better-auth", "hash_floor_per_sec"))
out = []
w = out.append
w("# Tessera benchmark\n")
w(f"{floors['cores']} cores; wrk, {duration} s per run, median of {runs} runs; {users} seeded users "
  f"(growth: {big}); Argon2id m={floors['argon2_memory_kib']} KiB t={floors['argon2_iterations']}; "
  "load generator, server and database share the machine.\n")
w("## Floors (Tessera's own code, no HTTP, all cores)\n")
w(f"- password verifications: **{fmt(hash_floor)}/s** at the start")
w(f"- RS256-2048 signatures: **{fmt(sign_floor)}/s** at the start")
for mode, what in (("login", "password verifications"), ("anon", "RS256 signatures")):
    f = paired_floors(mode)
    if f:
        w(f"- {what}, measured for 3 s after each {mode} run ({len(f)} times): "
          f"min {fmt(f[0])}, median {fmt(statistics.median(f))}, max {fmt(f[-1])} per second")
if peer_floor:
    w(f"- better-auth's scrypt (N=16384, r=16, p=1) on all cores: **{fmt(peer_floor)}/s**")
w("")
w("## Routes\n")
PEER_ROUTE = {"login": "signin", "signup": "signup", "anon": "token", "jwks": "jwks"}


def ratio_text(key):
    """Login and loginAnonymous against their floor; the other routes against the peer."""
    label, mode, conc = key
    if not label.startswith("tessera"):
        return ""
    parts = []
    if mode in ("login", "anon") and paired_ratio(key):
        parts.append(f"{paired_ratio(key):.2f} of {'hash' if mode == 'login' else 'signature'} floor")
    peer = med(("better-auth", PEER_ROUTE.get(mode, ""), conc), 0)
    if peer:
        parts.append(f"{med(key, 0) / peer:.1f}× peer")
    return ", ".join(parts)


w("| server | route | conc | req/s | p50 ms | p99 ms | errors | peak RSS MiB | machine busy (cores) | ratio |")
w("|---|---|---|---|---|---|---|---|---|---|")
for key in sorted(rows):
    label, mode, conc = key
    w(f"| {label} | {mode} | {conc} | {fmt(med(key, 0))} | {fmt(med(key, 1), 2)} | {fmt(med(key, 2), 2)} | "
      f"{total_err(key)} | {fmt(max(r[4] for r in rows[key]) / 1024, 0)} | {fmt(med(key, 5), 2)} | {ratio_text(key)} |")
w("")
w("## Ratios\n")
w("| measure | value | target |")
w("|---|---|---|")
for backend in ["tessera-sqlite", "tessera-postgres"]:
    for conc in (16, 64):
        login = paired_ratio((backend, "login", conc))
        anon = paired_ratio((backend, "anon", conc))
        if login:
            w(f"| {backend} login / hash floor (c{conc}) | {login:.2f} | ≥ 0.85 |")
        if anon:
            w(f"| {backend} loginAnonymous / signature floor (c{conc}) | {anon:.2f} | ≥ 0.70 |")
for conc in (16, 64):
    pairs = [("login", "signin", "sign-in, raw", 1), ("signup", "signup", "sign-up, raw", 1),
             ("anon", "token", "JWT issuance", 5), ("jwks", "jwks", "JWKS", 10)]
    for ours, theirs, what, target in pairs:
        a = med(("tessera-sqlite", ours, conc), 0)
        b = med(("better-auth", theirs, conc), 0)
        if a and b:
            w(f"| Tessera / better-auth {what} (c{conc}) | {a / b:.1f}× | {'≥ %d×' % target if target > 1 else '> 1×'} |")
    a = med(("tessera-sqlite", "login", conc), 0)
    b = med(("better-auth", "signin", conc), 0)
    ours = paired_ratio(("tessera-sqlite", "login", conc))
    if ours and b and peer_floor:
        w(f"| sign-in as a fraction of its own hash floor (c{conc}) | Tessera {ours:.2f}, better-auth {b / peer_floor:.2f} | |")
# Growth: two fresh servers, USERS and BIG users with a password plus a tenth as many anonymous ones, same load.
gs, gb = f"tessera-sqlite-growth-{users}", f"tessera-sqlite-growth-{big}"
for mode, floor in (("login", "hash"), ("anon", "signature")):
    ps, pb = med((gs, mode, 16), 1), med((gb, mode, 16), 1)
    rs_, rb_ = paired_ratio((gs, mode, 16)), paired_ratio((gb, mode, 16))
    if ps and pb:
        w(f"| {mode} p50 at {big} users / at {users} (c16) | {pb / ps:.2f} ({fmt(pb, 1)} / {fmt(ps, 1)} ms) | ≤ 1.2 |")
    if rs_ and rb_:
        w(f"| {mode} throughput per {floor} floor at {big} users / at {users} (c16) | {rb_ / rs_:.2f} ({rb_:.2f} / {rs_:.2f}) | ≈ 1 |")
rs = extra.get((gs, "rss_after_load_kib"))
rb = extra.get((gb, "rss_after_load_kib"))
if rs and rb:
    w(f"| RSS after that load at {big} users / at {users} | {rb / rs:.2f} ({rb / 1024:.0f} / {rs / 1024:.0f} MiB) | flat |")
w("")
w("A ratio to a floor above 1 would mean the floor was measured on a slower moment of the "
  "machine than the run it is paired with (each floor waits for the server to go idle first).")
print("\n".join(out))
