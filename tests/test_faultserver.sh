#!/usr/bin/env bash
# Self-test for tests/faultserver.py: starts the server on a free port on
# 127.0.0.1, then checks ranges, validators, the request log, the control
# endpoint and every fault with curl. The last line is `N passed, N failed`.
set -u

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
root="$work/root"
server_pid=
stalled_pids=()

cleanup() {
    local pid
    for pid in "${stalled_pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid"
        wait "$server_pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0

pass() {
    passed=$((passed + 1))
    echo "ok   $1"
}

fail() {
    failed=$((failed + 1))
    echo "FAIL $1: $2"
}

# expect_eq NAME EXPECTED ACTUAL
expect_eq() {
    if [ "$2" = "$3" ]; then
        pass "$1"
    else
        fail "$1" "expected '$2', got '$3'"
    fi
}

# expect_ne NAME UNEXPECTED ACTUAL
expect_ne() {
    if [ "$2" != "$3" ]; then
        pass "$1"
    else
        fail "$1" "got '$3', expected anything else"
    fi
}

# expect_between NAME LOW HIGH VALUE, for decimal numbers such as curl timings.
expect_between() {
    if awk -v low="$2" -v high="$3" -v value="$4" 'BEGIN { exit !(value >= low && value <= high) }'; then
        pass "$1"
    else
        fail "$1" "expected $2 to $3, got $4"
    fi
}

# expect_body NAME: the last response body equals $work/expected.
expect_body() {
    if cmp -s "$work/body" "$work/expected"; then
        pass "$1"
    else
        fail "$1" "body differs from the expected bytes ($(wc -c <"$work/body") bytes received)"
    fi
}

# request CURL_ARGS... URL: sets status, downloaded, elapsed, connects,
# redirects and curl_rc. Stores the body in $work/body and headers in $work/headers.
request() {
    local out
    out=$(curl -s -o "$work/body" -D "$work/headers" \
        -w '%{http_code} %{size_download} %{time_total} %{num_connects} %{num_redirects}' "$@")
    curl_rc=$?
    read -r status downloaded elapsed connects redirects <<<"$out"
}

# header NAME: value of the last NAME header in $work/headers.
header() {
    grep -i "^$1:" "$work/headers" | tail -n 1 | sed -e 's/^[^:]*: *//' -e 's/\r$//'
}

# expect_slice FILE OFFSET COUNT: writes the expected bytes to $work/expected.
expect_slice() {
    tail -c +$(($2 + 1)) "$1" | head -c "$3" >"$work/expected"
}

# ctl ACTION_AND_QUERY: sends a control request and fails the test on a non-2xx response.
ctl() {
    if ! curl -s -f -o /dev/null "$base/_ctl/$1"; then
        fail "control $1" "request failed"
    fi
}

# ctl_status ACTION_AND_QUERY: prints the HTTP status of a control request.
ctl_status() {
    curl -s -o /dev/null -w '%{http_code}' "$base/_ctl/$1"
}

# stats_value PYTHON_EXPRESSION: evaluates the expression on the /_ctl/stats JSON bound to s.
stats_value() {
    curl -s "$base/_ctl/stats" | python3 -c "import json, sys; s = json.load(sys.stdin); print($1)"
}

log_lines() {
    wc -l <"$work/requests.log" | tr -d ' '
}

# --- fixtures -----------------------------------------------------------------

mkdir -p "$root/dir"
big="$root/big.bin"
big_size=1048576
head -c "$big_size" /dev/urandom >"$big"
printf 'hello world\n' >"$root/small.txt"
: >"$root/empty.bin"
head -c 3000 /dev/urandom >"$root/replace.bin"
echo "outside the root" >"$work/secret.txt"
ln -s ../secret.txt "$root/link.txt"

# --- startup ------------------------------------------------------------------

python3 "$here/faultserver.py" --root "$root" --port 0 --port-file "$work/port" \
    --log "$work/requests.log" >"$work/stdout" 2>"$work/stderr" &
server_pid=$!

for _ in $(seq 50); do
    [ -s "$work/port" ] && break
    sleep 0.1
done
port=$(cat "$work/port" 2>/dev/null)
if ! [[ "$port" =~ ^[0-9]+$ ]]; then
    echo "FAIL startup: port file missing after 5 s. Server stderr:"
    cat "$work/stderr"
    echo "0 passed, 1 failed"
    exit 1
fi
pass "startup port file"
base="http://127.0.0.1:$port"
for _ in $(seq 20); do
    grep -q '^PORT ' "$work/stdout" && break
    sleep 0.1
done
expect_eq "startup stdout PORT line" "PORT $port" "$(head -n 1 "$work/stdout")"

# --- plain GET and HEAD -------------------------------------------------------

request "$base/big.bin"
expect_eq "get status" 200 "$status"
expect_eq "get content-length" "$big_size" "$(header Content-Length)"
cp "$big" "$work/expected"
expect_body "get body"
etag=$(header ETag)
last_modified=$(header Last-Modified)
expect_ne "get etag present" "" "$etag"
expect_ne "get last-modified present" "" "$last_modified"
expect_eq "get accept-ranges" bytes "$(header Accept-Ranges)"

request -I "$base/big.bin"
expect_eq "head status" 200 "$status"
expect_eq "head content-length" "$big_size" "$(header Content-Length)"
expect_eq "head no body" 0 "$downloaded"
expect_eq "head etag matches get" "$etag" "$(header ETag)"

request -I -r 0-9 "$base/big.bin"
expect_eq "head ignores range" 200 "$status"

request "$base/empty.bin"
expect_eq "empty file status" 200 "$status"
expect_eq "empty file content-length" 0 "$(header Content-Length)"

# --- single ranges ------------------------------------------------------------

request -r 100-199 "$base/big.bin"
expect_eq "range a-b status" 206 "$status"
expect_eq "range a-b content-range" "bytes 100-199/$big_size" "$(header Content-Range)"
expect_eq "range a-b content-length" 100 "$(header Content-Length)"
expect_slice "$big" 100 100
expect_body "range a-b body"

request -r 1048000- "$base/big.bin"
expect_eq "range a- status" 206 "$status"
expect_eq "range a- content-range" "bytes 1048000-1048575/$big_size" "$(header Content-Range)"
expect_slice "$big" 1048000 576
expect_body "range a- body"

request -r -300 "$base/big.bin"
expect_eq "range suffix status" 206 "$status"
expect_eq "range suffix content-range" "bytes 1048276-1048575/$big_size" "$(header Content-Range)"
expect_slice "$big" 1048276 300
expect_body "range suffix body"

request -r -2000 "$base/small.txt"
expect_eq "range suffix over size" "bytes 0-11/12" "$(header Content-Range)"

request -r 1048500-2000000 "$base/big.bin"
expect_eq "range end clamped" "bytes 1048500-1048575/$big_size" "$(header Content-Range)"
expect_eq "range end clamped bytes" 76 "$downloaded"

request -r 2000000- "$base/big.bin"
expect_eq "range unsatisfiable status" 416 "$status"
expect_eq "range unsatisfiable content-range" "bytes */$big_size" "$(header Content-Range)"

request -r 0- "$base/empty.bin"
expect_eq "range on empty file status" 416 "$status"
expect_eq "range on empty file content-range" "bytes */0" "$(header Content-Range)"

request -H "Range: bytes=abc" "$base/big.bin"
expect_eq "range invalid syntax ignored" 200 "$status"

request -r 0-1,5-6 "$base/big.bin"
expect_eq "range multiple gets whole file" 200 "$status"
expect_eq "range multiple bytes" "$big_size" "$downloaded"

# --- If-Range -----------------------------------------------------------------

request -r 0-99 -H "If-Range: $etag" "$base/big.bin"
expect_eq "if-range etag match" 206 "$status"

request -r 0-99 -H 'If-Range: "other"' "$base/big.bin"
expect_eq "if-range etag mismatch status" 200 "$status"
expect_eq "if-range etag mismatch bytes" "$big_size" "$downloaded"

request -r 0-99 -H "If-Range: W/$etag" "$base/big.bin"
expect_eq "if-range weak etag rejected" 200 "$status"

request -r 0-99 -H "If-Range: $last_modified" "$base/big.bin"
expect_eq "if-range date match" 206 "$status"

request -r 0-99 -H "If-Range: Thu, 01 Jan 2004 00:00:00 GMT" "$base/big.bin"
expect_eq "if-range date mismatch" 200 "$status"

request -r 2000000- -H 'If-Range: "other"' "$base/big.bin"
expect_eq "if-range mismatch beats 416" 200 "$status"

# --- paths outside the root ---------------------------------------------------

request --path-as-is "$base/../secret.txt"
expect_eq "traversal dot-dot" 404 "$status"
request --path-as-is "$base/%2e%2e/secret.txt"
expect_eq "traversal encoded dot-dot" 404 "$status"
request "$base/link.txt"
expect_eq "symlink outside root" 404 "$status"
request "$base/dir/"
expect_eq "directory not listed" 404 "$status"
request "$base/missing.bin"
expect_eq "missing file" 404 "$status"

# --- keep-alive and concurrency -----------------------------------------------

connects=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects} ' "$base/small.txt" "$base/small.txt")
expect_eq "keep-alive reuses connection" "1 0 " "$connects"

for i in $(seq 0 7); do
    curl -s -o "$work/parallel.$i" -r "$((i * 1000))-$((i * 1000 + 999))" "$base/big.bin" &
done
wait_failed=0
for job in $(jobs -p); do
    [ "$job" = "$server_pid" ] && continue
    wait "$job" || wait_failed=1
done
parallel_ok=yes
for i in $(seq 0 7); do
    expect_slice "$big" $((i * 1000)) 1000
    cmp -s "$work/parallel.$i" "$work/expected" || parallel_ok=no
done
expect_eq "parallel ranges" "yes 0" "$parallel_ok $wait_failed"

# --- request log --------------------------------------------------------------

before=$(log_lines)
ctl stats
ctl clear
expect_eq "log skips control requests" "$before" "$(log_lines)"

request -r 100-199 "$base/big.bin"
request "$base/small.txt"
request "$base/missing.bin"
expect_eq "log one line per request" $((before + 3)) "$(log_lines)"
expect_eq "log ranged line" "GET /big.bin bytes=100-199 206 100 -" "$(tail -n 3 "$work/requests.log" | head -n 1)"
expect_eq "log plain line" "GET /small.txt - 200 12 -" "$(tail -n 2 "$work/requests.log" | head -n 1)"
expect_eq "log not found status" 404 "$(tail -n 1 "$work/requests.log" | cut -d ' ' -f 4)"

# --- control endpoint ---------------------------------------------------------

expect_eq "ctl unknown fault" 400 "$(ctl_status 'set?fault=nonsense')"
expect_eq "ctl invalid code" 400 "$(ctl_status 'set?fault=status5xx&code=418')"
expect_eq "ctl unknown parameter" 400 "$(ctl_status 'set?fault=slow&speed=5')"
expect_eq "ctl negative count" 400 "$(ctl_status 'set?fault=reset&count=-1')"
expect_eq "ctl unknown action" 404 "$(ctl_status 'bogus')"

ctl 'set?fault=status5xx'
ctl 'set?fault=status5xx&count=0'
request "$base/small.txt"
expect_eq "ctl count 0 clears" 200 "$status"

ctl 'set?fault=status5xx'
ctl clear
request "$base/small.txt"
expect_eq "ctl clear" 200 "$status"

ctl 'stats?reset=1'
ctl 'set?fault=status5xx&count=1'
request "$base/small.txt"
request "$base/small.txt"
expect_eq "stats requests per path" 2 "$(stats_value 's["requests"]["/small.txt"]')"
expect_eq "stats total" 2 "$(stats_value 's["total_requests"]')"
expect_eq "stats faults injected" 1 "$(stats_value 's["faults_injected"]["status5xx"]')"
expect_eq "stats fault cleared by count" None "$(stats_value 's["active_fault"]')"

# --- status faults ------------------------------------------------------------

ctl 'set?fault=status5xx'
request "$base/big.bin"
expect_eq "status5xx default 503" 503 "$status"
request "$base/missing.bin"
expect_eq "status5xx on missing file" 503 "$status"
ctl clear

ctl 'set?fault=status5xx&code=502&count=2'
request "$base/big.bin"
first=$status
request "$base/big.bin"
second=$status
request "$base/big.bin"
expect_eq "status5xx code and count" "502 502 200" "$first $second $status"

ctl 'set?fault=status5xx&path=/small.txt'
request "$base/big.bin"
expect_eq "fault path filter other file" 200 "$status"
request "$base/small.txt"
expect_eq "fault path filter matching file" 503 "$status"
ctl clear

ctl 'set?fault=status429&retry_after=7&count=1'
request "$base/big.bin"
expect_eq "status429 status" 429 "$status"
expect_eq "status429 retry-after" 7 "$(header Retry-After)"
request "$base/big.bin"
expect_eq "status429 count 1 then normal" 200 "$status"

# --- broken connections -------------------------------------------------------

ctl 'set?fault=reset&after=1000&count=1'
request "$base/big.bin"
expect_eq "reset curl error" "56 200" "$curl_rc $status"
expect_eq "reset partial bytes" 1000 "$downloaded"
expect_slice "$big" 0 1000
expect_body "reset partial body"
request "$base/big.bin"
expect_eq "reset then normal" "0 $big_size" "$curl_rc $downloaded"

ctl 'set?fault=short&after=500&count=1'
request "$base/big.bin"
expect_eq "short curl error" "18 200" "$curl_rc $status"
expect_eq "short promised length" "$big_size" "$(header Content-Length)"
expect_eq "short bytes sent" 500 "$downloaded"

ctl 'set?fault=short&count=1'
request -r 0-999 "$base/big.bin"
expect_eq "short default half" "18 500" "$curl_rc $downloaded"

# --- range faults -------------------------------------------------------------

ctl 'set?fault=wrong_range&shift=100&count=1'
request "$base/big.bin"
expect_eq "wrong_range skips unranged request" 200 "$status"
request -r 1000-1999 "$base/big.bin"
expect_eq "wrong_range status" 206 "$status"
expect_eq "wrong_range content-range" "bytes 1100-2099/$big_size" "$(header Content-Range)"
expect_slice "$big" 1100 1000
expect_body "wrong_range body matches label"
request -r 1000-1999 "$base/big.bin"
expect_eq "wrong_range count 1 then normal" "bytes 1000-1999/$big_size" "$(header Content-Range)"

ctl 'set?fault=wrong_range&shift=-100&count=1'
request -r 1000-1999 "$base/big.bin"
expect_eq "wrong_range negative shift" "bytes 900-1899/$big_size" "$(header Content-Range)"
expect_slice "$big" 900 1000
expect_body "wrong_range negative body"

ctl 'set?fault=wrong_range&shift=100&count=1'
request -r 1048000-1048575 "$base/big.bin"
expect_eq "wrong_range clamped at end" "bytes 1048100-1048575/$big_size" "$(header Content-Range)"
expect_eq "wrong_range clamped bytes" 476 "$downloaded"

ctl 'set?fault=early_range&shift=300&count=1'
request -r 1000-1999 "$base/big.bin"
expect_eq "early_range content-range" "bytes 700-1999/$big_size" "$(header Content-Range)"
expect_slice "$big" 700 1300
expect_body "early_range body"

ctl 'set?fault=early_range&count=1'
request -r 0-99 "$base/big.bin"
expect_eq "early_range at offset 0 unchanged" "bytes 0-99/$big_size" "$(header Content-Range)"
ctl clear

ctl 'set?fault=short_range&count=1'
request -r 1000-1999 "$base/big.bin"
expect_eq "short_range default half" "bytes 1000-1499/$big_size" "$(header Content-Range)"
expect_slice "$big" 1000 500
expect_body "short_range body"

ctl 'set?fault=short_range&length=10&count=1'
request -r 1000-1999 "$base/big.bin"
expect_eq "short_range length" "bytes 1000-1009/$big_size 10" "$(header Content-Range) $downloaded"

ctl 'set?fault=no_range&count=1'
request -r 0-99 "$base/big.bin"
expect_eq "no_range status" 200 "$status"
expect_eq "no_range whole file" "$big_size" "$downloaded"
expect_eq "no_range no content-range" "" "$(header Content-Range)"

# --- redirects ----------------------------------------------------------------

ctl 'set?fault=redirect'
request "$base/big.bin"
expect_eq "redirect status" 302 "$status"
expect_eq "redirect location" "/big.bin?r=1" "$(header Location)"
request -L -r 0-99 "$base/big.bin"
expect_eq "redirect followed" "206 1" "$status $redirects"
expect_slice "$big" 0 100
expect_body "redirect target body"
ctl clear

ctl 'set?fault=redirect&location=/small.txt&path=/big.bin'
request "$base/big.bin"
expect_eq "redirect custom location" "/small.txt" "$(header Location)"
request -L "$base/big.bin"
expect_eq "redirect custom target served" "200 12" "$status $downloaded"
ctl clear

ctl 'set?fault=redirect_loop'
request "$base/big.bin?r=4"
expect_eq "redirect_loop next hop" "/big.bin?r=5" "$(header Location)"
request -L --max-redirs 5 "$base/big.bin"
expect_eq "redirect_loop exceeds max-redirs" 47 "$curl_rc"
ctl clear

# --- stall and slow -----------------------------------------------------------

ctl 'set?fault=stall&seconds=2&count=1&path=/big.bin'
curl -s -o "$work/stalled.body" -w '%{time_total}' "$base/big.bin" >"$work/stalled.time" &
stalled_pid=$!
stalled_pids+=("$stalled_pid")
sleep 0.3
request "$base/small.txt"
expect_eq "stall other connection served" 200 "$status"
expect_between "stall other connection fast" 0 1 "$elapsed"
wait "$stalled_pid"
expect_eq "stall then complete" 0 "$?"
expect_between "stall duration" 1.8 5 "$(cat "$work/stalled.time")"
if cmp -s "$work/stalled.body" "$big"; then
    pass "stall body after pause"
else
    fail "stall body after pause" "body differs from big.bin"
fi

ctl 'set?fault=stall&count=1'
request --max-time 1 "$base/big.bin"
expect_eq "stall client timeout" 28 "$curl_rc"
expect_eq "stall headers sent" 200 "$(head -n 1 "$work/headers" | cut -d ' ' -f 2)"
expect_eq "stall no body" 0 "$downloaded"
# The server writes the log line when the stall ends. With the default of
# 3600 s that happens only if the server notices that curl closed the connection.
stall_logged=no
for _ in $(seq 20); do
    if tail -n 1 "$work/requests.log" | grep -q '^GET /big.bin - 200 0 stall$'; then
        stall_logged=yes
        break
    fi
    sleep 0.1
done
expect_eq "stall ends when client closes" yes "$stall_logged"
request "$base/big.bin"
expect_eq "stall count 1 then normal" "0 $big_size" "$curl_rc $downloaded"

ctl 'set?fault=stall&seconds=1&after=1000&count=1'
request "$base/big.bin"
expect_eq "stall after bytes complete" "0 $big_size" "$curl_rc $downloaded"
expect_between "stall after bytes duration" 0.9 4 "$elapsed"

ctl 'set?fault=stall&seconds=1&count=1'
request -I "$base/big.bin"
expect_eq "stall head status" 200 "$status"
expect_between "stall head duration" 0.9 4 "$elapsed"

ctl 'set?fault=slow&rate=100000&count=1'
request -r 0-99999 "$base/big.bin"
expect_eq "slow complete" "206 100000" "$status $downloaded"
expect_between "slow duration" 0.7 3 "$elapsed"
expect_slice "$big" 0 100000
expect_body "slow body"

# --- validator faults ---------------------------------------------------------

ctl 'set?fault=etag_flip'
request -I "$base/big.bin"
flip_one=$(header ETag)
request -I "$base/big.bin"
flip_two=$(header ETag)
expect_ne "etag_flip differs between responses" "$flip_one" "$flip_two"
expect_ne "etag_flip differs from real etag" "$etag" "$flip_one"
request -r 0-99 -H "If-Range: $flip_two" "$base/big.bin"
expect_eq "etag_flip if-range never matches" 200 "$status"
cp "$big" "$work/expected"
expect_body "etag_flip same bytes"
ctl clear

ctl 'set?fault=ifrange_200'
request -r 0-99 -H "If-Range: $etag" "$base/big.bin"
expect_eq "ifrange_200 matching etag" "200 $big_size" "$status $downloaded"
request -r 0-99 "$base/big.bin"
expect_eq "ifrange_200 without if-range" 206 "$status"
ctl clear
request -r 0-99 -H "If-Range: $etag" "$base/big.bin"
expect_eq "ifrange_200 cleared" 206 "$status"

# --- file replaced on disk ----------------------------------------------------

request -I "$base/replace.bin"
old_etag=$(header ETag)
head -c 5000 /dev/urandom >"$work/replace.new"
mv "$work/replace.new" "$root/replace.bin"
request "$base/replace.bin"
expect_eq "replace new size" 5000 "$downloaded"
cp "$root/replace.bin" "$work/expected"
expect_body "replace new body"
expect_ne "replace new etag" "$old_etag" "$(header ETag)"
new_etag=$(header ETag)
touch -d '2020-01-02 03:04:05 UTC' "$root/replace.bin"
request -I "$base/replace.bin"
expect_ne "replace mtime changes etag" "$new_etag" "$(header ETag)"
expect_eq "replace last-modified" "Thu, 02 Jan 2020 03:04:05 GMT" "$(header Last-Modified)"

# --- SIGTERM with a stalled connection open -----------------------------------

ctl 'set?fault=stall'
curl -s -o /dev/null "$base/big.bin" &
stalled_pids+=("$!")
sleep 0.3
stop_started=$(date +%s.%N)
kill -TERM "$server_pid"
for _ in $(seq 50); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$server_pid" 2>/dev/null; then
    fail "sigterm stops server" "still running 5 s after SIGTERM"
else
    wait "$server_pid"
    expect_eq "sigterm exit status" 0 "$?"
    stop_seconds=$(awk -v start="$stop_started" -v end="$(date +%s.%N)" 'BEGIN { print end - start }')
    expect_between "sigterm stop time" 0 2 "$stop_seconds"
    server_pid=
fi
request --max-time 2 "$base/small.txt"
expect_eq "sigterm port closed" 7 "$curl_rc"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
