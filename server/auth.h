/*
 * auth.h - access tokens: HMAC-SHA256 signed, carrying a subject, the
 * documents they open (an exact id or a prefix ending in '*'), a right
 * (read or write) and an expiry. Clients send one in Hello.token
 * (docs/PROTOCOL.md section 5.2 and "Access tokens"); the server checks it
 * when a handle is opened. Without a configured key the server is open.
 *
 * Token format (all ASCII, URL- and header-safe):
 *
 *     v1.<payload>.<signature>
 *
 *   payload   = base64url, no padding, of "key=value" lines joined by '\n':
 *               sub=<1..128 bytes, no control characters>
 *               doc=<a document id, or a prefix of one followed by '*'>
 *               right=read | write
 *               exp=<unix seconds, decimal>
 *               (each exactly once; other keys are ignored)
 *   signature = base64url, no padding, of HMAC-SHA256(key, "v1." payload),
 *               i.e. of the token's text before its last '.'.
 *
 * The signature is checked (in constant time) before the payload is read;
 * a token is expired when now >= exp. Tokens are checked at Hello only: a
 * handle opened with a token stays open after the token expires.
 *
 * Tokens never appear in logs; subjects do.
 */
#ifndef QUIRE_SRV_AUTH_H
#define QUIRE_SRV_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "wire.h"

typedef struct srv srv;
typedef struct srv_conn srv_conn;

#define SRV_TOKEN_SUB_MAX 128	     /* bytes of a subject */
#define SRV_AUTH_MIN_SECRET 16	     /* bytes; shorter keys are refused */
#define SRV_TOKEN_MAX WIRE_MAX_TOKEN /* bytes of a whole token */

/* Status codes of the token functions. */
#define SRV_TOKEN_STATUS_TABLE(X)                                        \
	X(SRV_TOKEN_OK, 0, "ok")                                         \
	X(SRV_TOKEN_EMISSING, -1, "no token")                            \
	X(SRV_TOKEN_EFORMAT, -2, "not a v1.<payload>.<signature> token") \
	X(SRV_TOKEN_EBASE64, -3, "bad base64url")                        \
	X(SRV_TOKEN_ESIGNATURE, -4, "the signature does not verify")     \
	X(SRV_TOKEN_EPAYLOAD, -5, "bad payload (sub, doc, right, exp)")  \
	X(SRV_TOKEN_EEXPIRED, -6, "expired")                             \
	X(SRV_TOKEN_ECRYPTO, -7, "HMAC computation failed")              \
	X(SRV_TOKEN_ESPACE, -8, "output buffer too small")

/* clang-format off */
enum srv_token_status {
#define SRV__TS_ENUM(name, value, text) name = value,
	SRV_TOKEN_STATUS_TABLE(SRV__TS_ENUM)
#undef SRV__TS_ENUM
};
/* clang-format on */

/* Text for a status; never NULL. */
const char *srv_token_strerror(int status);

/* The claims of a token. */
typedef struct srv_token {
	char sub[SRV_TOKEN_SUB_MAX + 1];
	char doc[WIRE_MAX_DOC_ID + 2]; /* an id, or a prefix + '*' ("*": every document) */
	bool write;		       /* false: read only */
	int64_t exp;		       /* unix seconds */
} srv_token;

/*
 * Check token[0..len) with key[0..key_len) at time now (unix seconds) and
 * fill *out. SRV_TOKEN_OK, or a negative status (*out is then unspecified):
 * EMISSING (len 0), EFORMAT, EBASE64, ESIGNATURE, EPAYLOAD, EEXPIRED,
 * ECRYPTO. Never reads past len; allocates nothing.
 */
int srv_token_verify(const uint8_t *key, size_t key_len, const char *token, size_t len, int64_t now,
		     srv_token *out);

/* Whether the token's doc claim covers doc_id[0..len): equal, or the claim
 * is "P*" and doc_id starts with P. */
bool srv_token_grants(const srv_token *t, const char *doc_id, size_t len);

/*
 * Write the token for the claims *t, NUL-terminated, into out[0..cap).
 * Returns its length, or a negative status: EPAYLOAD (a claim is not
 * valid: empty or control characters in sub, a doc that is neither an id
 * nor a prefix + '*', exp <= 0), ESPACE, ECRYPTO.
 */
int srv_token_mint(const uint8_t *key, size_t key_len, const srv_token *t, char *out, size_t cap);

/* ---- the server's use ------------------------------------------------------------ */

/* The server's key; key_len 0: the server is open. */
typedef struct srv_auth {
	uint8_t key[SRV_CONFIG_SECRET_MAX + 1];
	size_t key_len;
} srv_auth;

/* Take the key from cfg->token_secret or read it from cfg->token_secret_file
 * (one trailing "\n" or "\r\n" dropped). 0, or -1 with err (file unreadable,
 * empty, too long, key shorter than SRV_AUTH_MIN_SECRET). */
int srv_auth_init(srv_auth *a, const srv_config *cfg, char *err, size_t errlen);

/* Wipe the key. */
void srv_auth_clear(srv_auth *a);

/*
 * Decide a Hello on connection c for handle `handle`: with no key, allow
 * (writer, no author). Otherwise verify h->token: a missing, malformed,
 * forged or expired token is refused with Error UNAUTHORIZED, a valid one
 * for other documents with FORBIDDEN (each counted in
 * quire_refusals_total and logged, without the token). Returns 0 with
 * *read_only and author (the subject, or "" when open; cap >=
 * SRV_TOKEN_SUB_MAX + 1) set, or -1 when refused (the Error is queued).
 */
int srv_auth_hello(srv *s, srv_conn *c, uint32_t handle, const wire_hello *h, bool *read_only,
		   char *author, size_t cap);

/*
 * `quire-server token ...`: mint a token and print it. argv[0] is "token".
 * Flags: --secret S | --secret-file F (else QUIRE_TOKEN_SECRET /
 * QUIRE_TOKEN_SECRET_FILE from envp), --sub NAME, --doc ID|PREFIX*,
 * --right read|write (default write), --ttl SECONDS (default 3600) or
 * --exp UNIX. Returns the process exit status (0, or 2 with a message on
 * stderr).
 */
int srv_auth_token_main(int argc, char *const *argv, char *const *envp);

#endif /* QUIRE_SRV_AUTH_H */
