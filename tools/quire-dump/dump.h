/*
 * dump.h - quire-dump's internal interface: the parsed command line, the
 * commands, and the helpers they share (opening the database, loading a
 * document with damage reporting, the table and JSON writers, formatting).
 *
 * quire-dump inspects a Quire database through storage/'s public API only
 * (store.h), opened read-only so it is safe while the server runs; `import`
 * is the one command that writes. Every command returns an exit status:
 * DUMP_OK, DUMP_FAIL (an error, or a problem found by verify) or DUMP_USAGE
 * (bad command line). Errors are reported as ONE line on stderr, prefixed
 * "quire-dump: ", by dump_error; stdout carries only the command's output.
 */
#ifndef QUIRE_DUMP_H
#define QUIRE_DUMP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "crdt.h"
#include "store.h"

/* ---- exit statuses ---------------------------------------------------------- */

enum dump_exit {
	DUMP_OK = 0,	/* done, nothing wrong */
	DUMP_FAIL = 1,	/* an error, or verify found a problem */
	DUMP_USAGE = 2, /* bad command line */
};

/* The database the server uses by default (relative to its working dir). */
#define DUMP_DEFAULT_DB "./data/quire.db"
/* Environment variable naming the database when --db is not given. */
#define DUMP_DB_ENV "QUIRE_DB"

/* The replica id documents are loaded as. quire-dump never edits a loaded
 * document, so any non-zero id does; this one spells "quiredmp". */
#define DUMP_READER_REPLICA ((crdt_replica)0x7175697265646d70ull)

/* ---- the command line (main.c) ---------------------------------------------- */

typedef struct dump_args {
	const char *db_path; /* --db, else $QUIRE_DB, else DUMP_DEFAULT_DB */
	bool json;	     /* --json */
	const char *command;
	const char *pos[4]; /* positional arguments after the command */
	int npos;
	/* command options; has_* tells whether it was given */
	bool has_at, has_since, has_limit;
	uint64_t at, since, limit;
	bool quick; /* list --quick */
} dump_args;

/* Everything a command needs. `db` is open (read-only except for vacuum,
 * and import, which opens its own handle). */
typedef struct dump_ctx {
	const dump_args *args;
	store *db;
	FILE *out;
	bool json;
} dump_ctx;

/* The commands (cmd_*.c). Each validates its own positional arguments and
 * options, writes its output and returns a dump_exit. */
int dump_cmd_list(dump_ctx *c);
int dump_cmd_show(dump_ctx *c);
int dump_cmd_log(dump_ctx *c);
int dump_cmd_stats(dump_ctx *c);
int dump_cmd_verify(dump_ctx *c);
/* vacuum gets the database opened read-write (it exists: never created). */
int dump_cmd_vacuum(dump_ctx *c);
/* import opens the database itself (read-write, created if missing). */
int dump_cmd_import(const dump_args *a);

/* ---- messages (usage.c) ------------------------------------------------------- */

/* "quire-dump: <message>\n" on stderr. Control characters in the message
 * are not escaped: callers quote untrusted strings with dump_quote. */
void dump_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "quire-dump: warning: <message>\n" on stderr. */
void dump_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error: one line on stderr plus a hint to run --help; returns
 * DUMP_USAGE. */
int dump_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The full --help text. */
void dump_help(FILE *f);

/* ---- the database (db.c) ----------------------------------------------------------- */

/* Open the database at path read-only (or read-write, creating it). On
 * failure prints one line (no such file, not a Quire database, newer
 * schema, ...) and returns NULL. */
store *dump_db_open(const char *path, bool read_only);

/* The document's info; when it does not exist (or cannot be read), prints
 * one line ("no document 'x' in PATH") and returns DUMP_FAIL. */
int dump_doc_info(dump_ctx *c, const char *doc_id, store_doc_info *info);

/*
 * store_load_at with messages: on success returns DUMP_OK with res->doc the
 * caller's; a skipped (damaged) snapshot is reported as a warning on stderr
 * unless `quiet`. On failure prints one line that says what failed and what
 * to try, and returns DUMP_FAIL (res->doc NULL).
 */
int dump_load(dump_ctx *c, const char *doc_id, uint64_t seq, unsigned flags, bool quiet,
	      store_load_result *res);

/* The whole visible text of doc, malloc'd and NUL-terminated (*len bytes
 * without the NUL). NULL when out of memory. */
char *dump_doc_text(const crdt_doc *doc, size_t *len);

/* The version vector of doc, malloc'd (*n entries; NULL with *n 0 when
 * empty). Returns false when out of memory. */
bool dump_doc_vv(const crdt_doc *doc, crdt_vv_entry **vv, size_t *n);

/* Same text and version vector? `why` (if not NULL) gets a short reason
 * when they differ ("text differs at byte 17", "version vector differs"). */
bool dump_docs_equal(const crdt_doc *a, const crdt_doc *b, char *why, size_t whylen);

/* ---- formatting (fmt.c) ---------------------------------------------------------------- */

/* A fixed buffer for one formatted value. */
typedef struct dump_str {
	char s[96];
} dump_str;

/* ms since the epoch as ISO 8601 UTC, "2024-05-01T12:34:56.789Z"; "-" for
 * 0 (unknown). */
const char *dump_fmt_time(dump_str *b, int64_t ms);
/* A replica id as 16 lowercase hex digits. */
const char *dump_fmt_replica(dump_str *b, crdt_replica r);
/* A byte count with a unit, "1234 (1.2 KiB)"; plain below 1 KiB. */
const char *dump_fmt_bytes(dump_str *b, uint64_t n);

/*
 * A growable string (malloc). All functions are no-ops after an allocation
 * failure, which sets `oom`; the contents are then unspecified.
 */
typedef struct dump_sb {
	char *s;
	size_t len, cap;
	bool oom;
} dump_sb;

void dump_sb_free(dump_sb *b);
void dump_sb_clear(dump_sb *b);
void dump_sb_add(dump_sb *b, const char *s, size_t n);
void dump_sb_addf(dump_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* NUL-terminated contents ("" when empty). */
const char *dump_sb_str(dump_sb *b);

/*
 * Append s[0..n) to b for display in a terminal: printable UTF-8 as is,
 * backslash as "\\", \n \t \r as such, other control characters and bytes
 * that are not valid UTF-8 as "\xNN". At most max_cp code points of the
 * input are shown (0: all); when cut, "…" is appended and *cut set (if not
 * NULL). Returns the display width added (one per code point).
 */
size_t dump_sb_escape(dump_sb *b, const char *s, size_t n, size_t max_cp, bool *cut);

/* Display width of a UTF-8 string (code points; invalid bytes count 1). */
size_t dump_display_width(const char *s, size_t n);

/* Whether s[0..n) is valid UTF-8 (no overlongs or surrogates). */
bool dump_utf8_valid(const char *s, size_t n);

/* ---- op summaries (opsum.c) -------------------------------------------------------------- */

/*
 * A one-line summary of the ops of a change sent by `sender`, e.g.
 * "ins 3 @17 'abc'", "del 2 of @5", "ins 1 @a1b2c3d4e5f60718:3 'x'; +2 ops".
 * Ops of the sender are shown by counter only. At most max_width display
 * columns (longer summaries end in "…").
 */
void dump_ops_summary(dump_sb *b, const crdt_batch *ops, crdt_replica sender, size_t max_width);

/* ---- tables (table.c) ----------------------------------------------------------------------- */

enum dump_align { DUMP_LEFT, DUMP_RIGHT };

typedef struct dump_col {
	const char *title;
	enum dump_align align;
} dump_col;

/*
 * An aligned text table written to a FILE. Rows are buffered in blocks of
 * up to DUMP_TABLE_BLOCK rows; column widths are computed over the first
 * block and only grow afterwards, so output streams for long listings
 * (log) while short tables come out perfectly aligned. The last column is
 * not padded. Cells are copied; pass display-safe text (dump_sb_escape).
 */
typedef struct dump_table dump_table;

#define DUMP_TABLE_BLOCK 512

dump_table *dump_table_new(FILE *f, const dump_col *cols, int ncols);
/* Add a row of ncols cells (NULL cells print as "-"). Returns false when
 * out of memory. */
bool dump_table_row(dump_table *t, const char *const *cells);
/* Flush the remaining rows (the header too when there were none) and
 * free. */
void dump_table_end(dump_table *t);

/* ---- JSON (json.c) --------------------------------------------------------------------------- */

/*
 * A minimal streaming JSON writer. Keys are given with each value inside
 * objects (key NULL inside arrays and at the top level). Strings are
 * escaped per RFC 8259: '"', '\\' and control characters escaped (U+2028
 * and U+2029 too, for JavaScript), bytes that are not valid UTF-8 replaced
 * by U+FFFD. 64-bit replica ids are written as hex strings by the callers
 * (JavaScript numbers lose precision above 2^53).
 */
#define DUMP_JSON_DEPTH 16

typedef struct dump_json {
	FILE *f;
	int depth;
	bool first[DUMP_JSON_DEPTH];
} dump_json;

void dump_json_init(dump_json *j, FILE *f);
void dump_json_obj(dump_json *j, const char *key);
void dump_json_obj_end(dump_json *j);
void dump_json_arr(dump_json *j, const char *key);
void dump_json_arr_end(dump_json *j);
/* Returns false when bytes were replaced (s was not valid UTF-8). */
bool dump_json_str(dump_json *j, const char *key, const char *s, size_t n);
void dump_json_cstr(dump_json *j, const char *key, const char *s); /* NULL: null */
void dump_json_u64(dump_json *j, const char *key, uint64_t v);
void dump_json_i64(dump_json *j, const char *key, int64_t v);
void dump_json_bool(dump_json *j, const char *key, bool v);
void dump_json_null(dump_json *j, const char *key);
/* A document id: "doc": "..." and, when the id is not valid UTF-8 (so the
 * string is lossy), "doc_hex": "<its bytes in hex>" as well. */
void dump_json_doc_id(dump_json *j, const char *doc_id);
/* End of a top-level value: a newline (JSON Lines). */
void dump_json_eol(dump_json *j);

#endif /* QUIRE_DUMP_H */
