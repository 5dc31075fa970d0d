/*
 * qinflate.h - permessage-deflate for the tests' WebSocket client (qtest.h):
 * the inflater a ws_client calls on a compressed message (RFC 7692 7.2.2).
 * Linked, with zlib, into the tests that negotiate the extension.
 */
#ifndef QUIRE_TESTS_QINFLATE_H
#define QUIRE_TESTS_QINFLATE_H

#include <zlib.h>

#include "qtest.h"

/* Set up z (raw inflate, 15-bit window) and make ws inflate its compressed
 * messages with it. Returns 0, or -1 when zlib cannot start. */
int qinflate_attach(ws_client *ws, z_stream *z);

#endif
