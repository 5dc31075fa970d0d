/*
 * internal.h - the engine's private data structures, shared by the engine's .c files.
 *
 * Nothing here is part of the public contract (crdt.h). crdt/INTERNALS.md
 * explains the model; this header says how it is laid out in memory:
 *
 *   local versions (lv) every unit (inserted or deleted code point) gets a
 *                       dense document-local number in the order it was
 *                       integrated; all internal references use lvs.
 *   id map  (idmap.c)   lv <-> (replica, counter, lamport) as append-only
 *                       runs, plus per-replica run lists for id -> lv.
 *   content (tree.c)    a B+ tree of items (runs of inserted units in
 *                       document order, live or tombstone) whose inner
 *                       nodes count visible and all code points per child.
 *   lv map  (lvmap.c)   lv -> leaf that holds the unit (or a leaf to its
 *                       left: items only ever move right, see lvmap.c).
 */
#ifndef QUIRE_CRDT_INTERNAL_H
#define QUIRE_CRDT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crdt.h"

#define LV_NONE UINT32_MAX

/* ---- memory (mem.c) --------------------------------------------------- */

typedef struct mem {
	const crdt_allocator *a; /* NULL: malloc/free */
	size_t held;		 /* bytes currently allocated */
} mem;

void *mem_alloc(mem *m, size_t size);
void *mem_calloc(mem *m, size_t size);
void mem_free(mem *m, void *p, size_t size);
/* Grow an array to hold at least `need` elements (doubling). On failure
 * returns -1 and leaves the array and its capacity untouched. */
int mem_grow(mem *m, void **arr, uint32_t *cap, uint32_t need, size_t elem);

/* ---- UTF-8 (utf8.c) ------------------------------------------------------ */

/* Byte offset of code point `cp` in valid UTF-8 `s` (of `nbytes`). */
size_t utf8_offset(const char *s, size_t nbytes, size_t cp);

/* ---- id map (idmap.c) ------------------------------------------------------ */

typedef struct idrun {
	uint32_t lv; /* first local version */
	uint32_t len;
	uint32_t rep;	   /* index into doc->reps */
	uint32_t counter;  /* counter of the first unit */
	uint32_t lamport;  /* Lamport time of the first unit */
	uint8_t kind;	   /* CRDT_OP_INSERT or CRDT_OP_DELETE */
	uint8_t reversed;  /* delete: unit k targets tcounter - k */
	uint32_t trep;	   /* delete: replica index of the first target */
	uint32_t tcounter; /* delete: counter of the first target */
} idrun;

typedef struct replica {
	crdt_replica id;
	uint32_t next; /* next counter expected */
	uint32_t n_runs, cap_runs;
	uint32_t *runs; /* indices into doc->runs, by increasing counter */
} replica;

/* ---- content tree (tree.c) -------------------------------------------------- */

#define LEAF_CAP 32
#define NODE_CAP 16

/* A run of units inserted by one op, contiguous in lv, in document order.
 * Unit k > 0 has unit k-1 as left origin; all share `right`. */
typedef struct item {
	uint32_t lv;
	uint32_t len;	/* code points */
	uint32_t left;	/* left origin of the first unit, or LV_NONE */
	uint32_t right; /* right origin, or LV_NONE */
	uint32_t bytes; /* UTF-8 bytes held in the leaf; 0 iff deleted */
} item;

#define ITEM_LIVE(it) ((it)->bytes != 0)

struct inode;

typedef struct leaf {
	struct inode *parent;
	uint16_t slot; /* index in parent */
	uint16_t n;    /* items used */
	uint32_t id;   /* index in doc->leaves (for the lv map) */
	struct leaf *prev, *next;
	char *text; /* UTF-8 of the live items, in order */
	uint32_t text_len, text_cap;
	item items[LEAF_CAP];
} leaf;

typedef struct inode {
	struct inode *parent;
	uint16_t slot;
	uint16_t n;
	bool leaf_children;
	uint32_t vis[NODE_CAP]; /* visible code points below each child */
	uint32_t all[NODE_CAP]; /* all code points (live + tombstones) */
	void *child[NODE_CAP];
} inode;

/* A place in the sequence: unit `off` of item `idx` of `leaf`. */
typedef struct cursor {
	leaf *leaf;
	uint32_t idx;
	uint32_t off;
} cursor;

/* ---- lv map (lvmap.c) ------------------------------------------------------- */

#define LVMAP_CHUNK 256

typedef struct lv_entry {
	uint32_t start; /* first lv of the range; it runs to the next entry */
	uint32_t leaf;	/* leaf id, or LV_NONE for deletes */
} lv_entry;

typedef struct lv_chunk {
	uint32_t n;
	lv_entry e[LVMAP_CHUNK];
} lv_chunk;

typedef struct lvmap {
	lv_chunk **chunks;
	uint32_t n_chunks, cap_chunks;
	lv_chunk *spare; /* one preallocated chunk so appends cannot fail */
} lvmap;

/* ---- pending ops (apply.c) --------------------------------------------------- */

typedef struct pending_op {
	crdt_op op; /* text points into its own copy */
	char *text;
} pending_op;

/* ---- the document ----------------------------------------------------------- */

struct crdt_doc {
	mem mem;
	crdt_replica self;
	uint32_t self_rep; /* index of self in reps */
	uint32_t clock;	   /* next Lamport time */
	uint32_t next_lv;

	/* id map */
	idrun *runs;
	uint32_t n_runs, cap_runs;
	uint32_t run_hint;  /* the run idmap_run found last */
	uint32_t find_hint; /* the run idmap_find found last */
	uint32_t rep_hint;  /* the replica idmap_rep_find found last */
	replica *reps;
	uint32_t n_reps, cap_reps;
	uint32_t *rep_order; /* rep indices sorted by id */

	/* content */
	void *root;
	uint32_t height; /* 0: root is a leaf */
	leaf *first;
	leaf **leaves; /* by leaf id */
	uint32_t n_leaves, cap_leaves;
	uint32_t vis_len; /* visible code points */
	uint32_t all_len; /* all code points */
	size_t bytes;	  /* visible UTF-8 bytes */
	uint32_t n_items, n_tombs;

	/* spare nodes so that splits inside a mutation cannot fail */
	leaf **spare_leaves;
	uint32_t n_spare_leaves, cap_spare_leaves;
	inode **spare_inodes;
	uint32_t n_spare_inodes, cap_spare_inodes;

	lvmap lvmap;
	bool lvmap_stale; /* bulk load: splits skip lv-map updates */
	/* snapshot replay: leaves keep no text (text == NULL) and live items
	 * count one placeholder byte per unit; the final text comes after */
	bool text_deferred;

	/* local-edit cursor cache: leaf that starts at visible position */
	leaf *cache_leaf;
	uint32_t cache_vis;

	/* lv lookup cache: the item tree_find_lv, tree_insert or tree_delete
	 * touched last (a hint: checked before use, leaves are never freed) */
	leaf *lv_hint_leaf;
	uint32_t lv_hint_idx;

	/* held remote ops */
	pending_op *pending;
	uint32_t n_pending, cap_pending;
	size_t pending_bytes;
	uint32_t max_pending;
	size_t max_pending_bytes;
};

/* idmap.c */
int idmap_rep_find(const crdt_doc *d, crdt_replica id);		/* index or -1 */
int idmap_rep_get(crdt_doc *d, crdt_replica id, uint32_t *rep); /* adds */
/* The run holding (rep, counter) and, in *lv, that unit's lv; NULL and
 * LV_NONE if not known. */
const idrun *idmap_find(const crdt_doc *d, uint32_t rep, uint32_t counter, uint32_t *lv);
/* lv of (rep, counter), or LV_NONE if not known. */
uint32_t idmap_lv(const crdt_doc *d, uint32_t rep, uint32_t counter);
/* The run holding lv. */
const idrun *idmap_run(const crdt_doc *d, uint32_t lv);
/* Make room so that idmap_push of one op cannot fail. */
int idmap_reserve(crdt_doc *d, uint32_t rep, uint32_t runs);
/* Record a new op of `len` units at lv d->next_lv (advances next_lv and the
 * replica's next counter). Requires idmap_reserve. */
void idmap_push(crdt_doc *d, const idrun *r);
crdt_id idmap_id(const crdt_doc *d, uint32_t lv);
uint32_t idmap_lamport(const crdt_doc *d, uint32_t lv);
void idmap_free(crdt_doc *d);

/* lvmap.c */
int lvmap_init(crdt_doc *d);
void lvmap_free(crdt_doc *d);
/* Ensure an append cannot fail. */
int lvmap_reserve(crdt_doc *d);
/* Map [lo, lo+len) (lo == end of map) to leaf id. Requires reserve. */
void lvmap_append(crdt_doc *d, uint32_t lo, uint32_t len, uint32_t leaf_id);
/* Best effort: map [lo, lo+len) to leaf id; on allocation failure the
 * map keeps pointing left, which lookups tolerate. */
void lvmap_set(crdt_doc *d, uint32_t lo, uint32_t len, uint32_t leaf_id);
uint32_t lvmap_get(const crdt_doc *d, uint32_t lv);
/* Rebuild the whole map from the tree (snapshot load, after tree_pack).
 * CRDT_ENOMEM leaves an empty map: the document must be dropped. */
int lvmap_build(crdt_doc *d);
size_t lvmap_entries(const crdt_doc *d);

/* tree.c */
int tree_init(crdt_doc *d);
void tree_free(crdt_doc *d);
/* Cursor of the unit with local version lv (must be an inserted unit). */
cursor tree_find_lv(const crdt_doc *d, uint32_t lv);
/* Cursor of the visible unit at visible index pos (< vis_len); uses and
 * updates the local-edit cache. The _const form descends from the root. */
cursor tree_find_vis(crdt_doc *d, uint32_t pos);
cursor tree_find_vis_const(const crdt_doc *d, uint32_t pos);
/* Absolute position (counting tombstones) / visible position of a cursor. */
uint32_t tree_pos_all(const crdt_doc *d, cursor c);
uint32_t tree_pos_vis(const crdt_doc *d, cursor c);
/* Step a cursor to the next unit; to the next item with off = 0. */
bool cursor_next_item(cursor *c);
/* Reserve spare leaves and inner nodes for `splits` leaf splits, each
 * spare leaf with room for `text` bytes. */
int tree_reserve(crdt_doc *d, uint32_t splits, uint32_t text);
/* Reserve all that inserting `bytes` of text at *c can need. */
int tree_reserve_insert(crdt_doc *d, const cursor *c, uint32_t bytes);
/* Insert a new item at c (between units: before unit c->off of item
 * c->idx). Requires reservations. Returns the cursor of the new item.
 * text NULL fills the item's bytes with a placeholder ('x'). */
cursor tree_insert(crdt_doc *d, cursor c, const item *it, const char *text);
/* The fast path of a remote insert (a writer typing): true, with *at the
 * cursor of the item holding it->left, if new item `it` (at lv d->next_lv)
 * continues that item (tree_insert would extend it) and nothing lies
 * between its origins (the ordering rule puts it right after its left
 * origin). Then tree_reserve_extend and tree_extend do the insert, with no
 * split and no new item. it->left, if any, must be an inserted unit. */
bool tree_extends(const crdt_doc *d, const item *it, cursor *at);
int tree_reserve_extend(crdt_doc *d, const cursor *at, uint32_t bytes);
/* Returns the cursor of the first new unit, as tree_insert. */
cursor tree_extend(crdt_doc *d, cursor at, const item *it, const char *text);
/* Delete `len` units of the live item at c starting at c->off (they must
 * lie in that item). Requires reservations. Returns the cursor just after
 * the deleted units. */
cursor tree_delete(crdt_doc *d, cursor c, uint32_t len);
/* Snapshot load, after the replay (text deferred): fold items that continue
 * each other, slide them into full leaves in document order, free the
 * leaves left over and rebuild the inner nodes. Leaf ids change: the lv map
 * must be rebuilt (lvmap_build). CRDT_ENOMEM leaves the tree as it was. */
int tree_pack(crdt_doc *d);
/* Byte offset in leaf text of item idx, and of unit off inside it. */
uint32_t leaf_byte_offset(const leaf *l, uint32_t idx, uint32_t off);

/* batch.c */
int batch_reserve(crdt_batch *b, uint32_t ops, uint32_t bytes);

/* doc.c: edits at a visible position by any replica (local edits, and
 * snapshot replay); they reserve first, so they are all or nothing. */
void edit_place(crdt_doc *d, uint32_t pos, cursor *at, uint32_t *left, uint32_t *right);
int edit_insert(crdt_doc *d, uint32_t pos, const char *utf8, uint32_t nbytes, uint32_t n,
		uint32_t rep, uint32_t lamport, crdt_batch *out);
/* back: delete as a run of backspaces would, unit k of the op deleting
 * visible unit pos+len-1-k. */
int edit_delete(crdt_doc *d, uint32_t pos, uint32_t len, uint32_t rep, uint32_t lamport, bool back,
		crdt_batch *out);

/* apply.c */
void pending_free(crdt_doc *d);

/* snapshot.c: the 64-bit hash a snapshot ends with, over the n bytes before
 * it. Not part of crdt.h: only tests/fuzz/fuzz_snapshot.c uses it (it
 * declares the prototype itself), to fix up the hash of mutated input. */
uint64_t crdt__snapshot_hash(const uint8_t *p, size_t n);

/* util */
static inline uint32_t u32_min(uint32_t a, uint32_t b) { return a < b ? a : b; }

#endif
