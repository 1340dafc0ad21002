#!/usr/bin/env bash
# The load test: builds ./cmd/caddy and the peer (bench/peer), starts both
# on loopback with a local upstream user check (the peer binary in its
# -serve-check mode: a plain Go server, so that neither side pays for the
# other's upstream), and runs wrk against
#   1. an unprotected respond route (the ceiling),
#   2. the same route behind oauth2_bearer with a valid token,
#   3. the same route behind basic_auth (Caddy's own, cached),
#   4. the password grant (a pool of clients, 1000 users),
#   5. the refresh grant,
#   6. the peer's bearer check and password grant,
# then watches Caddy's resident memory under the bearer load.
# Settings: DURATION (10s), THREADS (4; thread n is client n), CONNS (64),
# MEMTIME (60 seconds), KEEP=1 keeps the work folder.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
THREADS=${THREADS:-4}
CONNS=${CONNS:-64}
MEMTIME=${MEMTIME:-60}

if ! command -v wrk >/dev/null; then
	echo "installing wrk (Debian package)" >&2
	if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
fi

W=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ "${KEEP:-}" = 1 ] && echo "work folder: $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT

echo "building ./cmd/caddy and bench/peer" >&2
go build -o "$W/caddy" ./cmd/caddy
(cd bench/peer && go build -o "$W/peer" .)

export XDG_DATA_HOME="$W/data" XDG_CONFIG_HOME="$W/config"
SALT=$("$W/caddy" oauth2 gen-salt)
printf '{\n\toauth2 {\n\t\tsalt %s\n\t}\n}\n' "$SALT" > "$W/salt.Caddyfile"
clients=""
basics=()
for i in $(seq 1 "$THREADS"); do
	hash=$(printf 'bench-secret\n' | "$W/caddy" oauth2 hash-secret --config "$W/salt.Caddyfile" 2>/dev/null)
	clients+=$'\t\t'"client bench-$i $hash"$'\n'
	basics+=("$(printf 'bench-%s:bench-secret' "$i" | base64 -w0)")
done
BASIC_PW=$("$W/caddy" hash-password --plaintext bench-pw --algorithm bcrypt 2>/dev/null)

cat > "$W/Caddyfile" <<CADDYFILE
{
	admin localhost:2997
	http_port 9280
	https_port 9643
	local_certs
	skip_install_trust
	oauth2 {
		storage bbolt $W/oauth2.db
		salt $SALT
$clients	}
}

https://localhost:9643 {
	oauth2_token {
		auth_check http://127.0.0.1:9281/check
	}
	handle /open {
		respond "ok"
	}
	handle /bearer {
		oauth2_bearer
		respond "ok"
	}
	handle /basic {
		basic_auth {
			bench $BASIC_PW
		}
		respond "ok"
	}
}
CADDYFILE

"$W/peer" -serve-check 127.0.0.1:9281 > "$W/check.log" 2>&1 &
pids+=($!)
"$W/caddy" run --config "$W/Caddyfile" > "$W/caddy.log" 2>&1 &
caddy_pid=$!
pids+=("$caddy_pid")
"$W/peer" -addr 127.0.0.1:9644 -check http://127.0.0.1:9281/check -clients "$THREADS" > "$W/peer.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
	if curl -sk -o /dev/null https://localhost:9643/open && curl -sk -o /dev/null https://localhost:9644/bearer; then
		break
	fi
	sleep 0.2
done

token() { # url client-basic → access token
	curl -sk -H "Authorization: Basic $2" -d grant_type=password -d username=user1 -d password=pw1 "$1" |
		sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}
TOKEN=$(token https://localhost:9643/oauth2/token "${basics[0]}")
PEER_TOKEN=$(token https://localhost:9644/oauth2/token "${basics[0]}")
[ -n "$TOKEN" ] && [ -n "$PEER_TOKEN" ] || { echo "could not get tokens; see $W/caddy.log, $W/peer.log" >&2; KEEP=1; exit 1; }

# Warm up what caches: basic_auth's bcrypt result, and each client's
# scrypt check, so that no run measures a first hash.
BASIC_AUTH="Basic $(printf 'bench:bench-pw' | base64 -w0)"
curl -sk -o /dev/null -H "Authorization: $BASIC_AUTH" https://localhost:9643/basic
curl -sk -o /dev/null -H "Authorization: Bearer $TOKEN" https://localhost:9643/bearer
for b in "${basics[@]}"; do token https://localhost:9643/oauth2/token "$b" >/dev/null; token https://localhost:9644/oauth2/token "$b" >/dev/null; done

# run <name> <wrk args…>: one wrk run, its summary line kept in $W/results.
run() {
	local name=$1
	shift
	echo "wrk: $name" >&2
	wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" > "$W/$name.wrk" 2>&1 || echo "wrk failed: $name (see $W/$name.wrk)" >&2
	# requests/s counts only 2xx answers: a run of errors must not look fast.
	awk -v name="$name" '
		function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
		function secs(v) { if (v ~ /ms$/) return v / 1000; if (v ~ /m$/) return v * 60; return v + 0 }
		/requests in/ { total = $1; dur = secs(substr($4, 1, length($4) - 1)) }
		/^ +50%/ { p50 = ms($2) }
		/^ +99%/ { p99 = ms($2) }
		/Non-2xx/ { bad = $NF }
		/Socket errors/ { errs = $0 }
		END {
			ok = total - bad
			printf "%s %s %s %s %s %s\n", name, (dur > 0 ? ok / dur : 0), p50, p99, bad + 0, (errs == "" ? "-" : "errors")
		}
	' "$W/$name.wrk" >> "$W/results"
}

run open https://localhost:9643/open
run bearer -H "Authorization: Bearer $TOKEN" https://localhost:9643/bearer
run basic_auth -H "Authorization: $BASIC_AUTH" https://localhost:9643/basic
run password -s bench/wrk/password.lua https://localhost:9643/oauth2/token -- "$W" "${basics[@]}"
run refresh -s bench/wrk/refresh.lua https://localhost:9643/oauth2/token -- "$W" "${basics[@]}"
run peer_bearer -H "Authorization: Bearer $PEER_TOKEN" https://localhost:9644/bearer
mkdir -p "$W/peer-rt"
run peer_password -s bench/wrk/password.lua https://localhost:9644/oauth2/token -- "$W/peer-rt" "${basics[@]}"

echo
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, wrk -t$THREADS -c$CONNS -d$DURATION"
awk '
	NR == FNR && $1 == "open" { ceiling = $2 }
	{ rows[NR] = $0 }
	END {
		printf "%-14s %12s %10s %10s %8s %8s   %s\n", "run", "2xx/s", "p50 ms", "p99 ms", "non-2xx", "sockets", "vs open"
		for (i = 1; i <= NR; i++) {
			split(rows[i], f, " ")
			ratio = (f[1] == "bearer" || f[1] == "basic_auth") ? sprintf("%.2f", f[2] / ceiling) : ""
			printf "%-14s %12.0f %10.2f %10.2f %8s %8s   %s\n", f[1], f[2], f[3], f[4], f[5], (f[6] == "-" ? "ok" : f[6]), ratio
		}
	}
' "$W/results"

echo
# A pool of live access tokens (the refresh run rotated away the first
# run's): another short password run.
mkdir -p "$W/pool"
wrk -t"$THREADS" -c"$CONNS" -d5s -s bench/wrk/password.lua https://localhost:9643/oauth2/token -- "$W/pool" "${basics[@]}" > "$W/pool.wrk" 2>&1
pool=$(cat "$W"/pool/at-*.txt | wc -l)
echo "Caddy's resident memory under the bearer load, cycling through $pool access tokens, every 5 s for ${MEMTIME} s:"
wrk -t"$THREADS" -c"$CONNS" -d"${MEMTIME}s" -s bench/wrk/bearer_pool.lua https://localhost:9643/bearer -- "$W"/pool/at-*.txt > "$W/mem.wrk" 2>&1 &
wrk_pid=$!
samples=""
for _ in $(seq 0 5 "$MEMTIME"); do
	rss=$(awk '/VmRSS/ { print $2 }' "/proc/$caddy_pid/status")
	samples+="$((rss / 1024)) "
	sleep 5
done
wait "$wrk_pid" || true
echo "RSS MiB: $samples"
grep -E "Requests/sec|Non-2xx" "$W/mem.wrk" | sed 's/^/  /' 
