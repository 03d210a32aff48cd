#!/bin/sh
# SPDX-License-Identifier: MIT
# Collector benchmark (not part of `meson test`; results go into docs/benchmarks.md):
#  1. ingest: N terminals (each its own client certificate), keep-alive, batched, against
#     mynaguard-collector (durable: synchronous=FULL, deduplicated) with its SQLite store and
#     with a PostgreSQL store (a server of the benchmark's own: initdb + pg_ctl in WORKDIR,
#     fsync = on, synchronous_commit = on, unix socket only), then the same events over
#     TLS (imtcp + ossl, client certificates required) into a file with rsyslogd — both started
#     here as unprivileged processes on 127.0.0.1 with their own configs;
#  2. dashboard API times on a generated database of 10,000 terminals and 10 million events.
# Usage: tests/bench/collector/run.sh [BUILDDIR] [WORKDIR]     (as root or as any user)
#   env: TERMINALS=1000 EVENTS=1000 BATCH=100 API_TERMINALS=10000 API_EVENTS_PER=1000
#        SKIP_INGEST=1 / SKIP_API=1 to run one half, SKIP_PACED=1 without the paced run,
#        SKIP_PG=1 without PostgreSQL, PG_BINDIR (default: the newest /usr/lib/postgresql/N/bin),
#        PERF=1 records `perf record -g` of the PostgreSQL run's collector (ingest/perf.data)
#        and server processes (ingest/perf-postgres.data)
#        SKIP_SQLITE=1 / SKIP_RSYSLOG=1 without the SQLite collector's closed-loop run / rsyslog
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
work=${2:-/var/tmp/mynaguard-bench-collector}
TERMINALS=${TERMINALS:-1000}
EVENTS=${EVENTS:-1000}
BATCH=${BATCH:-100}
API_TERMINALS=${API_TERMINALS:-10000}
API_EVENTS_PER=${API_EVENTS_PER:-1000}
collector=$build/collector/mynaguard-collector
[ -x "$collector" ] || { echo "build first: meson compile -C $build" >&2; exit 1; }
mkdir -p "$work"
chmod 0755 "$work"
cd "$work"
# servers started here are stopped whatever happens to the script
started=""
trap 'rc=$?; for p in $started; do kill "$p" 2>/dev/null || true; done; pg_stop 2>/dev/null || true; exit $rc' EXIT
trap 'exit 130' INT TERM

# Run the servers unprivileged when we are root.
if [ "$(id -u)" -eq 0 ]; then
	asuser="setpriv --reuid=65534 --regid=65534 --clear-groups --"
else
	asuser=""
fi

echo "== load generator"
cc -O2 -o loadgen "$here/loadgen.c" -lcurl -lssl -lcrypto -lpthread

echo "== certificates (cached in $work/pki)"
mkdir -p pki
(cd pki
if [ ! -f terminal-ca.pem ]; then
	for ca in server-ca terminal-ca; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $ca.key \
			-out $ca.pem -days 30 -subj "/CN=$ca" 2>/dev/null
	done
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
		-out server.csr -subj /CN=127.0.0.1 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1\n' > server.ext
	openssl x509 -req -in server.csr -CA server-ca.pem -CAkey server-ca.key -set_serial 1 \
		-out server.pem -days 30 -extfile server.ext 2>/dev/null
fi
# one certificate per terminal, made once: a bigger run only adds the missing ones
seq 0 $((TERMINALS - 1)) | xargs -P 2 -I{} sh -c '
	n=$(printf "%04d" {})
	[ -f term-$n.pem ] && exit 0
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout term-$n.key \
		-out term-$n.csr -subj /CN=term-$n 2>/dev/null
	openssl x509 -req -in term-$n.csr -CA terminal-ca.pem -CAkey terminal-ca.key \
		-set_serial $((4096 + {})) -out term-$n.pem.tmp -days 30 2>/dev/null
	mv term-$n.pem.tmp term-$n.pem
	rm -f term-$n.csr')
chmod 0644 pki/*.key
cat pki/server-ca.pem pki/terminal-ca.pem > pki/both-ca.pem

token=bench-token-0123456789abcdef
printf '%s\n' "$token" > token
chmod 0644 token  # read by the unprivileged collector; the collector refuses o+r
if [ -n "$asuser" ]; then chown 65534:65534 token; chmod 0600 token; fi

wait_ready() { # $1 = stdout file; prints the READY line
	i=0
	while ! grep -q '^READY' "$1" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 300 ] || { echo "no READY" >&2; cat "$1" >&2; exit 1; }
		sleep 0.1
	done
	grep '^READY' "$1"
}

if [ -z "${SKIP_INGEST:-}" ]; then
# PostgreSQL: a server of the benchmark's own, unprivileged, on a unix socket in $work/pg
pg_bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n | tail -1)}
if [ -n "$asuser" ]; then
	pguser=$(getent passwd postgres >/dev/null && echo postgres || echo nobody)
	pgas="setpriv --reuid=$(id -u $pguser) --regid=$(id -g $pguser) --init-groups --reset-env --"
else
	pguser=$(id -un)
	pgas=""
fi
pg_start() {
	pg_stop
	rm -rf pg && mkdir pg
	[ -z "$pgas" ] || { chown "$pguser" pg; chmod 0755 pg; }
	$pgas "$pg_bindir/initdb" -D "$work/pg/data" -A trust -U "$pguser" -E UTF8 --locale=C \
		--no-instructions > pg/initdb.log
	$pgas "$pg_bindir/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -t 60 \
		-o "-c listen_addresses='' -c unix_socket_directories=$work/pg -c fsync=on -c synchronous_commit=on -c shared_buffers=256MB -c max_wal_size=4GB" \
		start > /dev/null
	$pgas "$pg_bindir/createdb" -h "$work/pg" -U "$pguser" mynaguard
	pgpm=$(head -1 pg/data/postmaster.pid)
}
pg_stop() {
	[ -f pg/data/postmaster.pid ] || return 0
	$pgas "$pg_bindir/pg_ctl" -D "$work/pg/data" -m fast -w stop > /dev/null || true
}
pg_psql() {
	$pgas "$pg_bindir/psql" -h "$work/pg" -U "$pguser" -d mynaguard -X -q -A -t -c "$1"
}
pg_cpu() { # CPU ticks of the postmaster and all its children (backends, WAL writer, ...)
	for p in $pgpm $(ps -o pid= --ppid "$pgpm"); do
		awk '{print $14 + $15}' /proc/$p/stat 2>/dev/null || true
	done | awk '{s += $1} END {print s + 0}'
}
ticks_to_us_per_event() { # $1 ticks, $2 events
	awk -v t="$1" -v h="$(getconf CLK_TCK)" -v n="$2" 'BEGIN { printf "%.1f", n ? t / h * 1e6 / n : 0 }'
}

run_collector() { # $1 = label, $2 = events per terminal, $3 = batch, $4 = interval ms (0 = closed loop), $5 = sqlite|postgresql
echo "== ingest: mynaguard-collector ($5), $1: $TERMINALS terminals x $2 events, batches of $3"
rm -rf ingest && mkdir ingest && chmod 0777 ingest
if [ "$5" = postgresql ]; then
	pg_start
	store="backend = postgresql
url = postgresql:///mynaguard?host=$work/pg&user=$pguser"
else
	store="database = $work/ingest/collector.db"
fi
cat > ingest/collector.conf <<EOC
[ingest]
listen = 127.0.0.1:0
certificate = $work/pki/server.pem
key = $work/pki/server.key
client_ca = $work/pki/terminal-ca.pem
workers = 2
max_connections = $((TERMINALS + 100))
[dashboard]
listen = 127.0.0.1:0
token_file = $work/token
# the collector's own state files (on PostgreSQL their default is /var/lib/mynaguard-collector)
[alerts]
state = $work/ingest/alerts.db
[enroll]
database = $work/ingest/enroll.db
[store]
$store
EOC
$asuser "$collector" --config ingest/collector.conf > ingest/out 2> ingest/err &
cpid=$!
started="$started $cpid"
ready=$(wait_ready ingest/out)
port=$(echo "$ready" | sed 's/.*ingest=127.0.0.1:\([0-9]*\).*/\1/')
if [ -n "${PERF:-}" ] && [ "$5" = postgresql ] && [ "$4" -eq 0 ]; then
	perf record -g -o ingest/perf.data -p $cpid 2> ingest/perf.err &
	perfpid=$!
	perf record -g -o ingest/perf-postgres.data \
		-p "$(echo $pgpm $(ps -o pid= --ppid "$pgpm") | tr ' ' ,)" 2> ingest/perf-postgres.err &
	perfpid="$perfpid $!"
else
	perfpid=""
fi
cpu0=$(awk '{print $14 + $15}' /proc/$cpid/stat)
pcpu0=0
[ "$5" != postgresql ] || pcpu0=$(pg_cpu)
t0=$(date +%s.%N)
if [ "$4" -gt 0 ]; then
	./loadgen http "https://127.0.0.1:$port/v1/events" pki/server-ca.pem pki "$TERMINALS" "$2" "$3" "$4"
else
	./loadgen http "https://127.0.0.1:$port/v1/events" pki/server-ca.pem pki "$TERMINALS" "$2" "$3"
fi
t1=$(date +%s.%N)
cpu1=$(awk '{print $14 + $15}' /proc/$cpid/stat)
pcpu1=0
[ "$5" != postgresql ] || pcpu1=$(pg_cpu)
for p in $perfpid; do kill -INT "$p"; wait "$p" || true; done
kill $cpid 2>/dev/null || true
wait $cpid || true
total=$((TERMINALS * $2))
if [ "$5" = postgresql ]; then
	stored=$(pg_psql 'SELECT count(*) FROM events')
	dups=$(pg_psql 'SELECT count(*) FROM (SELECT 1 FROM events GROUP BY tid, seq HAVING count(*) > 1) d')
	pg_stop
else
	stored=$(sqlite3 ingest/collector.db 'SELECT count(*) FROM events')
	dups=$(sqlite3 ingest/collector.db 'SELECT count(*) FROM (SELECT 1 FROM events GROUP BY tid, seq HAVING count(*) > 1)')
fi
echo "collector $5 $1: stored=$stored (expected $total) duplicates=$dups" \
	"$(awk -v a="$t0" -v b="$t1" -v n="$total" 'BEGIN { printf "seconds=%.2f events_per_s=%.0f", b - a, n / (b - a) }')" \
	"collector_cpu_us_per_event=$(ticks_to_us_per_event $((cpu1 - cpu0)) $total)" \
	"postgres_cpu_us_per_event=$(ticks_to_us_per_event $((pcpu1 - pcpu0)) $total)" \
	"total_cpu_us_per_event=$(ticks_to_us_per_event $((cpu1 - cpu0 + pcpu1 - pcpu0)) $total)"
}
[ -n "${SKIP_SQLITE:-}" ] || run_collector "as fast as acknowledged" "$EVENTS" "$BATCH" 0 sqlite
[ -n "${SKIP_PG:-}" ] || run_collector "as fast as acknowledged" "$EVENTS" "$BATCH" 0 postgresql
if [ -z "${SKIP_PACED:-}" ]; then
	run_collector "paced, one batch of 10 per terminal per second" 400 10 1000 sqlite
fi

run_rsyslog() { # $1 = label, $2 = extra omfile parameters
echo "== ingest: rsyslogd $1 (imtcp + ossl, x509/certvalid) into a file, same events"
rm -rf rsyslog && mkdir rsyslog && chmod 0777 rsyslog
rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > rsyslog/rsyslog.conf <<EOC
global(workDirectory="$work/rsyslog"
       DefaultNetstreamDriver="ossl"
       DefaultNetstreamDriverCAFile="$work/pki/both-ca.pem"
       DefaultNetstreamDriverCertFile="$work/pki/server.pem"
       DefaultNetstreamDriverKeyFile="$work/pki/server.key"
       maxMessageSize="8k")
module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1"
       StreamDriver.AuthMode="x509/certvalid" MaxSessions="$((TERMINALS + 100))")
input(type="imtcp" address="127.0.0.1" port="$rport")
template(name="raw" type="string" string="%msg%\n")
action(type="omfile" file="$work/rsyslog/messages.log" template="raw" $2)
EOC
$asuser rsyslogd -n -f rsyslog/rsyslog.conf -i "$work/rsyslog/rsyslogd.pid" \
	-M /usr/lib/x86_64-linux-gnu/rsyslog > rsyslog/out 2>&1 &
rpid=$!
started="$started $rpid"
sleep 1
total=$((TERMINALS * EVENTS))
t0=$(date +%s.%N)
./loadgen syslog 127.0.0.1 "$rport" pki/server-ca.pem pki "$TERMINALS" "$EVENTS" || echo "loadgen: send errors"
lines=0
i=0
prev=""
while [ "$i" -lt 600 ]; do
	lines=$(wc -l < rsyslog/messages.log 2>/dev/null || echo 0)
	[ "$lines" -ge "$total" ] && break
	# stop waiting when nothing arrived for 5 s
	[ "$lines" = "$prev" ] && i=$((i + 50)) || i=$((i + 1))
	prev=$lines
	sleep 0.1
done
t1=$(date +%s.%N)
cpu=$(awk '{print $14 + $15}' /proc/$rpid/stat 2>/dev/null || echo 0)
kill $rpid 2>/dev/null || true
wait $rpid || true
echo "rsyslog $1: lines=$lines (expected $total) $(awk -v a="$t0" -v b="$t1" -v n="$lines" 'BEGIN { printf "seconds=%.2f lines_per_s=%.0f", b - a, n / (b - a) }') cpu_s=$((cpu / $(getconf CLK_TCK))) cpu_us_per_event=$(ticks_to_us_per_event "$cpu" "$lines")"
}
[ -n "${SKIP_PACED:-}" ] || [ -n "${SKIP_RSYSLOG:-}" ] || run_rsyslog "buffered" ""
[ -n "${SKIP_RSYSLOG:-}" ] || run_rsyslog "sync" 'sync="on"'
fi
[ -z "${SKIP_API:-}" ] || exit 0

echo "== dashboard API: $API_TERMINALS terminals x $API_EVENTS_PER events"
mkdir -p api
db=$work/api/collector-$API_TERMINALS-$API_EVENTS_PER.db
cat > api/collector.conf <<EOC
[ingest]
listen = 127.0.0.1:0
certificate = $work/pki/server.pem
key = $work/pki/server.key
client_ca = $work/pki/terminal-ca.pem
[dashboard]
listen = 127.0.0.1:0
token_file = $work/token
[store]
database = $db
retention = 0
EOC
if [ ! -f "$db.done" ]; then
	rm -f "$db" "$db-wal" "$db-shm"
	"$collector" --check --config api/collector.conf
	t0=$(date +%s)
	now=$(($(date +%s) * 1000))
	sqlite3 "$db" <<EOSQL
PRAGMA journal_mode = DELETE;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -3000000;
BEGIN;
WITH RECURSIVE t(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM t WHERE i < $API_TERMINALS - 1)
INSERT INTO terminals (id, name, first_seen, last_seen, max_seq, policy_hash, report_interval,
                       compliance_seq, compliance_ts, drift_ms)
SELECT i + 1, printf('term-%05d', i), $now - 30 * 86400000,
       CASE WHEN i % 97 = 0 THEN $now - 86400000 ELSE $now - (i % 240) * 1000 END,
       $API_EVENTS_PER, 'sha256:' || hex(randomblob(32)), 300000, $API_EVENTS_PER, $now - 60000,
       CASE WHEN i % 211 = 0 THEN 600000 ELSE 40 END
FROM t;
WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < $API_EVENTS_PER)
INSERT INTO events (tid, seq, ts, received_at, kind, clause, data)
SELECT t.id, s.n,
       $now - 30 * 86400000 + s.n * (30 * 86400000 / $API_EVENTS_PER) + t.id * 10,
       $now - 30 * 86400000 + s.n * (30 * 86400000 / $API_EVENTS_PER) + t.id * 10 + 50,
       CASE (s.n + t.id) % 10 WHEN 0 THEN 'usb.blocked' WHEN 1 THEN 'auth.failure'
            WHEN 2 THEN 'usb.allowed' WHEN 3 THEN 'usb.removed' WHEN 9 THEN 'compliance'
            ELSE 'auth.success' END,
       '["2-6-3-a"]',
       '{"user":"clerk' || (t.id % 7) || '","service":"login","vendor":"0781","product":"5567","serial":"4C53000123041411' || t.id || '","reason":"bench"}'
FROM s CROSS JOIN terminals t;
WITH c(id, clause) AS (VALUES ('usb.default_deny', '["2-6-3-a","2-3-2"]'),
  ('usb.no_unapproved_storage', '["2-6-3-a","2-3-2"]'), ('mfa.pam_stack', '["2-6-3-a","2-6-6"]'),
  ('mfa.enrollment', '["2-6-3-a"]'), ('time.synchronized', '["2-6-6"]'),
  ('agent.integrity', '["2-2-7","2-6-7"]'), ('net.isolation', '["2-6-3-a"]'))
INSERT INTO checks (tid, check_id, status, clause, detail, since, updated_at, seq)
SELECT t.id, c.id, CASE WHEN t.id % 37 = 0 AND c.id = 'mfa.pam_stack' THEN 'fail' ELSE 'pass' END,
       c.clause, 'bench', $now - 86400000, $now - 60000, $API_EVENTS_PER
FROM terminals t CROSS JOIN c;
INSERT INTO gaps (tid, first, last, detected_at, announced)
SELECT id, 500, 510, $now - 86400000, id % 2 FROM terminals WHERE id % 50 = 0;
COMMIT;
PRAGMA journal_mode = WAL;
ANALYZE;
EOSQL
	t1=$(date +%s)
	echo "generated in $((t1 - t0)) s: $(ls -la "$db" | awk '{print $5}') bytes"
	touch "$db.done"
fi
chown -R 65534:65534 api 2>/dev/null || true
$asuser "$collector" --config api/collector.conf > api/out 2> api/err &
cpid=$!
started="$started $cpid"
ready=$(wait_ready api/out)
dport=$(echo "$ready" | sed 's/.*dashboard=127.0.0.1:\([0-9]*\).*/\1/')
mid=$(printf 'term-%05d' $((API_TERMINALS / 2)))
now_iso=$(date -u +%Y-%m-%dT%H:%M:%SZ)
day_ago=$(date -u -d '1 day ago' +%Y-%m-%dT%H:%M:%SZ)
timeit() { # $1 = label, $2 = path; median of 5 (after one warm-up), bytes
	curl -s -o /dev/null --cacert pki/server-ca.pem -H "Authorization: Bearer $token" \
		"https://127.0.0.1:$dport$2"
	times=""
	for _ in 1 2 3 4 5; do
		t=$(curl -s -o api/body -w '%{time_total}' --cacert pki/server-ca.pem \
			-H "Authorization: Bearer $token" "https://127.0.0.1:$dport$2")
		times="$times $t"
	done
	med=$(echo $times | tr ' ' '\n' | sort -n | sed -n 3p)
	printf '%-58s median %7.1f ms  %10s bytes\n' "$1" "$(awk -v m="$med" 'BEGIN { print m * 1000 }')" "$(wc -c < api/body)"
}
timeit "GET /v1/terminals" "/v1/terminals"
timeit "GET /v1/terminals/$mid" "/v1/terminals/$mid"
timeit "GET /v1/events?limit=100 (first page)" "/v1/events?limit=100"
timeit "GET /v1/events?after=9000000&limit=1000" "/v1/events?after=9000000&limit=1000"
timeit "GET /v1/events?terminal=$mid&limit=100" "/v1/events?terminal=$mid&limit=100"
timeit "GET /v1/events?kind=usb.blocked&limit=100" "/v1/events?kind=usb.blocked&limit=100"
timeit "GET /v1/events?kind=auth.failure&since=<1 day ago>&limit=100" "/v1/events?kind=auth.failure&since=$day_ago&limit=100"
timeit "GET /v1/events?since=<1 day ago>&limit=100" "/v1/events?since=$day_ago&limit=100"
timeit "GET /v1/export.csv?terminal=$mid (1000 rows)" "/v1/export.csv?terminal=$mid"
timeit "GET /v1/export.csv?since=<1 day ago> (~333k rows)" "/v1/export.csv?since=$day_ago&until=$now_iso"
timeit "GET /metrics" "/metrics"
kill $cpid; wait $cpid || true
