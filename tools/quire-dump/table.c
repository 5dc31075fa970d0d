/*
 * table.c - aligned text tables, the default output of quire-dump.
 *
 * Columns are separated by two spaces, numbers right-aligned, the header
 * on the first line. To stay streaming for long listings (a `log` of 260k
 * changes) rows are buffered in blocks of DUMP_TABLE_BLOCK: the widths are
 * computed over the first block (so short tables are exact) and can only
 * grow afterwards (so a later wide cell shifts later lines, never breaks
 * them). Widths are counted in code points.
 */
#include <stdlib.h>
#include <string.h>

#include "dump.h"

struct dump_table {
	FILE *f;
	const dump_col *cols;
	int ncols;
	size_t *width;
	char **cells; /* DUMP_TABLE_BLOCK * ncols, owned */
	size_t nrows;
	bool header_done;
};

dump_table *dump_table_new(FILE *f, const dump_col *cols, int ncols)
{
	dump_table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->f = f;
	t->cols = cols;
	t->ncols = ncols;
	t->width = calloc((size_t)ncols, sizeof *t->width);
	t->cells = calloc((size_t)ncols * DUMP_TABLE_BLOCK, sizeof *t->cells);
	if (!t->width || !t->cells) {
		free(t->width);
		free(t->cells);
		free(t);
		return NULL;
	}
	for (int i = 0; i < ncols; i++)
		t->width[i] = dump_display_width(cols[i].title, strlen(cols[i].title));
	return t;
}

static void put_cell(dump_table *t, int col, const char *s)
{
	size_t w = dump_display_width(s, strlen(s));
	bool last = col == t->ncols - 1;
	size_t pad = t->width[col] > w ? t->width[col] - w : 0;
	if (col > 0)
		fputs("  ", t->f);
	if (t->cols[col].align == DUMP_RIGHT)
		for (size_t i = 0; i < pad; i++)
			fputc(' ', t->f);
	fputs(s, t->f);
	if (t->cols[col].align == DUMP_LEFT && !last)
		for (size_t i = 0; i < pad; i++)
			fputc(' ', t->f);
}

static void flush(dump_table *t)
{
	for (size_t r = 0; r < t->nrows; r++)
		for (int c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
			size_t w = dump_display_width(s, strlen(s));
			if (w > t->width[c])
				t->width[c] = w;
		}
	if (!t->header_done) {
		for (int c = 0; c < t->ncols; c++)
			put_cell(t, c, t->cols[c].title);
		fputc('\n', t->f);
		t->header_done = true;
	}
	for (size_t r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			char **cell = &t->cells[r * (size_t)t->ncols + (size_t)c];
			put_cell(t, c, *cell);
			free(*cell);
			*cell = NULL;
		}
		fputc('\n', t->f);
	}
	t->nrows = 0;
}

bool dump_table_row(dump_table *t, const char *const *cells)
{
	if (t->nrows == DUMP_TABLE_BLOCK)
		flush(t);
	char **row = &t->cells[t->nrows * (size_t)t->ncols];
	for (int c = 0; c < t->ncols; c++) {
		const char *s = cells[c] ? cells[c] : "-";
		size_t n = strlen(s);
		row[c] = malloc(n + 1);
		if (!row[c]) {
			for (int k = 0; k < c; k++) {
				free(row[k]);
				row[k] = NULL;
			}
			return false;
		}
		memcpy(row[c], s, n + 1);
	}
	t->nrows++;
	return true;
}

void dump_table_end(dump_table *t)
{
	if (!t)
		return;
	flush(t);
	free(t->width);
	free(t->cells);
	free(t);
}
