/*
 * auth.c - access tokens (auth.h): base64url, the HMAC-SHA256 signature
 * (OpenSSL libcrypto, compared with CRYPTO_memcmp), the payload's
 * key=value claims, the Hello check and the `quire-server token` command.
 *
 * Order of the checks in srv_token_verify, so that nothing an attacker
 * wrote is interpreted before its signature is known to be good:
 *  1. shape: "v1." prefix, exactly two more dots' worth of parts, length;
 *  2. the signature part decodes to exactly 32 bytes;
 *  3. HMAC over the text before the last '.' equals it (constant time);
 *  4. only then the payload is decoded and parsed;
 *  5. expiry.
 */
#define _POSIX_C_SOURCE 200809L

#include "auth.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "conn.h"
#include "srv.h"

#define TOKEN_PREFIX "v1."
#define SIG_BYTES 32
/* payload bytes a token of SRV_TOKEN_MAX can carry */
#define PAYLOAD_MAX (SRV_TOKEN_MAX / 4 * 3)

const char *srv_token_strerror(int status)
{
	switch (status) {
#define SRV__TS_CASE(name, value, text) \
	case name:                      \
		return text;
		SRV_TOKEN_STATUS_TABLE(SRV__TS_CASE)
#undef SRV__TS_CASE
	}
	return "unknown token status";
}

/* ---- base64url (RFC 4648 section 5), no padding ---------------------------------- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Encode in[0..n) into out (NUL-terminated). Returns the length, or -1 if
 * cap is too small. */
static long b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
	size_t need = n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
	if (need + 1 > cap)
		return -1;
	size_t o = 0, i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = b64_alphabet[v >> 6 & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = b64_alphabet[v >> 6 & 63];
	}
	out[o] = '\0';
	return (long)o;
}

/* Decode in[0..n) strictly (alphabet, no padding, no length 1 mod 4, zero
 * trailing bits) into out. Returns the byte count, or -1. */
static long b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
	if (n % 4 == 1 || n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > cap)
		return -1;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) /* non-canonical: trailing bits set */
		return -1;
	return (long)o;
}

/* ---- the signature ------------------------------------------------------------------ */

static int sign(const uint8_t *key, size_t key_len, const char *data, size_t n,
		uint8_t mac[SIG_BYTES])
{
	unsigned int mac_len = 0;
	if (key_len > (size_t)INT32_MAX ||
	    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data, n, mac, &mac_len) ==
		    NULL ||
	    mac_len != SIG_BYTES)
		return SRV_TOKEN_ECRYPTO;
	return SRV_TOKEN_OK;
}

/* ---- claims --------------------------------------------------------------------------- */

static bool sub_valid(const char *s, size_t n)
{
	if (n == 0 || n > SRV_TOKEN_SUB_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static bool doc_claim_valid(const char *s, size_t n)
{
	if (n > 0 && s[n - 1] == '*')
		return n == 1 || wire_doc_id_valid(s, n - 1);
	return wire_doc_id_valid(s, n);
}

static int parse_int64(const char *s, size_t n, int64_t *out)
{
	if (n == 0 || n > 18)
		return -1;
	int64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_payload(const char *p, size_t n, srv_token *t)
{
	bool have_sub = false, have_doc = false, have_right = false, have_exp = false;
	size_t i = 0;
	while (i < n) {
		const char *line = p + i;
		const char *nl = memchr(line, '\n', n - i);
		size_t len = nl ? (size_t)(nl - line) : n - i;
		i += len + (nl != NULL);
		const char *eq = memchr(line, '=', len);
		if (eq == NULL)
			return SRV_TOKEN_EPAYLOAD;
		size_t klen = (size_t)(eq - line), vlen = len - klen - 1;
		const char *v = eq + 1;
		if (klen == 3 && memcmp(line, "sub", 3) == 0) {
			if (have_sub || !sub_valid(v, vlen))
				return SRV_TOKEN_EPAYLOAD;
			memcpy(t->sub, v, vlen);
			t->sub[vlen] = '\0';
			have_sub = true;
		} else if (klen == 3 && memcmp(line, "doc", 3) == 0) {
			if (have_doc || !doc_claim_valid(v, vlen))
				return SRV_TOKEN_EPAYLOAD;
			memcpy(t->doc, v, vlen);
			t->doc[vlen] = '\0';
			have_doc = true;
		} else if (klen == 5 && memcmp(line, "right", 5) == 0) {
			if (have_right)
				return SRV_TOKEN_EPAYLOAD;
			if (vlen == 4 && memcmp(v, "read", 4) == 0)
				t->write = false;
			else if (vlen == 5 && memcmp(v, "write", 5) == 0)
				t->write = true;
			else
				return SRV_TOKEN_EPAYLOAD;
			have_right = true;
		} else if (klen == 3 && memcmp(line, "exp", 3) == 0) {
			if (have_exp || parse_int64(v, vlen, &t->exp) != 0 || t->exp <= 0)
				return SRV_TOKEN_EPAYLOAD;
			have_exp = true;
		}
		/* other keys: ignored (they are signed, so they are the issuer's) */
	}
	return have_sub && have_doc && have_right && have_exp ? SRV_TOKEN_OK : SRV_TOKEN_EPAYLOAD;
}

/* ---- verify, grant, mint ---------------------------------------------------------------- */

int srv_token_verify(const uint8_t *key, size_t key_len, const char *token, size_t len, int64_t now,
		     srv_token *out)
{
	if (token == NULL || len == 0)
		return SRV_TOKEN_EMISSING;
	size_t plen = sizeof TOKEN_PREFIX - 1;
	if (len > SRV_TOKEN_MAX || len <= plen || memcmp(token, TOKEN_PREFIX, plen) != 0)
		return SRV_TOKEN_EFORMAT;
	const char *payload = token + plen;
	const char *dot = memchr(payload, '.', len - plen);
	if (dot == NULL || memchr(dot + 1, '.', (size_t)(token + len - dot - 1)) != NULL)
		return SRV_TOKEN_EFORMAT;
	size_t payload_len = (size_t)(dot - payload);
	size_t sig_len = (size_t)(token + len - dot - 1);
	if (payload_len == 0 || sig_len == 0)
		return SRV_TOKEN_EFORMAT;

	uint8_t sig[SIG_BYTES + 3], mac[SIG_BYTES];
	long n = b64url_decode(dot + 1, sig_len, sig, sizeof sig);
	if (n < 0)
		return SRV_TOKEN_EBASE64;
	if (n != SIG_BYTES)
		return SRV_TOKEN_ESIGNATURE;
	int rc = sign(key, key_len, token, (size_t)(dot - token), mac);
	if (rc != SRV_TOKEN_OK)
		return rc;
	if (CRYPTO_memcmp(sig, mac, SIG_BYTES) != 0)
		return SRV_TOKEN_ESIGNATURE;

	char buf[PAYLOAD_MAX + 1];
	n = b64url_decode(payload, payload_len, (uint8_t *)buf, PAYLOAD_MAX);
	if (n < 0)
		return SRV_TOKEN_EBASE64;
	memset(out, 0, sizeof *out);
	rc = parse_payload(buf, (size_t)n, out);
	if (rc != SRV_TOKEN_OK)
		return rc;
	if (now >= out->exp)
		return SRV_TOKEN_EEXPIRED;
	return SRV_TOKEN_OK;
}

bool srv_token_grants(const srv_token *t, const char *doc_id, size_t len)
{
	size_t n = strlen(t->doc);
	if (n > 0 && t->doc[n - 1] == '*')
		return len >= n - 1 && memcmp(t->doc, doc_id, n - 1) == 0;
	return n == len && memcmp(t->doc, doc_id, len) == 0;
}

int srv_token_mint(const uint8_t *key, size_t key_len, const srv_token *t, char *out, size_t cap)
{
	size_t sub_len = strnlen(t->sub, sizeof t->sub), doc_len = strnlen(t->doc, sizeof t->doc);
	if (!sub_valid(t->sub, sub_len) || !doc_claim_valid(t->doc, doc_len) || t->exp <= 0)
		return SRV_TOKEN_EPAYLOAD;
	char payload[SRV_TOKEN_SUB_MAX + WIRE_MAX_DOC_ID + 64];
	int plen = snprintf(payload, sizeof payload, "sub=%s\ndoc=%s\nright=%s\nexp=%" PRId64,
			    t->sub, t->doc, t->write ? "write" : "read", t->exp);
	if (plen < 0 || (size_t)plen >= sizeof payload)
		return SRV_TOKEN_EPAYLOAD;
	size_t pre = sizeof TOKEN_PREFIX - 1;
	if (cap < pre + 1)
		return SRV_TOKEN_ESPACE;
	memcpy(out, TOKEN_PREFIX, pre);
	long n = b64url_encode((const uint8_t *)payload, (size_t)plen, out + pre, cap - pre);
	if (n < 0)
		return SRV_TOKEN_ESPACE;
	size_t at = pre + (size_t)n;
	uint8_t mac[SIG_BYTES];
	int rc = sign(key, key_len, out, at, mac);
	if (rc != SRV_TOKEN_OK)
		return rc;
	if (at + 2 > cap)
		return SRV_TOKEN_ESPACE;
	out[at++] = '.';
	n = b64url_encode(mac, SIG_BYTES, out + at, cap - at);
	OPENSSL_cleanse(mac, sizeof mac);
	if (n < 0)
		return SRV_TOKEN_ESPACE;
	return (int)(at + (size_t)n);
}

/* ---- the key -------------------------------------------------------------------------- */

/* Read the key file into a->key. 0 or -1. */
static int read_key_file(srv_auth *a, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		srv_set_err(err, errlen, "--token-secret-file %s: %s", path, strerror(errno));
		return -1;
	}
	size_t n = fread(a->key, 1, sizeof a->key, f);
	bool bad = ferror(f) != 0;
	fclose(f);
	if (bad || n == sizeof a->key) {
		srv_set_err(err, errlen, "--token-secret-file %s: %s", path,
			    bad ? "read error" : "longer than 1024 bytes");
		return -1;
	}
	if (n > 0 && a->key[n - 1] == '\n')
		n--;
	if (n > 0 && a->key[n - 1] == '\r')
		n--;
	a->key_len = n;
	return 0;
}

int srv_auth_init(srv_auth *a, const srv_config *cfg, char *err, size_t errlen)
{
	memset(a, 0, sizeof *a);
	if (cfg->token_secret_file[0] != '\0') {
		if (read_key_file(a, cfg->token_secret_file, err, errlen) != 0)
			return -1;
		if (a->key_len == 0) {
			srv_set_err(err, errlen, "--token-secret-file %s: %s",
				    cfg->token_secret_file, "empty");
			return -1;
		}
	} else {
		a->key_len = strlen(cfg->token_secret);
		memcpy(a->key, cfg->token_secret, a->key_len);
	}
	if (a->key_len > 0 && a->key_len < SRV_AUTH_MIN_SECRET) {
		srv_set_err(err, errlen, "%s%s: the token secret must be at least 16 bytes",
			    cfg->token_secret_file[0] ? "--token-secret-file " : "--token-secret",
			    cfg->token_secret_file);
		srv_auth_clear(a);
		return -1;
	}
	return 0;
}

void srv_auth_clear(srv_auth *a)
{
	OPENSSL_cleanse(a->key, sizeof a->key);
	a->key_len = 0;
}

/* ---- Hello ------------------------------------------------------------------------------- */

int srv_auth_hello(srv *s, srv_conn *c, uint32_t handle, const wire_hello *h, bool *read_only,
		   char *author, size_t cap)
{
	*read_only = false;
	if (cap > 0)
		author[0] = '\0';
	if (s->auth.key_len == 0)
		return 0;
	srv_token t;
	int64_t now = srv_wall_ms() / 1000;
	int rc = srv_token_verify(s->auth.key, s->auth.key_len, h->token, h->token_len, now, &t);
	if (rc != SRV_TOKEN_OK) {
		s->metrics.refusals[SRV_REFUSED_UNAUTHORIZED]++;
		srv_info(&s->log, "conn %llu: handle %u: token refused for '%.*s': %s",
			 (unsigned long long)c->id, handle, (int)h->doc_id_len, h->doc_id,
			 srv_token_strerror(rc));
		srv_conn_error(c, handle, WIRE_ERR_UNAUTHORIZED, 0, "token refused: %s",
			       srv_token_strerror(rc));
		return -1;
	}
	if (!srv_token_grants(&t, h->doc_id, h->doc_id_len)) {
		s->metrics.refusals[SRV_REFUSED_FORBIDDEN]++;
		srv_info(&s->log, "conn %llu: handle %u: '%s' may not open '%.*s'",
			 (unsigned long long)c->id, handle, t.sub, (int)h->doc_id_len, h->doc_id);
		srv_conn_error(c, handle, WIRE_ERR_FORBIDDEN, 0,
			       "the token does not grant this document");
		return -1;
	}
	*read_only = !t.write;
	snprintf(author, cap, "%s", t.sub);
	srv_info(&s->log, "conn %llu: handle %u: authenticated as '%s' (%s) for '%.*s'",
		 (unsigned long long)c->id, handle, t.sub, t.write ? "write" : "read",
		 (int)h->doc_id_len, h->doc_id);
	return 0;
}

/* ---- quire-server token ------------------------------------------------------------------- */

static void token_usage(FILE *out)
{
	fprintf(out,
		"Usage: quire-server token --sub NAME --doc ID|PREFIX* [--right read|write]\n"
		"                          [--ttl SECONDS | --exp UNIX] [--secret S | "
		"--secret-file F]\n"
		"\n"
		"Print an access token for Hello.token, signed with the server's token secret\n"
		"(default: $QUIRE_TOKEN_SECRET or $QUIRE_TOKEN_SECRET_FILE). --right defaults to\n"
		"write, --ttl to 3600. --doc 'notes/*' grants every document whose id starts\n"
		"with notes/, --doc '*' every document.\n");
}

static const char *env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (char *const *e = envp; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

int srv_auth_token_main(int argc, char *const *argv, char *const *envp)
{
	srv_config cfg;
	srv_config_defaults(&cfg);
	const char *secret = NULL, *secret_file = NULL, *sub = NULL, *doc = NULL;
	const char *right = "write", *ttl = NULL, *exp = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			token_usage(stdout);
			return 0;
		}
		const char **dst = strcmp(a, "--secret") == 0	     ? &secret
				   : strcmp(a, "--secret-file") == 0 ? &secret_file
				   : strcmp(a, "--sub") == 0	     ? &sub
				   : strcmp(a, "--doc") == 0	     ? &doc
				   : strcmp(a, "--right") == 0	     ? &right
				   : strcmp(a, "--ttl") == 0	     ? &ttl
				   : strcmp(a, "--exp") == 0	     ? &exp
								     : NULL;
		if (dst == NULL || i + 1 >= argc) {
			fprintf(stderr, "quire-server token: %s '%s'\n",
				dst ? "missing value for" : "unknown argument", a);
			token_usage(stderr);
			return 2;
		}
		*dst = argv[++i];
	}
	if (secret == NULL && secret_file == NULL) {
		secret = env_get(envp, "QUIRE_TOKEN_SECRET");
		secret_file = env_get(envp, "QUIRE_TOKEN_SECRET_FILE");
		if (secret && *secret == '\0')
			secret = NULL;
		if (secret_file && *secret_file == '\0')
			secret_file = NULL;
	}
	if ((secret == NULL) == (secret_file == NULL) || sub == NULL || doc == NULL ||
	    (ttl && exp)) {
		fprintf(stderr, "quire-server token: need --sub, --doc and exactly one of "
				"--secret / --secret-file (or the variables); not both --ttl and "
				"--exp\n");
		return 2;
	}
	if (secret && strlen(secret) > SRV_CONFIG_SECRET_MAX) {
		fprintf(stderr, "quire-server token: the secret is over 1024 bytes\n");
		return 2;
	}
	if (secret)
		snprintf(cfg.token_secret, sizeof cfg.token_secret, "%s", secret);
	else
		snprintf(cfg.token_secret_file, sizeof cfg.token_secret_file, "%s", secret_file);
	srv_auth auth;
	char err[512];
	if (srv_auth_init(&auth, &cfg, err, sizeof err) != 0) {
		fprintf(stderr, "quire-server token: %s\n", err);
		return 2;
	}
	OPENSSL_cleanse(cfg.token_secret, sizeof cfg.token_secret);

	srv_token t;
	memset(&t, 0, sizeof t);
	uint64_t v = 0;
	int rc = 2;
	if (strcmp(right, "read") != 0 && strcmp(right, "write") != 0) {
		fprintf(stderr, "quire-server token: --right is read or write\n");
		goto out;
	}
	t.write = strcmp(right, "write") == 0;
	if (exp) {
		if (srv_config_parse_uint(exp, &v) != 0 || v == 0 || v > INT64_MAX / 2) {
			fprintf(stderr, "quire-server token: --exp: not unix seconds\n");
			goto out;
		}
		t.exp = (int64_t)v;
	} else {
		if (srv_config_parse_uint(ttl ? ttl : "3600", &v) != 0 || v > INT64_MAX / 4) {
			fprintf(stderr, "quire-server token: --ttl: not a number of seconds\n");
			goto out;
		}
		t.exp = (int64_t)time(NULL) + (int64_t)v;
	}
	if (strlen(sub) > SRV_TOKEN_SUB_MAX || strlen(doc) > WIRE_MAX_DOC_ID + 1) {
		fprintf(stderr, "quire-server token: --sub or --doc too long\n");
		goto out;
	}
	snprintf(t.sub, sizeof t.sub, "%s", sub);
	snprintf(t.doc, sizeof t.doc, "%s", doc);
	char out_tok[SRV_TOKEN_MAX + 1];
	int n = srv_token_mint(auth.key, auth.key_len, &t, out_tok, sizeof out_tok);
	if (n < 0) {
		fprintf(stderr, "quire-server token: %s%s\n", srv_token_strerror(n),
			n == SRV_TOKEN_EPAYLOAD ? " (--sub: 1..128 bytes, no control characters; "
						  "--doc: a document id or PREFIX*)"
						: "");
		goto out;
	}
	printf("%s\n", out_tok);
	rc = 0;
out:
	srv_auth_clear(&auth);
	return rc;
}
