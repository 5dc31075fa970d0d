/*
 * usage.c - what quire-dump tells people: the --help text (the reference
 * for every command, option, output format and exit status) and the
 * one-line error, warning and usage-error messages on stderr.
 */
#include <stdio.h>

#include "dump.h"

static void vmsg(const char *what, const char *fmt, va_list ap)
{
	fflush(stdout); /* keep stdout's lines ahead of the message on a shared tty */
	fputs("quire-dump: ", stderr);
	if (what)
		fputs(what, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void dump_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(NULL, fmt, ap);
	va_end(ap);
}

void dump_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

int dump_usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("quire-dump: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(" (see quire-dump --help)\n", stderr);
	va_end(ap);
	return DUMP_USAGE;
}

static const char help_text[] =
	"Usage: quire-dump [--db PATH] [--json] COMMAND [ARGS]\n"
	"\n"
	"Inspect a Quire database. It is opened read-only, which is safe while the\n"
	"server runs; `import` and `vacuum` are the commands that write.\n"
	"\n"
	"Options (before or after the command; `--` ends options, for a DOC that\n"
	"starts with '-'):\n"
	"  --db PATH    the database; default $" DUMP_DB_ENV ", else " DUMP_DEFAULT_DB "\n"
	"               (the server's default path)\n"
	"  --json       JSON output instead of tables (see JSON below)\n"
	"  -h, --help   this text\n"
	"\n"
	"Commands:\n"
	"  list [--quick]\n"
	"      One row per document: doc id, head seq, live length in code points,\n"
	"      len_seq (the seq that length is measured at), changes in the log and\n"
	"      the seq the log starts at, newest snapshot seq, its compressed and raw\n"
	"      bytes, and the time of the last change (ISO 8601 UTC). The length\n"
	"      comes from loading each document at its head (len_seq = head); with\n"
	"      --quick it is read from the newest snapshot alone, without replaying\n"
	"      the log after it (len_seq = that snapshot's seq; documents without a\n"
	"      snapshot are still loaded). A document that fails to load shows '?'\n"
	"      and the reason on stderr.\n"
	"  show DOC [--at SEQ]\n"
	"      The text of DOC at its head, or as it was just after change SEQ\n"
	"      (0 = empty): any seq covered by a snapshot at or before it plus the\n"
	"      log, or by the log alone when it reaches back to seq 1. The text is\n"
	"      written to stdout exactly as stored, with no newline added. A\n"
	"      damaged snapshot that had to be passed over is reported on stderr.\n"
	"      With --json: {doc, seq, head_seq, snapshot_seq, changes_applied,\n"
	"      length, bytes, text}.\n"
	"  log DOC [--since SEQ] [--limit N]\n"
	"      The changes with seq > SEQ (default: the whole log), at most N of\n"
	"      them: seq, replica (16 hex digits), author, time, bytes of payload\n"
	"      and a summary of the ops, e.g. \"ins 3 @17 'abc'\" (insert of 3\n"
	"      code points whose first id is the sender's counter 17), \"del 2 of\n"
	"      @5\", \"ins 1 @<replica>:<counter> 'x'\" for another replica's op,\n"
	"      \"(collected)\" for an insert sent after its text was deleted.\n"
	"      Inserted text is escaped and cut. Fails when the log no longer holds\n"
	"      seq SEQ + 1 (trimmed: it names where the log starts).\n"
	"  stats DOC [--at SEQ]\n"
	"      The loaded document (at the head, or at SEQ): length, runs (items)\n"
	"      and tombstones, deleted code points, replicas and the version\n"
	"      vector, id-map and delete-log runs, tree shape, memory; where it\n"
	"      was loaded from; and on disk: log changes and bytes, snapshots\n"
	"      (count, newest, compressed and raw bytes of the newest and of all),\n"
	"      and the database file's size.\n"
	"  verify [DOC]\n"
	"      For each document (or DOC), one line per check:\n"
	"        load       newest valid snapshot + log to the head; any damaged\n"
	"                   snapshot passed over is a problem\n"
	"        crdt       crdt_doc_check (deep consistency) of that document\n"
	"        log-only   when the log reaches back to seq 1: the log alone\n"
	"                   rebuilds the same text and version vector\n"
	"        log        every change in the log decodes and applies, in order\n"
	"        snapshot   each snapshot: checksum, decompression, decoding,\n"
	"                   crdt_doc_check, and the same text and version vector as\n"
	"                   the log replayed to its seq (from seq 1, or from an\n"
	"                   older valid snapshot when the log was trimmed; \"not\n"
	"                   comparable\" when the log does not reach it)\n"
	"      then a summary line. Exit status 1 if any check failed.\n"
	"  import FILE.json.gz DOC\n"
	"      Create DOC from an editing trace in the editing-traces format\n"
	"      (../shared/traces). Change k holds exactly the k-th transaction, so\n"
	"      `show DOC --at k` is the text after the first k transactions (a\n"
	"      non-empty startContent goes into change 1 with the first\n"
	"      transaction). The patches are replayed as local edits of one\n"
	"      replica (its id derived from DOC); a concurrent trace gets one\n"
	"      replica per agent, each editing the merge of its transaction's\n"
	"      parents, and the changes are stored in trace order. Changes are\n"
	"      appended 1000 per transaction; snapshots are written where the\n"
	"      store's default policy wants them and at the head. The database is\n"
	"      created if missing (and its directory, one level). DOC must be a\n"
	"      protocol document id: 1..200 bytes of [A-Za-z0-9._~/-]. An existing\n"
	"      DOC is refused: the store cannot delete a document, so import into\n"
	"      a fresh database or under another id. At the end the document is\n"
	"      loaded back and compared with the trace's endContent. The trace is\n"
	"      replayed once without writing first: one that does not replay to its\n"
	"      endContent writes nothing. If writing fails half-way (disk full),\n"
	"      DOC keeps the changes committed so far.\n"
	"  vacuum\n"
	"      Rewrite the database without its free pages (SQLite's VACUUM) and\n"
	"      switch it to auto_vacuum = INCREMENTAL, so that from then on log\n"
	"      trims give pages back to the file system, as in databases made since\n"
	"      that is the default (older files keep freed pages for reuse). Stop\n"
	"      the server first: the rewrite holds the write lock throughout (else\n"
	"      it fails after a 2 s wait), and needs room for a temporary copy.\n"
	"      Prints the size before and after; --json: {db, bytes_before,\n"
	"      bytes_after, auto_vacuum_was, auto_vacuum}. The database must exist.\n"
	"\n"
	"JSON (--json): JSON Lines, i.e. every line is one JSON object. `list`,\n"
	"`log` and `verify` print one object per row (verify's last line is\n"
	"{\"summary\": ...}); `show`, `stats`, `import` and `vacuum` print one\n"
	"object. Replica ids are hex strings (they exceed JavaScript's 2^53); times\n"
	"are ms since the epoch (\"..._ms\") plus ISO 8601 strings. Strings are\n"
	"valid JSON: control characters are escaped, and bytes of a doc id that\n"
	"are not UTF-8 become U+FFFD, with the exact id in \"doc_hex\" beside it.\n"
	"Errors still go to stderr as one line.\n"
	"\n"
	"Exit status: 0 ok; 1 an error (no database, no such document, damaged data\n"
	"that stops the command, import failure) or a problem found by verify;\n"
	"2 a bad command line.\n";

void dump_help(FILE *f) { fputs(help_text, f); }
