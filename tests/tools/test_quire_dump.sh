#!/usr/bin/env bash
# test_quire_dump.sh - end-to-end tests of tools/quire-dump.
#
#   test_quire_dump.sh QUIRE_DUMP                 the fixture suite
#   test_quire_dump.sh QUIRE_DUMP --trace FILE    import a real trace
#
# The fixture suite writes a small generated editing trace (python3, standard
# library only: json, gzip, random) with a few thousand transactions,
# multi-patch transactions, an empty one, deletes, non-ASCII and control
# characters, imports it and checks every command against the states the
# generator recorded: list, show (at the head and --at k), log, stats,
# verify, --json (every line must parse), then damages snapshots with the
# sqlite3 CLI and checks that verify reports them (exit 1) while show still
# works through the fallback; plus the error paths (unknown document,
# missing database, bad arguments: one line on stderr, exit 1 or 2) and a
# document id with control characters and invalid UTF-8 planted with
# sqlite3. The --trace mode imports a real trace (automerge-paper in
# ctest), then verifies it and compares show with its endContent.
#
# Needs bash, python3 and the sqlite3 CLI. Exits non-zero if any check
# failed, printing each failure.
set -u

QD=${1:?usage: test_quire_dump.sh QUIRE_DUMP [--trace FILE]}
QD=$(cd "$(dirname "$QD")" && pwd)/$(basename "$QD")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/quire-dump-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

fails=0
checks=0
ok() { checks=$((checks + 1)); }
fail() {
	checks=$((checks + 1))
	fails=$((fails + 1))
	echo "FAIL: $*"
}
# expect_rc WANT DESCRIPTION CMD... : run CMD (stdout > out, stderr > err).
expect_rc() {
	local want=$1 what=$2 rc
	shift 2
	"$@" >out 2>err
	rc=$?
	if [[ $rc -ne $want ]]; then
		fail "$what: exit $rc, expected $want; stderr: $(head -c 400 err)"
		return 1
	fi
	ok
	return 0
}
# One line on stderr, prefixed "quire-dump: ", and nothing on stdout.
expect_one_error_line() {
	local what=$1
	if [[ $(wc -l <err) -ne 1 ]] || ! grep -q '^quire-dump: ' err; then
		fail "$what: stderr is not one 'quire-dump: ' line: $(cat err)"
	elif [[ -s out ]]; then
		fail "$what: unexpected stdout: $(head -c 200 out)"
	else
		ok
	fi
}
# Every line of file $1 is a JSON object; prints nothing, exits 1 if not.
json_lines_ok() {
	python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    v = json.loads(line)
    assert isinstance(v, dict), line
    n += 1
assert n > 0, "no JSON lines"
' "$1"
}

# ---- --trace FILE: a real trace ------------------------------------------------

if [[ ${2:-} == --trace ]]; then
	FILE=${3:?--trace needs a FILE}
	python3 -c '
import gzip, json, sys
t = json.load(gzip.open(sys.argv[1], "rt", encoding="utf-8"))
open("end.txt", "wb").write(t["endContent"].encode("utf-8"))
print(len(t["txns"]))
' "$FILE" >ntxns || { echo "FAIL: cannot read $FILE"; exit 1; }
	N=$(cat ntxns)
	start=$(date +%s.%N)
	expect_rc 0 "import $FILE" "$QD" --db t.db import "$FILE" doc && cat out
	end=$(date +%s.%N)
	echo "import took $(python3 -c "print(round($end - $start, 2))") s"
	expect_rc 0 "show" "$QD" --db t.db show doc && { cmp -s out end.txt && ok || fail "show != endContent"; }
	expect_rc 0 "show --at $((N / 2))" "$QD" --db t.db show doc --at $((N / 2))
	expect_rc 0 "verify" "$QD" --db t.db verify doc && tail -n 1 out
	expect_rc 0 "list" "$QD" --db t.db list && grep -q "^doc  *$N " out && ok || fail "list: $(cat out)"
	echo "$checks checks, $fails failed"
	[[ $fails -eq 0 ]]
	exit
fi

# ---- the fixture ----------------------------------------------------------------

N=2600
python3 - "$N" <<'EOF' || { echo "FAIL: cannot generate the fixture"; exit 1; }
import gzip, json, random, sys
n = int(sys.argv[1])
rng = random.Random(42)
pieces = ["a", "bc", "\u00e9", "\n", "\u20acx", "\U0001F600", "\t", "\x01", "\u2028", "word ", '"q"', "\\"]
text, txns, states = "", [], []
for k in range(n):
    patches = []
    if k == 7:
        pass  # an empty transaction
    else:
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            if text and rng.random() < 0.3:
                pos = rng.randrange(len(text))
                d = min(len(text) - pos, rng.randint(1, 4))
                ins = rng.choice(["", "", "Z"])
                patches.append([pos, d, ins])
                text = text[:pos] + ins + text[pos + d:]
            else:
                pos = rng.randint(0, len(text))
                s = rng.choice(pieces)
                patches.append([pos, 0, s])
                text = text[:pos] + s + text[pos:]
    txns.append({"patches": patches})
    states.append(text)
with gzip.open("fixture.json.gz", "wt", encoding="utf-8") as f:
    json.dump({"startContent": "", "endContent": text, "txns": txns}, f)
for k in (0, 1, 2, 8, 999, 1000, 1001, 1500, 2000, n - 1, n):
    open("state-%d.txt" % k, "wb").write((states[k - 1] if k else "").encode("utf-8"))
open("end.txt", "wb").write(text.encode("utf-8"))
EOF

DB=$TMP/q.db

# import
expect_rc 0 "import" "$QD" --db "$DB" --json import fixture.json.gz doc1 &&
	{ json_lines_ok out && ok || fail "import --json does not parse: $(cat out)"; }
expect_rc 1 "import over an existing document" "$QD" --db "$DB" import fixture.json.gz doc1 &&
	expect_one_error_line "import over an existing document"
expect_rc 2 "import with a bad doc id" "$QD" --db "$DB" import fixture.json.gz 'a b'
expect_rc 1 "import of a missing file" "$QD" --db "$DB" import nosuch.json.gz doc2 &&
	expect_one_error_line "import of a missing file"

# list
expect_rc 0 "list" "$QD" --db "$DB" list &&
	{ grep -qE "^doc1 +$N +[0-9]+ +$N +$N +1 +$N " out && ok || fail "list row: $(cat out)"; }
expect_rc 0 "list --quick" "$QD" --db "$DB" list --quick
expect_rc 0 "list --json" "$QD" --db "$DB" list --json &&
	python3 -c '
import json, sys
rows = [json.loads(l) for l in open("out", encoding="utf-8")]
end = open("end.txt", encoding="utf-8").read()
d = [r for r in rows if r["doc"] == "doc1"][0]
assert d["head_seq"] == int(sys.argv[1]) and d["length"] == len(end), d
assert d["snapshots"] == 3 and d["snapshot_seq"] == int(sys.argv[1]), d
assert d["log_start"] == 1 and d["updated"].endswith("Z"), d
' "$N" && ok || fail "list --json content"
expect_rc 0 "QUIRE_DB" env QUIRE_DB="$DB" "$QD" list && { grep -q '^doc1 ' out && ok || fail "QUIRE_DB: $(cat out)"; }

# show
expect_rc 0 "show" "$QD" --db "$DB" show doc1 && { cmp -s out end.txt && ok || fail "show != endContent"; }
for k in 0 1 2 8 999 1000 1001 1500 2000 $((N - 1)) $N; do
	expect_rc 0 "show --at $k" "$QD" --db "$DB" show doc1 --at $k &&
		{ cmp -s out state-$k.txt && ok || fail "show --at $k differs from the text after $k txns"; }
done
expect_rc 0 "show --json" "$QD" --db "$DB" --json show doc1 &&
	python3 -c '
import json
v = json.loads(open("out", encoding="utf-8").read())
assert v["text"] == open("end.txt", encoding="utf-8").read() and v["doc"] == "doc1", v
' && ok || fail "show --json text"
expect_rc 1 "show --at beyond the head" "$QD" --db "$DB" show doc1 --at $((N + 1)) &&
	expect_one_error_line "show --at beyond the head"

# log
expect_rc 0 "log" "$QD" --db "$DB" log doc1 &&
	{ [[ $(wc -l <out) -eq $((N + 1)) ]] && ok || fail "log: $(wc -l <out) lines, expected $((N + 1))"; }
grep -qE "^ +1  [0-9a-f]{16}  .* ins " out && ok || fail "log: first change: $(sed -n 2p out)"
grep -qE "^ +8  .*\(no ops\)" out && ok || fail "log: the empty txn: $(sed -n 9p out)"
expect_rc 0 "log --since --limit" "$QD" --db "$DB" log doc1 --since 10 --limit 5 &&
	{ [[ $(wc -l <out) -eq 6 ]] && sed -n 2p out | grep -qE '^ *11 ' && ok ||
		fail "log --since 10 --limit 5: $(cat out)"; }
expect_rc 0 "log --json" "$QD" --db "$DB" --json log doc1 &&
	python3 -c '
import json, sys
rows = [json.loads(l) for l in open("out", encoding="utf-8")]
assert [r["seq"] for r in rows] == list(range(1, int(sys.argv[1]) + 1))
assert all(len(r["replica"]) == 16 for r in rows)
assert rows[7]["ops"] == [] and rows[0]["ops"][0]["kind"] == "ins", rows[:8]
' "$N" && ok || fail "log --json content"
expect_rc 1 "log --since beyond the head" "$QD" --db "$DB" log doc1 --since $((N + 5)) &&
	expect_one_error_line "log --since beyond the head"

# stats
expect_rc 0 "stats" "$QD" --db "$DB" stats doc1 &&
	{ grep -q 'version vector' out && grep -q 'snapshots  *3$' out && ok || fail "stats: $(cat out)"; }
expect_rc 0 "stats --json" "$QD" --db "$DB" stats doc1 --json &&
	python3 -c '
import json
v = json.loads(open("out", encoding="utf-8").read())
end = open("end.txt", encoding="utf-8").read()
assert v["crdt"]["length"] == len(end) and v["disk"]["snapshots"] == 3, v
assert len(v["version_vector"]) == 1 and v["crdt"]["memory_bytes"] > 0, v
' && ok || fail "stats --json content"
expect_rc 0 "stats --at" "$QD" --db "$DB" stats doc1 --at 1500

# verify
expect_rc 0 "verify" "$QD" --db "$DB" verify &&
	{ tail -n 1 out | grep -q ' 0 problems$' && ! grep -q '^FAIL' out && ok || fail "verify: $(cat out)"; }
grep -q '^ok  *doc1  *log-only' out && ok || fail "verify: no log-only check"
[[ $(grep -c '^ok  *doc1  *snapshot' out) -eq 3 ]] && ok || fail "verify: not 3 snapshot checks"
expect_rc 0 "verify --json" "$QD" --db "$DB" --json verify doc1 &&
	{ json_lines_ok out && tail -n 1 out | python3 -c '
import json, sys
s = json.load(sys.stdin)["summary"]
assert s["ok"] and s["problems"] == 0 and s["documents"] == 1, s
' && ok || fail "verify --json: $(cat out)"; }

# the error paths
for cmd in "show nosuch" "log nosuch" "stats nosuch" "verify nosuch"; do
	# shellcheck disable=SC2086
	expect_rc 1 "$cmd" "$QD" --db "$DB" $cmd && expect_one_error_line "$cmd"
done
expect_rc 1 "missing database" "$QD" --db "$TMP/missing.db" list && expect_one_error_line "missing database"
[[ ! -e $TMP/missing.db ]] && ok || fail "list created the missing database"
printf 'not a database, just text\n%.0s' {1..200} >junk.db
expect_rc 1 "not a database" "$QD" --db junk.db list && expect_one_error_line "not a database"
expect_rc 2 "no command" "$QD" --db "$DB"
expect_rc 2 "unknown command" "$QD" --db "$DB" frobnicate && expect_one_error_line "unknown command"
expect_rc 2 "show without DOC" "$QD" --db "$DB" show
expect_rc 2 "bad --at" "$QD" --db "$DB" show doc1 --at x1
expect_rc 2 "option of another command" "$QD" --db "$DB" list --at 5
expect_rc 2 "unknown option" "$QD" --db "$DB" list --frob
expect_rc 0 "--help" "$QD" --help && { grep -q 'import FILE.json.gz DOC' out && ok || fail "--help"; }

# a document id with control characters and invalid UTF-8 (storage allows
# any bytes but NUL; the protocol does not, so plant it with sqlite3)
sqlite3 "$DB" "INSERT INTO documents(name, created_ms) VALUES (CAST(x'61ff0a0962' AS TEXT), 0)" ||
	fail "sqlite3 insert"
expect_rc 0 "list with an odd doc id" "$QD" --db "$DB" list &&
	{ [[ $(wc -l <out) -eq 3 ]] && grep -qF 'a\xff\n\tb' out && ok || fail "odd id in the table: $(cat -A out)"; }
expect_rc 0 "list --json with an odd doc id" "$QD" --db "$DB" --json list &&
	python3 -c '
import json
rows = [json.loads(l) for l in open("out", encoding="utf-8")]
odd = [r for r in rows if r.get("doc_hex") == "61ff0a0962"]
assert len(odd) == 1 and odd[0]["doc"] == "a\ufffd\n\tb" and odd[0]["head_seq"] == 0, rows
' && ok || fail "odd id in JSON: $(cat out)"
expect_rc 0 "show an odd doc id" "$QD" --db "$DB" show $'a\xff\n\tb' && { [[ ! -s out ]] && ok || fail "odd doc not empty"; }
expect_rc 0 "verify with an odd doc id" "$QD" --db "$DB" verify

# damage: flip one byte in the middle of the newest snapshot's zstd frame
damage() { # damage SEQ
	sqlite3 "$DB" "UPDATE snapshots SET zstd = CAST(substr(zstd, 1, length(zstd) / 2) ||
		CASE WHEN substr(zstd, length(zstd) / 2 + 1, 1) = x'5a' THEN x'a5' ELSE x'5a' END ||
		substr(zstd, length(zstd) / 2 + 2) AS BLOB)
		WHERE seq = $1 AND doc = (SELECT id FROM documents WHERE name = 'doc1')" &&
		[[ $(sqlite3 "$DB" "SELECT changes()") ]] || fail "sqlite3 damage $1"
}
damage $N
expect_rc 1 "verify with a damaged snapshot" "$QD" --db "$DB" verify doc1 &&
	{ grep -qE "^FAIL +doc1 +snapshot +seq $N: " out && tail -n 1 out | grep -q ' 1 problem$' &&
		ok || fail "verify did not report the damaged snapshot: $(cat out)"; }
expect_rc 1 "verify --json with a damaged snapshot" "$QD" --db "$DB" --json verify &&
	{ json_lines_ok out && grep -q '"ok":false' out && ok || fail "verify --json: $(cat out)"; }
expect_rc 0 "show with a damaged snapshot" "$QD" --db "$DB" show doc1 &&
	{ cmp -s out end.txt && ok || fail "show via the fallback != endContent"; }
[[ $(wc -l <err) -eq 1 ]] && grep -q "^quire-dump: warning: snapshot $N .*damaged" err && ok ||
	fail "show did not warn once about the damaged snapshot: $(cat err)"
expect_rc 0 "show --at 2000 with a damaged snapshot" "$QD" --db "$DB" show doc1 --at 2000 &&
	{ cmp -s out state-2000.txt && ok || fail "show --at 2000 differs"; }
damage 1000
expect_rc 0 "show --at 1500 with snapshot 1000 damaged" "$QD" --db "$DB" show doc1 --at 1500 &&
	{ cmp -s out state-1500.txt && ok || fail "show --at 1500 via the log differs"; }
expect_rc 1 "verify with two damaged snapshots" "$QD" --db "$DB" verify doc1 &&
	{ [[ $(grep -c '^FAIL' out) -eq 2 ]] && grep -qE '^ok +doc1 +replay' out && ok ||
		fail "verify with two damaged snapshots: $(cat out)"; }
expect_rc 0 "list with damaged snapshots" "$QD" --db "$DB" list

# damage a change: verify names it, show fails with one line
sqlite3 "$DB" "UPDATE changes SET payload = x'ff' WHERE seq = 2500 AND doc = (SELECT id FROM documents WHERE name = 'doc1')" ||
	fail "sqlite3 damage change"
expect_rc 1 "verify with a damaged change" "$QD" --db "$DB" verify doc1 &&
	{ grep -qE '^FAIL .*change 2500 does not decode' out && ok || fail "verify, damaged change: $(cat out)"; }
expect_rc 1 "show with a damaged change" "$QD" --db "$DB" show doc1 && expect_one_error_line "show with a damaged change"
expect_rc 1 "log with a damaged change" "$QD" --db "$DB" log doc1 --since 2495 --limit 10 &&
	{ grep -q 'does not decode' out && ok || fail "log did not show the damaged change: $(cat out)"; }

# a trimmed log (as store_trim leaves it, simulated with sqlite3 on a second
# import): verify replays from snapshot 1000, old seqs are refused clearly
expect_rc 0 "import for the trim" "$QD" --db trim.db import fixture.json.gz doc1
sqlite3 trim.db "DELETE FROM changes WHERE seq <= 1000" || fail "sqlite3 trim"
expect_rc 0 "verify with a trimmed log" "$QD" --db trim.db verify &&
	{ grep -qE '^skip +doc1 +log-only' out &&
		grep -qE '^ok +doc1 +snapshot +seq 1000: .*continues from it' out &&
		grep -qE '^ok +doc1 +replay +snapshot 1000 \+ changes 1001\.\.' out && ok ||
		fail "verify with a trimmed log: $(cat out)"; }
expect_rc 0 "log of a trimmed log" "$QD" --db trim.db log doc1 --limit 1 &&
	{ sed -n 2p out | grep -qE '^ *1001 ' && ok || fail "log of a trimmed log: $(cat out)"; }

# vacuum: a database as files were made before incremental auto-vacuum (off,
# its trimmed pages kept free in the file) is rewritten smaller, switched to
# incremental, and reads the same
cp trim.db old.db && sqlite3 old.db "PRAGMA auto_vacuum = NONE; VACUUM; DELETE FROM changes WHERE seq <= 2000" ||
	fail "sqlite3 old-style database"
free0=$(sqlite3 old.db "PRAGMA freelist_count")
pages0=$(sqlite3 old.db "PRAGMA page_count")
[[ $(sqlite3 old.db "PRAGMA auto_vacuum") -eq 0 && $free0 -gt 10 ]] && ok ||
	fail "old-style database: auto_vacuum $(sqlite3 old.db "PRAGMA auto_vacuum"), $free0 free pages"
expect_rc 0 "show before vacuum" "$QD" --db old.db show doc1 && cp out before-vacuum.txt
expect_rc 0 "vacuum" "$QD" --db old.db vacuum &&
	{ grep -qE '^vacuumed old\.db: [0-9]+ -> [0-9]+ bytes; auto_vacuum none -> incremental$' out && ok ||
		fail "vacuum output: $(cat out)"; }
[[ $(sqlite3 old.db "PRAGMA auto_vacuum") -eq 2 && $(sqlite3 old.db "PRAGMA freelist_count") -eq 0 &&
	$(sqlite3 old.db "PRAGMA page_count") -le $((pages0 - free0)) ]] && ok ||
	fail "after vacuum: auto_vacuum $(sqlite3 old.db "PRAGMA auto_vacuum"), free $(sqlite3 old.db "PRAGMA freelist_count"), pages $(sqlite3 old.db "PRAGMA page_count") of $pages0"
expect_rc 0 "show after vacuum" "$QD" --db old.db show doc1 &&
	{ cmp -s out before-vacuum.txt && ok || fail "show differs after vacuum"; }
expect_rc 0 "verify after vacuum" "$QD" --db old.db verify
expect_rc 0 "vacuum --json" "$QD" --db old.db --json vacuum &&
	python3 -c '
import json
r = json.loads(open("out", encoding="utf-8").read())
assert r["db"] == "old.db" and r["auto_vacuum_was"] == "incremental" and r["auto_vacuum"] == "incremental", r
assert 0 < r["bytes_after"] <= r["bytes_before"], r
' && ok || fail "vacuum --json: $(cat out)"
expect_rc 1 "vacuum of a missing database" "$QD" --db "$TMP/missing.db" vacuum &&
	expect_one_error_line "vacuum of a missing database"
[[ ! -e $TMP/missing.db ]] && ok || fail "vacuum created the missing database"
expect_rc 2 "vacuum with an argument" "$QD" --db old.db vacuum doc1
# another connection holding the write lock (a running server): vacuum
# waits the busy timeout, then fails with one line saying to stop it
python3 -c '
import sqlite3, sys, time
c = sqlite3.connect("old.db", isolation_level=None)
c.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(8)
' >locker.out 2>&1 &
locker=$!
for _ in $(seq 50); do grep -q locked locker.out 2>/dev/null && break; sleep 0.1; done
expect_rc 1 "vacuum while another connection writes" "$QD" --db old.db vacuum &&
	expect_one_error_line "vacuum while another connection writes" &&
	{ grep -q 'stop it first' err && ok || fail "vacuum busy: $(cat err)"; }
kill "$locker" 2>/dev/null
wait "$locker" 2>/dev/null
expect_rc 0 "verify after the refused vacuum" "$QD" --db old.db verify
expect_rc 1 "log --since before the log" "$QD" --db trim.db log doc1 --since 5 &&
	expect_one_error_line "log --since before the log"
expect_rc 1 "show --at before the log" "$QD" --db trim.db show doc1 --at 500 &&
	expect_one_error_line "show --at before the log"
for k in 1000 1500 $N; do
	expect_rc 0 "show --at $k, trimmed" "$QD" --db trim.db show doc1 --at $k &&
		{ cmp -s out state-$k.txt && ok || fail "show --at $k, trimmed, differs"; }
done

echo "$checks checks, $fails failed"
[[ $fails -eq 0 ]]
